"""`signattn simulate`: record perturbed expert drives in MetaDrive as bags and a dataset."""

from pathlib import Path

from signattn_driver.cli import CliError


def register(subparsers):
    """Add the `simulate` subcommand."""
    p = subparsers.add_parser(
        'simulate', help='record simulated drives (MetaDrive; needs `pip install .[sim]`)',
        description='Drive MetaDrive maps with its IDM expert, perturb the steering with '
        'triangular pulses so recovery is in the data, and write ROS 2 bags (bag_layout) and a '
        'training dataset with lane-marking/road-edge masks (DART-style noise injection: the '
        'label is always the expert\'s command). With --policy a checkpoint steers, blended '
        'with the expert by --beta, and the expert labels every visited frame (DAgger-style '
        'aggregation). Layout: docs/simulation.md.')
    p.add_argument('--out', type=Path, required=True, help='output folder')
    p.add_argument('--minutes', type=float, default=1.0, help='minutes of driving (20 Hz)')
    p.add_argument('--seed', type=int, default=0, help='first map seed; drive k uses seed + k')
    p.add_argument('--noise', type=float, default=0.15,
                   help='peak steering perturbation, fraction of full lock (40 deg); 0: none')
    p.add_argument('--noise-interval', type=float, default=6.0,
                   help='mean seconds between perturbations')
    p.add_argument('--noise-duration', type=float, default=1.0, help='seconds per perturbation')
    p.add_argument('--width', type=int, default=320, help='camera width (height = width / 2)')
    p.add_argument('--jpeg-quality', type=int, default=75)
    p.add_argument('--traffic', type=float, default=0.05, help='MetaDrive traffic density')
    p.add_argument('--blocks', type=int, default=7, help='road blocks per map')
    p.add_argument('--max-drive-seconds', type=float, default=180.0)
    p.add_argument('--val-every', type=int, default=5,
                   help="every Nth drive goes to the 'val' split (0: none)")
    p.add_argument('--policy', type=Path, metavar='CHECKPOINT',
                   help='DAgger: this model steers (blended with the expert by --beta); the '
                   'expert still labels every frame')
    p.add_argument('--beta', type=float, default=0.5,
                   help="DAgger: the expert's share of the applied steering, 0..1 (default 0.5)")
    p.add_argument('--takeover', type=float, default=2.0,
                   help='DAgger: seconds the expert alone drives after an out-of-road event')
    p.add_argument('--device', default='cpu', help='DAgger: device of the --policy model')
    p.add_argument('--no-dataset', action='store_true', help='write the bags only')
    p.add_argument('--no-bags', action='store_true', help='write the dataset only')
    p.add_argument('--force', action='store_true', help='replace existing output')
    p.set_defaults(func=run)


def run(args) -> int:
    """Build the configuration, simulate with a progress bar, print the summary."""
    from tqdm import tqdm

    from signattn_driver.sim.metadrive_adapter import require, SimConfig
    from signattn_driver.sim.recording import NoiseConfig, simulate, SimulationConfig
    if args.policy is not None and not args.policy.is_file():
        raise CliError(f'no checkpoint at {args.policy}')
    require()
    config = SimulationConfig(
        minutes=args.minutes, seed=args.seed,
        sim=SimConfig(width_px=args.width, height_px=args.width // 2,
                      traffic_density=args.traffic, map_blocks=args.blocks),
        noise=NoiseConfig(amplitude=args.noise, interval_s=args.noise_interval,
                          duration_s=args.noise_duration),
        jpeg_quality=args.jpeg_quality, max_drive_s=args.max_drive_seconds,
        write_bags=not args.no_bags, write_dataset=not args.no_dataset,
        val_every=args.val_every,
        policy=None if args.policy is None else str(args.policy), beta=args.beta,
        takeover_s=args.takeover, policy_device=args.device)
    total = int(round(args.minutes * 60 * config.sim.rate_hz))
    with tqdm(total=total, unit='frame', desc='simulate') as bar:
        def progress(done):
            bar.update(done - bar.n)
        result = simulate(args.out, config, overwrite=args.force, progress=progress)
    print(f'{len(result["drives"])} drives, {result["frames"]} frames '
          f'({result["seconds_driven"] / 60:.1f} min) in {result["wall_s"]:.0f} s '
          f'({result["wall_s_per_minute_driven"]:.0f} s per simulated minute) -> {args.out}')
    return 0
