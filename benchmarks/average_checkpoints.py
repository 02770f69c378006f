"""Average checkpoints of one architecture weight by weight (a model soup; issue 18, stage 18).

    PYTHONPATH=. python3 benchmarks/average_checkpoints.py A.pt B.pt --out soup.pt
    PYTHONPATH=. python3 benchmarks/average_checkpoints.py A.pt B.pt --weights 0.7 0.3 --out soup.pt

The library function is `signattn_driver.training.average.average_checkpoints`.
"""

import argparse
import sys

from signattn_driver.errors import SignattnError
from signattn_driver.training.average import average_checkpoints


def main(argv=None) -> int:
    """Write the average of the given checkpoints; exit status 2 with one line on an error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoints', nargs='+', help='two or more checkpoints')
    parser.add_argument('--weights', type=float, nargs='+', default=None,
                        help='one weight per checkpoint, summing to 1 (default: uniform)')
    parser.add_argument('--out', required=True, help='the averaged checkpoint')
    args = parser.parse_args(argv)
    try:
        path = average_checkpoints(args.checkpoints, args.out, args.weights)
    except (SignattnError, FileNotFoundError) as err:
        print(f'average_checkpoints: error: {err}', file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
