"""`signattn evaluate-live --bag BAG`: replay a bag to the drive node and score its commands."""

from pathlib import Path

from signattn_driver.data.bag_layout import camera_topic
from signattn_driver.cli import CliError


def register(subparsers):
    """Add the `evaluate-live` subcommand."""
    parser = subparsers.add_parser(
        'evaluate-live', help='replay a bag to the drive node and score it live',
        description='Replay BAG\'s camera to a drive node and compare its steering/command '
        'with the bag\'s ground truth by header stamp. With --checkpoint a node is started '
        'here; without it, a running node (same ROS_DOMAIN_ID) is used.')
    parser.add_argument('--bag', type=Path, required=True, help='bag written by the converter')
    parser.add_argument('--checkpoint', type=Path,
                        help='start a drive node with this checkpoint (default: attach)')
    parser.add_argument('--out', type=Path, default=Path('outputs/live_evaluation'),
                        help='report folder (default outputs/live_evaluation)')
    parser.add_argument('--rate', type=float, default=1.0, help='replay speed (1 = real time)')
    parser.add_argument('--vehicle', default='mkz', help='vehicle profile for eq. 3')
    parser.add_argument('--device', default='auto', help='device of a started node')
    parser.add_argument('--precision', default='fp32', choices=['fp32', 'bf16', 'int8'],
                        help='precision of a started node')
    parser.add_argument('--camera-topic', default=camera_topic('center'))
    parser.add_argument('--command-topic', default='/steering/command')
    parser.add_argument('--node-name', default='drive_node',
                        help='node whose ~/reset_state is called before the replay')
    parser.add_argument('--startup-timeout', type=float, default=60.0, metavar='S')
    parser.add_argument('--attention-gif', type=int, default=0, metavar='N',
                        help='record the first N attention overlays as OUT/attention.gif')
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from signattn_driver.ros.live_evaluation import (evaluate_live, LiveEvaluationConfig,
                                                     LiveEvaluationError)
    from signattn_driver.ros.replay import ReplayError
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise CliError(f'checkpoint not found: {args.checkpoint}')
    cfg = LiveEvaluationConfig(
        bag=args.bag, out_dir=args.out, checkpoint=args.checkpoint, rate=args.rate,
        vehicle=args.vehicle, camera_topic=args.camera_topic, command_topic=args.command_topic,
        node_name=args.node_name, device=args.device, precision=args.precision,
        startup_timeout_s=args.startup_timeout, attention_gif_frames=args.attention_gif)
    try:
        report = evaluate_live(cfg)
    except (LiveEvaluationError, ReplayError) as err:
        raise CliError(str(err)) from err
    print(f'{report["commands_received"]}/{report["frames_published"]} frames answered, '
          f'MAE u {report["mae_inverse_radius_per_m"]}, MAE steering wheel '
          f'{report["mae_steering_wheel_deg"]} deg, latency p50 {report["latency_p50_ms"]} ms '
          f'p99 {report["latency_p99_ms"]} ms')
    print(f'report: {args.out / "live_evaluation.md"}')
    return 0
