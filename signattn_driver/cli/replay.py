"""`signattn replay BAG`: publish a bag with its original timing (no `ros2 bag play` needed)."""

from pathlib import Path

from signattn_driver.cli.options import given
from signattn_driver.data.bag_layout import ROUTE_COMMAND_TOPIC
from signattn_driver.route_command import NODE_ROUTE_COMMAND_TOPIC


def register(subparsers):
    """Add the `replay` subcommand."""
    parser = subparsers.add_parser(
        'replay', help='publish a ROS 2 bag with its original timing',
        description='Publish every message of a ROS 2 bag (as recorded, CDR) at the bag\'s '
        'timing; Ctrl-C stops. On a full ROS 2 install `ros2 bag play` does the same.')
    parser.add_argument('bag', type=Path, help='bag directory (with metadata.yaml)')
    parser.add_argument('--rate', type=float,
                        help='speed factor (if omitted: the bag\'s own timing)')
    parser.add_argument('--loop', action='store_true', help='start over at the end')
    parser.add_argument('--clock', action='store_true',
                        help='publish /clock with the bag time (for use_sim_time:=true)')
    parser.add_argument('--topics', nargs='+', metavar='TOPIC',
                        help='only these topics (the route-command topic: its translation)')
    parser.add_argument('--route-command-topic', metavar='TOPIC',
                        help=f'also publish the bag\'s {ROUTE_COMMAND_TOPIC} (Joy) on this '
                        'topic as the drive node hears it: std_msgs/UInt8, reliable, transient '
                        f'local (if omitted: {NODE_ROUTE_COMMAND_TOPIC}, in the replay\'s '
                        'namespace like the node\'s; \'\' = not at all)')
    parser.add_argument('--wait-subscribers', type=float, metavar='S',
                        help='wait up to S seconds for a subscriber on every topic first (if '
                        'omitted: start at once)')
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from signattn_driver.ros.replay import replay_bag
    stats = replay_bag(args.bag, loop=args.loop, clock=args.clock, topics=args.topics,
                       **given(rate=args.rate, wait_for_subscribers_s=args.wait_subscribers,
                               route_command_topic=args.route_command_topic))
    total = sum(stats.counts.values())
    print(f'replayed {total} messages on {len(stats.counts)} topics in {stats.wall_s:.2f} s '
          f'(bag {stats.bag_s:.2f} s{"" if args.rate is None else f", rate {args.rate:g}"})')
    for topic, count in sorted(stats.counts.items()):
        source = stats.translated.get(topic)
        print(f'  {topic}: {count}' + (f' (std_msgs/UInt8 from {source})' if source else ''))
    if stats.route_commands_skipped:
        print(f'  {stats.route_commands_skipped} invalid route commands not translated')
    return 0
