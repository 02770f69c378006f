"""`signattn demo`: the shipped checkpoint drives the shipped sample drive through the node."""

import os
from pathlib import Path
import random

from signattn_driver.cli.options import given, option


def isolate_dds(environ=os.environ):
    """Keep DDS on loopback with a domain of our own unless the caller chose one.

    The demo's own process talks DDS (rclpy reads these at init) and so does the node it starts
    (it inherits them): the command line, not the library, sets them.
    """
    environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    environ.setdefault('ROS_DOMAIN_ID', str(random.Random(os.getpid()).randint(1, 101)))
    environ.setdefault('FASTDDS_BUILTIN_TRANSPORTS', 'LARGE_DATA')


def register(subparsers):
    """Add `demo`."""
    from signattn_driver.choices import DEVICE_HELP
    from signattn_driver.ros.demo import DemoConfig
    parser = subparsers.add_parser(
        'demo', help='drive the shipped sample through the real node; write outputs/demo/',
        description='Starts drive_node with the shipped checkpoint, replays the shipped sample '
                    'drive over loopback DDS, and scores its attention with the deletion metric.')
    option(parser, '--out', type=Path, owner=DemoConfig, name='out_dir', help='output folder')
    parser.add_argument('--checkpoint', type=Path,
                        help='if omitted: the shipped checkpoint (config/models/)')
    parser.add_argument('--bag', type=Path, help='if omitted: the shipped sample drive')
    option(parser, '--deletion-frames', type=int, owner=DemoConfig,
           help='frames scored by the deletion metric')
    option(parser, '--gif-frames', type=int, owner=DemoConfig,
           help='frames in the animation (attention and contribution side by side)')
    option(parser, '--device', owner=DemoConfig, help=DEVICE_HELP)
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from signattn_driver.ros.demo import DemoConfig, run_demo
    cfg = DemoConfig(checkpoint=args.checkpoint, bag=args.bag, **given(
        out_dir=args.out, deletion_frames=args.deletion_frames, gif_frames=args.gif_frames,
        device=args.device))
    isolate_dds()
    summary = run_demo(cfg, announce=print)
    live, off = summary['live'], summary['offline']
    print(f'\nlive: {live["commands_received"]}/{live["frames_published"]} frames answered, '
          f'MAE {live["mae_steering_wheel_deg"]:.2f} deg steering wheel (always straight: '
          f'{live["zero_steering_mae_deg"]:.2f}), latency p50 '
          f'{live["latency_p50_ms"]:.1f} ms, p99 {live["latency_p99_ms"]:.1f} ms')
    for method, v in off['methods'].items():
        print(f'deletion AUC 0-25 % {method:>9}: output change '
              f'{v["output_change_auc_25_deg_pct"]:7.1f}, vs label (paper) '
              f'{v["deletion_auc_25_deg_pct"]:7.1f} deg x %')
    print(f'\nLook at: {cfg.out_dir / "summary.md"}\n'
          f'         {live["attention_gif"]}  (the node\'s maps: {live["gif_layout"]})\n'
          f'         {off["deletion_plot"]}  (output-change deletion curves)')
    return 0
