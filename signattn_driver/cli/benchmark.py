"""`signattn benchmark NAME`: the measurements behind docs/benchmarks.md.

Each NAME is a module signattn_driver.benchmarks.NAME with `add_arguments(parser)` and
`run(args) -> dict`; the dict is printed as JSON and, with --out, written to a file.
"""

import importlib
import json
from pathlib import Path

BENCHMARKS = ('predictor', 'convert', 'node', 'train', 'evaluate')


def register(subparsers):
    """Add `benchmark` and one sub-subcommand per available benchmark."""
    parser = subparsers.add_parser('benchmark', help='measure speed (medians, ratios)')
    names = parser.add_subparsers(dest='benchmark', metavar='NAME', required=True)
    for name in BENCHMARKS:
        module = importlib.import_module(f'signattn_driver.benchmarks.{name}')
        sub = names.add_parser(name, help=(module.__doc__ or '').strip().splitlines()[0])
        sub.add_argument('--out', type=Path, help='also write the results as JSON here')
        module.add_arguments(sub)
        sub.set_defaults(func=lambda args, m=module: _run(m, args))


def _run(module, args) -> int:
    results = module.run(args)
    text = json.dumps(results, indent=2, sort_keys=True)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + '\n')
    return 0
