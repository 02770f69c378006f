"""`signattn evaluate-live --bag BAG`: replay a bag to the drive node and score its commands."""

from pathlib import Path

from signattn_driver.cli import CliError
from signattn_driver.cli.options import given, option


def register(subparsers):
    """Add the `evaluate-live` subcommand."""
    from signattn_driver.choices import DEVICE_HELP
    from signattn_driver.choices import PRECISIONS
    from signattn_driver.ros.live_evaluation import LiveEvaluationConfig as Config
    parser = subparsers.add_parser(
        'evaluate-live', help='replay a bag to the drive node and score it live',
        description='Replay BAG\'s camera to a drive node and compare its steering/command '
        'with the bag\'s ground truth by header stamp. With --checkpoint a node is started '
        'here; without it, a running node (same ROS_DOMAIN_ID) is used.')
    parser.add_argument('--bag', type=Path, required=True, help='bag written by the converter')
    parser.add_argument('--checkpoint', type=Path,
                        help='start a drive node with this checkpoint (if omitted: attach to '
                        'a running one)')
    option(parser, '--out', type=Path, owner=Config, name='out_dir', help='report folder')
    option(parser, '--rate', type=float, owner=Config, help='replay speed (1 = real time)')
    option(parser, '--vehicle', owner=Config, help='vehicle profile for eq. 3')
    option(parser, '--device', owner=Config, help=f'device of a started node: {DEVICE_HELP}')
    option(parser, '--precision', choices=PRECISIONS, owner=Config,
           help='precision of a started node')
    option(parser, '--camera-topic', owner=Config, help='camera topic replayed from the bag')
    option(parser, '--command-topic', owner=Config, help='the node\'s steering commands')
    option(parser, '--node-name', owner=Config,
           help='node whose ~/reset_state is called before the replay')
    option(parser, '--startup-timeout', type=float, metavar='S', owner=Config,
           name='startup_timeout_s', help='seconds a started node may take to come up')
    option(parser, '--attention-gif', type=int, metavar='N', owner=Config,
           name='attention_gif_frames',
           help='record the first N frames of the node\'s two maps (attention and '
           'attention/contribution, side by side) as OUT/attention.gif')
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from signattn_driver.ros.live_evaluation import evaluate_live, LiveEvaluationConfig
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise CliError(f'checkpoint not found: {args.checkpoint}')
    cfg = LiveEvaluationConfig(bag=args.bag, checkpoint=args.checkpoint, **given(
        out_dir=args.out, rate=args.rate, vehicle=args.vehicle, camera_topic=args.camera_topic,
        command_topic=args.command_topic, node_name=args.node_name, device=args.device,
        precision=args.precision, startup_timeout_s=args.startup_timeout,
        attention_gif_frames=args.attention_gif))
    report = evaluate_live(cfg)
    print(f'{report["commands_received"]}/{report["frames_published"]} frames answered, '
          f'MAE u {report["mae_inverse_radius_per_m"]}, MAE steering wheel '
          f'{report["mae_steering_wheel_deg"]} deg, latency p50 {report["latency_p50_ms"]} ms '
          f'p99 {report["latency_p99_ms"]} ms')
    if report.get('attention_gif'):
        print(f'{report["contribution_frames_received"]} contribution overlays received; '
              f'{report["attention_gif"]}: {report["gif_frames"]} frames, '
              f'{report["gif_layout"]}')
    print(f'report: {cfg.out_dir / "live_evaluation.md"}')
    return 0
