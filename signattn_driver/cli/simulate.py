"""`signattn simulate`: record perturbed expert drives in MetaDrive as bags and a dataset."""

from pathlib import Path

from signattn_driver.cli import CliError
from signattn_driver.cli.options import given, option


def register(subparsers):
    """Add the `simulate` subcommand."""
    from signattn_driver.choices import DEVICE_HELP
    from signattn_driver.sim.maps import BLOCKS_HELP
    from signattn_driver.sim.route import ROUNDABOUT_HELP, ROUNDABOUT_SCHEMES, RouteConfig
    from signattn_driver.sim.metadrive_adapter import SimConfig
    from signattn_driver.sim.recording import NoiseConfig, SimulationConfig
    p = subparsers.add_parser(
        'simulate', help='record simulated drives (MetaDrive; needs `pip install .[sim]`)',
        description='Drive MetaDrive maps with its IDM expert, perturb the steering with '
        'triangular pulses so recovery is in the data, and write ROS 2 bags (bag_layout) and a '
        'training dataset with lane-marking/road-edge masks (DART-style noise injection: the '
        'label is always the expert\'s command). With --policy a checkpoint steers, blended '
        'with the expert by --beta, and the expert labels every visited frame (DAgger-style '
        'aggregation). Layout: docs/simulation.md.')
    p.add_argument('--out', type=Path, required=True, help='output folder')
    option(p, '--minutes', type=float, owner=SimulationConfig,
           help='minutes of driving (20 Hz)')
    option(p, '--seed', type=int, owner=SimulationConfig,
           help='first map seed; drive k uses seed + k')
    option(p, '--noise', type=float, owner=NoiseConfig, name='amplitude',
           help='peak steering perturbation, fraction of full lock (40 deg); 0: none')
    option(p, '--noise-interval', type=float, owner=NoiseConfig, name='interval_s',
           help='mean seconds between perturbations')
    option(p, '--noise-duration', type=float, owner=NoiseConfig, name='duration_s',
           help='seconds per perturbation')
    option(p, '--width', type=int, owner=SimConfig, name='width_px',
           help='camera width (height = width / 2)')
    option(p, '--jpeg-quality', type=int, owner=SimulationConfig,
           help='JPEG quality of the recorded frames')
    option(p, '--traffic', type=float, owner=SimConfig, name='traffic_density',
           help='MetaDrive traffic density')
    option(p, '--blocks', owner=SimConfig, name='map_blocks',
           help=BLOCKS_HELP)
    option(p, '--roundabout-commands', owner=RouteConfig, choices=ROUNDABOUT_SCHEMES,
           help=ROUNDABOUT_HELP)
    option(p, '--max-drive-seconds', type=float, owner=SimulationConfig, name='max_drive_s',
           help='longest drive on one map')
    option(p, '--val-every', type=int, owner=SimulationConfig,
           help="every Nth drive goes to the 'val' split (0: none)")
    p.add_argument('--policy', type=Path, metavar='CHECKPOINT',
                   help='DAgger: this model steers (blended with the expert by --beta); the '
                   'expert still labels every frame')
    option(p, '--beta', type=float, owner=SimulationConfig,
           help="DAgger: the expert's share of the applied steering, 0..1")
    option(p, '--takeover', type=float, owner=SimulationConfig, name='takeover_s',
           help='DAgger: seconds the expert alone drives after an out-of-road event')
    option(p, '--device', owner=SimulationConfig, name='policy_device',
           help=f'DAgger: device of the --policy model: {DEVICE_HELP}')
    p.add_argument('--no-dataset', action='store_true', help='write the bags only')
    p.add_argument('--no-bags', action='store_true', help='write the dataset only')
    p.add_argument('--force', action='store_true', help='replace existing output')
    p.set_defaults(func=run)


def run(args) -> int:
    """Build the configuration, simulate with a progress bar, print the summary."""
    from tqdm import tqdm

    from signattn_driver.sim.metadrive_adapter import SimConfig
    from signattn_driver.sim.metadrive_runtime import require
    from signattn_driver.sim.route import RouteConfig
    from signattn_driver.sim.recording import NoiseConfig, simulate, SimulationConfig
    if args.policy is not None and not args.policy.is_file():
        raise CliError(f'no checkpoint at {args.policy}')
    require()
    width = {} if args.width is None else {'width_px': args.width, 'height_px': args.width // 2}
    config = SimulationConfig(
        sim=SimConfig(**width, **given(traffic_density=args.traffic, map_blocks=args.blocks),
                      route=RouteConfig(**given(roundabout_commands=args.roundabout_commands))),
        noise=NoiseConfig(**given(amplitude=args.noise, interval_s=args.noise_interval,
                                  duration_s=args.noise_duration)),
        write_bags=not args.no_bags, write_dataset=not args.no_dataset,
        policy=None if args.policy is None else str(args.policy), **given(
            minutes=args.minutes, seed=args.seed, jpeg_quality=args.jpeg_quality,
            max_drive_s=args.max_drive_seconds, val_every=args.val_every, beta=args.beta,
            takeover_s=args.takeover, policy_device=args.device))
    total = int(round(config.minutes * 60 * config.sim.rate_hz))
    with tqdm(total=total, unit='frame', desc='simulate') as bar:
        def progress(done):
            bar.update(done - bar.n)
        result = simulate(args.out, config, overwrite=args.force, progress=progress)
    print(f'{len(result["drives"])} drives, {result["frames"]} frames '
          f'({result["seconds_driven"] / 60:.1f} min) in {result["wall_s"]:.0f} s '
          f'({result["wall_s_per_minute_driven"]:.0f} s per simulated minute) -> {args.out}')
    return 0
