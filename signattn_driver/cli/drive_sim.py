"""`signattn drive-sim`: a checkpoint steers the simulated car; compare with expert and floor."""

import json
import logging
from pathlib import Path

from signattn_driver.cli import CliError
from signattn_driver.cli.options import given, option


def register(subparsers):
    """Add the `drive-sim` subcommand."""
    from signattn_driver.choices import DEVICE_HELP
    from signattn_driver.sim.maps import BLOCKS_HELP
    from signattn_driver.sim.route import ROUNDABOUT_HELP, ROUNDABOUT_SCHEMES, RouteConfig
    from signattn_driver.sim.animation import animate_episode
    from signattn_driver.sim.closed_loop import ClosedLoopConfig, ModelController
    from signattn_driver.sim.metadrive_adapter import SimConfig
    p = subparsers.add_parser(
        'drive-sim', help='closed-loop driving in MetaDrive (needs `pip install .[sim]`)',
        description='Let a checkpoint steer the simulated car (in-process, or through the '
        'real drive node over DDS with --through-ros) on held-out maps; report route '
        'completion, lateral offset and out-of-road events per km next to the IDM expert and '
        'a zero-steering floor, and each as a ratio to the expert. --animation writes a GIF '
        'of one episode: the attention overlay beside the top-down route. Metrics: '
        'docs/simulation.md.')
    p.add_argument('--checkpoint', type=Path, help='checkpoint to drive with (omit: '
                   'baselines only)')
    p.add_argument('--through-ros', action='store_true',
                   help='drive through drive_node (subprocess) instead of in-process')
    option(p, '--seeds', type=int, nargs='+', owner=ClosedLoopConfig,
           help='map seeds; the default ones no training run has seen')
    option(p, '--max-seconds', type=float, owner=ClosedLoopConfig, help='per episode')
    option(p, '--takeover', type=float, owner=ClosedLoopConfig, name='takeover_s',
           help='seconds the expert drives after an out-of-road event')
    option(p, '--traffic', type=float, owner=SimConfig, name='traffic_density',
           help='MetaDrive traffic density')
    option(p, '--blocks', owner=SimConfig, name='map_blocks',
           help=BLOCKS_HELP)
    option(p, '--roundabout-commands', owner=RouteConfig, choices=ROUNDABOUT_SCHEMES,
           help=ROUNDABOUT_HELP)
    p.add_argument('--no-baselines', action='store_true', help='skip expert and zero runs')
    p.add_argument('--no-route-commands', action='store_true',
                   help='withhold the navigator\'s route command from a command model '
                   '(follow-lane throughout), to measure it without the navigator')
    option(p, '--device', owner=ModelController, help=f'in-process model device: {DEVICE_HELP}')
    p.add_argument('--threads', type=int,
                   help='torch CPU threads of the model, in-process or in the node (if '
                   'omitted: torch\'s default)')
    p.add_argument('--out', type=Path, help='also write the results as JSON here')
    p.add_argument('--animation', type=Path, metavar='FILE.gif',
                   help='also drive one episode in-process with the checkpoint and write it '
                   'as a GIF: attention overlay beside the top-down route and trace')
    p.add_argument('--animation-seed', type=int,
                   help='map of the animated episode (if omitted: the first of --seeds)')
    option(p, '--animation-stride', type=int, owner=animate_episode, name='stride',
           help='keep every Nth frame in the animation (of the 20 Hz camera)')
    p.set_defaults(func=run)


def check(args):
    """Reject option combinations that cannot run, before the simulator starts."""
    if args.checkpoint is None and args.no_baselines:
        raise CliError('nothing to drive: give --checkpoint or drop --no-baselines')
    if args.animation is not None and args.checkpoint is None:
        raise CliError('--animation needs --checkpoint (it shows the model\'s attention)')
    if args.animation is not None and args.animation.suffix.lower() != '.gif':
        raise CliError(f'--animation writes a GIF; got {args.animation}')
    if args.animation_stride is not None and args.animation_stride < 1:
        raise CliError(f'--animation-stride must be >= 1, got {args.animation_stride}')
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise CliError(f'no checkpoint at {args.checkpoint}')
    if args.threads is not None and args.threads < 0:
        raise CliError(f'--threads must be >= 0, got {args.threads}')


def roundabout_scheme(checkpoint_path, given_scheme) -> tuple:
    """Choose how the navigator tells roundabouts: as given, else as the checkpoint was trained.

    A command checkpoint records the scheme of its training sets (`route_commands` in its
    metadata, training/data.py); None (neither) leaves RouteConfig's default.

    Returns:
        (scheme or None, a warning or None: a given scheme that differs from the checkpoint's).
    """
    trained = None
    if checkpoint_path is not None:
        from signattn_driver import checkpoint
        from signattn_driver.route_command import trained_roundabout_scheme
        trained = trained_roundabout_scheme(checkpoint.load(checkpoint_path).metadata)
    if given_scheme is None:
        return trained, None
    if trained is not None and given_scheme != trained:
        return given_scheme, (f'{checkpoint_path} was trained with roundabouts told {trained}; '
                              f'driving it with --roundabout-commands {given_scheme}')
    return given_scheme, None


def run(args) -> int:
    """Build the controllers, drive, print a table and the JSON."""
    from tqdm import tqdm

    from signattn_driver.sim.animation import animate_episode
    from signattn_driver.sim.closed_loop import (ClosedLoopConfig, evaluate_controllers,
                                                 ExpertController, ModelController,
                                                 ZeroController)
    from signattn_driver.sim.metadrive_adapter import SimConfig
    from signattn_driver.sim.metadrive_runtime import require
    from signattn_driver.sim.route import RouteConfig

    check(args)
    require()
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    device = given(device=args.device)
    routes = {'route_commands': not args.no_route_commands}
    scheme, warning = roundabout_scheme(args.checkpoint, args.roundabout_commands)
    if warning:
        logging.getLogger(__name__).warning(warning)
    config = ClosedLoopConfig(
        sim=SimConfig(**given(traffic_density=args.traffic, map_blocks=args.blocks),
                      route=RouteConfig(**given(roundabout_commands=scheme))),
        **given(seeds=tuple(args.seeds) if args.seeds else None, max_seconds=args.max_seconds,
                takeover_s=args.takeover))
    controllers = [] if args.no_baselines else [ExpertController(), ZeroController()]
    ros = None
    try:
        if args.checkpoint is not None:
            if args.through_ros:
                from signattn_driver.ros.sim_controller import RosController
                ros = RosController(args.checkpoint, **routes,
                                    **given(num_threads=args.threads))
                controllers.append(ros)
            else:
                controllers.append(ModelController(args.checkpoint, **routes, **device))
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
        if args.animation is not None:
            seed = config.seeds[0] if args.animation_seed is None else args.animation_seed
            animated = ModelController(args.checkpoint, keep_attention=True, **routes,
                                       **device)
            results['animation'] = animate_episode(animated, seed, config, args.animation,
                                                   **given(stride=args.animation_stride))
    finally:
        if ros is not None:
            ros.close()
    if args.checkpoint is not None:   # which weights drove (the JSON names them)
        from signattn_driver import checkpoint
        results['checkpoint'] = {'path': str(args.checkpoint),
                                 'sha256': checkpoint.load(args.checkpoint).file_sha256}
    print(format_table(results))
    if 'animation' in results:
        print(f'animation: {results["animation"]["animation"]} (map '
              f'{results["animation"]["seed"]}, {results["animation"]["animation_frames"]} '
              'frames)')
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + '\n')
    return 0


def _fmt(value, spec):
    return '-' if value is None else format(value, spec)


def format_table(results: dict) -> str:
    """Return the metrics table: per controller, with auto completion and events/km / expert."""
    relative = results.get('relative_to_expert', {})
    lines = [f'{"controller":<10} {"route":>6} {"auto":>6} {"auto/exp":>8} {"lat mean":>9} '
             f'{"lat p95":>8} {"oor/km":>7} {"/exp":>5} {"off":>5} {"crash":>5} {"steps/s":>7}']
    for name, m in results['controllers'].items():
        r = relative.get(name, {})
        lines.append(
            f'{name:<10} {m["route_completion"]:>6.2f} {m["autonomous_completion"]:>6.2f} '
            f'{_fmt(r.get("autonomous_completion_ratio"), ".2f"):>8} '
            f'{m["lateral_offset_mean_m"]:>8.2f}m {m["lateral_offset_p95_m"]:>7.2f}m '
            f'{m["out_of_road_per_km"]:>7.2f} {_fmt(r.get("out_of_road_per_km_ratio"), ".1f"):>5} '
            f'{m["off_road_share"]:>5.2f} {m["crashes"]:>5d} {m["steps_per_s"]:>7.1f}')
    return '\n'.join(lines)
