"""`signattn drive-sim`: a checkpoint steers the simulated car; compare with expert and floor."""

import json
from pathlib import Path

from signattn_driver.cli import CliError


def register(subparsers):
    """Add the `drive-sim` subcommand."""
    p = subparsers.add_parser(
        'drive-sim', help='closed-loop driving in MetaDrive (needs `pip install .[sim]`)',
        description='Let a checkpoint steer the simulated car (in-process, or through the '
        'real drive node over DDS with --through-ros) on held-out maps; report route '
        'completion, lateral offset and out-of-road events per km next to the IDM expert and '
        'a zero-steering floor. Metrics: docs/simulation.md.')
    p.add_argument('--checkpoint', type=Path, help='checkpoint to drive with (omit: '
                   'baselines only)')
    p.add_argument('--through-ros', action='store_true',
                   help='drive through drive_node (subprocess) instead of in-process')
    p.add_argument('--seeds', type=int, nargs='+', help='map seeds (default: 5001 5002 5003)')
    p.add_argument('--max-seconds', type=float, default=150.0, help='per episode')
    p.add_argument('--takeover', type=float, default=2.0,
                   help='seconds the expert drives after an out-of-road event')
    p.add_argument('--traffic', type=float, default=0.05, help='MetaDrive traffic density')
    p.add_argument('--no-baselines', action='store_true', help='skip expert and zero runs')
    p.add_argument('--device', default='cpu', help='in-process model device')
    p.add_argument('--out', type=Path, help='also write the results as JSON here')
    p.set_defaults(func=run)


def run(args) -> int:
    """Build the controllers, drive, print a table and the JSON."""
    from tqdm import tqdm

    from signattn_driver.sim.closed_loop import (ClosedLoopConfig, ClosedLoopError,
                                                 evaluate_controllers, ExpertController,
                                                 ModelController, ZeroController)
    from signattn_driver.sim.metadrive_adapter import require, SimConfig, SimulatorError

    if args.checkpoint is None and args.no_baselines:
        raise CliError('nothing to drive: give --checkpoint or drop --no-baselines')
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise CliError(f'no checkpoint at {args.checkpoint}')
    try:
        require()
    except SimulatorError as err:
        raise CliError(str(err)) from err
    config = ClosedLoopConfig(max_seconds=args.max_seconds, takeover_s=args.takeover,
                              sim=SimConfig(traffic_density=args.traffic))
    if args.seeds:
        config.seeds = tuple(args.seeds)
    controllers = [] if args.no_baselines else [ExpertController(), ZeroController()]
    ros = None
    try:
        if args.checkpoint is not None:
            if args.through_ros:
                from signattn_driver.ros.sim_controller import RosController
                ros = RosController(args.checkpoint)
                controllers.append(ros)
            else:
                controllers.append(ModelController(args.checkpoint, device=args.device))
        with tqdm(total=len(controllers) * len(config.seeds), unit='episode',
                  desc='drive-sim') as bar:
            started = []

            def progress(name, seed):
                # called before each episode: the previous one has finished
                bar.update(1 if started else 0)
                started.append(seed)
                bar.set_postfix_str(f'{name} map {seed}')
            results = evaluate_controllers(controllers, config, progress=progress)
            bar.update(bar.total - bar.n)
    except (SimulatorError, ClosedLoopError) as err:
        raise CliError(str(err)) from err
    finally:
        if ros is not None:
            ros.close()
    print(f'{"controller":<10} {"route":>6} {"auto":>6} {"lat mean":>9} {"lat p95":>8} '
          f'{"oor/km":>7} {"off":>5} {"crash":>5}')
    for name, m in results['controllers'].items():
        print(f'{name:<10} {m["route_completion"]:>6.2f} {m["autonomous_completion"]:>6.2f} '
              f'{m["lateral_offset_mean_m"]:>8.2f}m {m["lateral_offset_p95_m"]:>7.2f}m '
              f'{m["out_of_road_per_km"]:>7.2f} {m["off_road_share"]:>5.2f} {m["crashes"]:>5d}')
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + '\n')
    return 0
