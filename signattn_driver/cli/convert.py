"""`signattn convert udacity|bag ...`: recorded drives to ROS 2 bags and a training set.

`udacity` reads the Udacity CH2 releases; `bag` reads ROS 2 bags already in this package's layout
(converted or simulated drives) back into a dataset.
"""

from pathlib import Path

from signattn_driver.udacity.convert import (ConvertConfig, convert_udacity,
                                             DEFAULT_ASSUMED_SPEED_MPS, DEFAULT_MAX_GAP_S)
from signattn_driver.data.labels import DEFAULT_SMOOTHING


def register(subparsers):
    """Add `convert` with its `udacity` source."""
    parser = subparsers.add_parser('convert', help='convert recorded drives (Udacity CH2, or '
                                   'bags in our layout) to ROS 2 bags and a training set')
    sources = parser.add_subparsers(dest='source', metavar='SOURCE', required=True)
    p = sources.add_parser(
        'udacity', help='Udacity CH2 ROS 1 bags, the CH2_001 folder, interpolated.csv folders',
        description='Writes OUT/dataset (training set) and OUT/bags/<drive> (ROS 2 bags); see '
                    'docs/converter.md.')
    p.add_argument('inputs', nargs='+', type=Path, metavar='INPUT',
                   help='ROS 1 bag, folder of bags, CH2_001 folder or interpolated.csv folder')
    p.add_argument('--out', type=Path, required=True, help='output folder')
    p.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap',
                   help='ROS 2 bag storage (default: mcap)')
    p.add_argument('--cameras', default='center',
                   help='comma-separated cameras among center,left,right; the first carries the '
                        'ground truth in the bag (default: center)')
    p.add_argument('--vehicle', default='mkz', help='vehicle profile name or YAML (eq. 3)')
    p.add_argument('--smoothing', type=float, default=DEFAULT_SMOOTHING, metavar='ALPHA',
                   help=f'alpha_s of eq. 2 (default: {DEFAULT_SMOOTHING})')
    p.add_argument('--max-gap', type=float, default=DEFAULT_MAX_GAP_S, metavar='SECONDS',
                   help='report steering-record gaps longer than this '
                        f'(default: {DEFAULT_MAX_GAP_S})')
    p.add_argument('--assumed-speed', type=float, default=DEFAULT_ASSUMED_SPEED_MPS,
                   metavar='MPS', help='speed for inputs without one (CH2_001) '
                   f'(default: {DEFAULT_ASSUMED_SPEED_MPS})')
    p.add_argument('--workers', type=int, default=2, help='JPEG decode threads (default: 2)')
    p.add_argument('--force', action='store_true',
                   help='replace existing output and reconvert drives already converted')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.set_defaults(func=run)
    b = sources.add_parser(
        'bag', help='ROS 2 bags in this package\'s layout (converted or simulated) to a dataset',
        description='One drive per bag, labels from the bag\'s ground truth topics.')
    b.add_argument('bags', nargs='+', type=Path, metavar='BAG', help='ROS 2 bag folder')
    b.add_argument('--out', type=Path, required=True, help='dataset folder to create')
    b.add_argument('--vehicle', default='mkz', help='vehicle profile name or YAML (eq. 3)')
    b.add_argument('--smoothing', type=float, default=DEFAULT_SMOOTHING, metavar='ALPHA',
                   help=f'alpha_s of eq. 2 (default: {DEFAULT_SMOOTHING})')
    b.add_argument('--split', choices=('train', 'val', 'test'), default='test')
    b.add_argument('--force', action='store_true', help='replace an existing dataset')
    b.set_defaults(func=run_bag)


def run(args) -> int:
    """Run the conversion with a progress bar; print a one-line summary."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    config = ConvertConfig(out=args.out, storage=args.storage,
                           cameras=tuple(c.strip() for c in args.cameras.split(',') if c.strip()),
                           vehicle=args.vehicle, smoothing_alpha=args.smoothing,
                           max_gap_s=args.max_gap, assumed_speed_mps=args.assumed_speed,
                           force=args.force, workers=args.workers)
    with logging_redirect_tqdm(), tqdm(total=0, unit='frame', disable=args.no_progress,
                                       dynamic_ncols=True) as bar:
        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)
        result = convert_udacity(args.inputs, config, progress=progress)
    print(f'converted {len(result.converted)} drive(s) ({result.frames} frames), kept '
          f'{len(result.kept)} up to date: {result.dataset} and {result.bags}')
    return 0


def run_bag(args) -> int:
    """Turn bags into a dataset with a progress bar."""
    from tqdm import tqdm

    from signattn_driver.data.bag_dataset import dataset_from_bags
    from signattn_driver.vehicle import load_vehicle
    with tqdm(unit='frame', dynamic_ncols=True) as bar:
        out = dataset_from_bags(args.bags, args.out, load_vehicle(args.vehicle), args.smoothing,
                                split=args.split, overwrite=args.force,
                                progress=lambda n: bar.update(n - bar.n))
    print(f'wrote {out}')
    return 0
