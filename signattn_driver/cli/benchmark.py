"""`signattn benchmark NAME`: the measurements behind docs/benchmarks.md.

The benchmarks live in the top-level `benchmarks/` folder of a source checkout, which the wheel
does not install: run them from a checkout (`make bench`, or `signattn benchmark` with the
checkout as the working directory). Each NAME is a module `benchmarks.NAME` with
`add_arguments(parser)` and `run(args) -> dict`; the dict is printed as JSON and, with --out,
written to a file.
"""

import importlib
import json
from pathlib import Path
import sys

from signattn_driver.cli import CliError

BENCHMARKS = ('predictor', 'convert', 'node', 'soak', 'train', 'evaluate', 'statistics_size',
              'viewer')


def checkout_root():
    """Return the source checkout holding `benchmarks/`, or None outside a checkout."""
    import signattn_driver
    for candidate in (Path(signattn_driver.__file__).resolve().parent.parent, Path.cwd()):
        if (candidate / 'benchmarks' / '__init__.py').is_file() and \
                (candidate / 'package.xml').is_file():
            return candidate
    return None


def _import(name: str):
    root = checkout_root()
    if root is None:
        return None
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f'benchmarks.{name}')


def register(subparsers):
    """Add `benchmark` and one sub-subcommand per benchmark."""
    parser = subparsers.add_parser('benchmark', help='measure speed (medians, ratios); '
                                   'needs a source checkout')
    names = parser.add_subparsers(dest='benchmark', metavar='NAME', required=True)
    for name in BENCHMARKS:
        module = _import(name)
        doc = (module.__doc__ or '').strip().splitlines()[0] if module else \
            'not available: run from a source checkout (benchmarks/ is not installed)'
        sub = names.add_parser(name, help=doc)
        sub.add_argument('--out', type=Path, help='also write the results as JSON here')
        if module is not None:
            module.add_arguments(sub)
        sub.set_defaults(func=lambda args, m=module: _run(m, args))


def _run(module, args) -> int:
    if module is None:
        raise CliError('benchmarks run from a source checkout: cd into it (benchmarks/ is not '
                       'installed with the package)')
    results = module.run(args)
    text = json.dumps(results, indent=2, sort_keys=True)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + '\n')
    return 0
