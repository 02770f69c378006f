"""`signattn convert udacity|bag ...`: recorded drives to ROS 2 bags and a training set.

`udacity` reads the Udacity CH2 releases; `bag` reads ROS 2 bags already in this package's layout
(converted or simulated drives) back into a dataset.
"""

from pathlib import Path

from signattn_driver.cli.options import given, option
from signattn_driver.data.bag_layout import CAMERAS, STORAGES
from signattn_driver.udacity.convert import ConvertConfig, convert_udacity


def register(subparsers):
    """Add `convert` with its `udacity` and `bag` sources."""
    from signattn_driver.data.bag_dataset import dataset_from_bags
    from signattn_driver.data.dataset import SPLITS
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
    option(p, '--storage', choices=sorted(STORAGES), owner=ConvertConfig,
           help='ROS 2 bag storage')
    option(p, '--cameras', owner=ConvertConfig,
           help=f'comma-separated cameras among {",".join(CAMERAS)}; the first carries the '
                'ground truth in the bag')
    option(p, '--vehicle', owner=ConvertConfig, help='vehicle profile name or YAML (eq. 3)')
    option(p, '--smoothing', type=float, metavar='ALPHA', owner=ConvertConfig,
           name='smoothing_alpha', help='alpha_s of eq. 2')
    option(p, '--max-gap', type=float, metavar='SECONDS', owner=ConvertConfig, name='max_gap_s',
           help='report steering-record gaps longer than this')
    option(p, '--assumed-speed', type=float, metavar='MPS', owner=ConvertConfig,
           name='assumed_speed_mps', help='speed for inputs without one (CH2_001)')
    option(p, '--workers', type=int, owner=ConvertConfig, help='JPEG decode threads')
    p.add_argument('--force', action='store_true',
                   help='replace existing output and reconvert drives already converted')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.set_defaults(func=run)
    b = sources.add_parser(
        'bag', help='ROS 2 bags in this package\'s layout (converted or simulated) to a dataset',
        description='One drive per bag, labels from the bag\'s ground truth topics.')
    b.add_argument('bags', nargs='+', type=Path, metavar='BAG', help='ROS 2 bag folder')
    b.add_argument('--out', type=Path, required=True, help='dataset folder to create')
    option(b, '--vehicle', owner=ConvertConfig, help='vehicle profile name or YAML (eq. 3)')
    option(b, '--smoothing', type=float, metavar='ALPHA', owner=dataset_from_bags,
           name='smoothing_alpha', help='alpha_s of eq. 2')
    option(b, '--split', choices=SPLITS, owner=dataset_from_bags, help='dataset split')
    b.add_argument('--force', action='store_true', help='replace an existing dataset')
    b.set_defaults(func=run_bag)


def cameras(text: str | None) -> tuple | None:
    """Split a comma list of cameras; None stays None (the config's default)."""
    return None if text is None else tuple(c.strip() for c in text.split(',') if c.strip())


def run(args) -> int:
    """Run the conversion with a progress bar; print a one-line summary."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    config = ConvertConfig(out=args.out, force=args.force, **given(
        storage=args.storage, cameras=cameras(args.cameras), vehicle=args.vehicle,
        smoothing_alpha=args.smoothing, max_gap_s=args.max_gap,
        assumed_speed_mps=args.assumed_speed, workers=args.workers))
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
    vehicle = load_vehicle(args.vehicle or ConvertConfig.vehicle)
    with tqdm(unit='frame', dynamic_ncols=True) as bar:
        out = dataset_from_bags(args.bags, args.out, vehicle, overwrite=args.force,
                                progress=lambda n: bar.update(n - bar.n),
                                **given(smoothing_alpha=args.smoothing, split=args.split))
    print(f'wrote {out}')
    return 0
