"""A replayed simulated bag tells the drive node its route: Joy in the bag, UInt8 on the wire."""

import logging
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from signattn_driver.data.bag_layout import (camera_topic, DriveBagWriter, ROUTE_COMMAND_TOPIC,
                                             ROUTE_COMMAND_TYPE, TYPESTORE)
from signattn_driver.route_command import FOLLOW_LANE, LEFT, RIGHT, STRAIGHT

rclpy = pytest.importorskip('rclpy', reason='rclpy not installed')
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from std_msgs.msg import UInt8  # noqa: E402

pytestmark = pytest.mark.ros
PERIOD_NS = 50_000_000                        # 20 Hz, a simulated drive's frame rate
T0_NS = 1_700_000_000_000_000_000
WAIT_S = 30.0                                 # generous: a loaded 2-core machine
# What a navigator-driven drive records; 9 and 7 are damage the replay must not pass on.
RECORDED = [FOLLOW_LANE, FOLLOW_LANE, LEFT, LEFT, 9, STRAIGHT, RIGHT, 7, RIGHT]
VALID = [c for c in RECORDED if c <= RIGHT]
# The node's subscription, but deep enough that a slow test thread misses nothing.
LISTENER_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)


def write_route_bag(path, commands, with_frames: bool = False):
    """Write a bag with the route command per frame (and, if asked, tiny camera frames)."""
    joy = TYPESTORE.types[ROUTE_COMMAND_TYPE]
    with DriveBagWriter(path) as bag:
        for i, command in enumerate(commands):
            stamp = T0_NS + i * PERIOD_NS
            if with_frames:
                bag.write_image(stamp, b'\xff\xd8 not decoded by the replay')
            if i == 0 or command <= RIGHT:
                bag.write_route_command(stamp, command)
                continue
            # The writer refuses invalid commands; a damaged recording is built by hand.
            header = TYPESTORE.types['std_msgs/msg/Header'](
                stamp=TYPESTORE.types['builtin_interfaces/msg/Time'](
                    sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id='base_link')
            bag.write(ROUTE_COMMAND_TOPIC, stamp, joy(header=header, axes=np.zeros(0, np.float32),
                                                      buttons=np.array([command], np.int32)))
    return path


class Graph:
    """One context: a spun listener node, and a replay node that is not spun."""

    def __init__(self, namespace: str = ''):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.listener = rclpy.create_node('route_listener', context=self.context)
        self.replay_node = rclpy.create_node('signattn_replay', namespace=namespace or None,
                                             context=self.context)
        self.subscriptions = []
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.listener)
        self._spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self._spinner.start()

    def listen(self, topic: str, kind=UInt8, qos=LISTENER_QOS) -> list:
        heard = []
        self.subscriptions.append(self.listener.create_subscription(kind, topic, heard.append,
                                                                    qos))
        return heard

    def close(self):
        self.executor.shutdown(timeout_sec=1.0)
        self.listener.destroy_node()
        self.replay_node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture
def graph(ros_domain_id):
    graph = Graph()
    yield graph
    graph.close()


def wait_for_match(replayer, topics, subscriptions):
    """Wait until both sides matched: a reader that matches late gets only the latched one."""
    assert replayer.wait_for_subscribers(topics, WAIT_S)
    wait_until(lambda: all(s.get_publisher_count() > 0 for s in subscriptions),
               'the subscriptions to match the replay')


def wait_until(condition, what: str):
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f'gave up waiting for {what}'
        time.sleep(0.02)


def test_recorded_commands_reach_route_command_in_order_and_latched(graph, tmp_path, caplog):
    from sensor_msgs.msg import Joy
    from signattn_driver.ros.replay import BagReplayer

    bag = write_route_bag(tmp_path / 'route', RECORDED)
    heard = graph.listen('route/command')
    joys = graph.listen(ROUTE_COMMAND_TOPIC, Joy, QoSProfile(depth=100))
    replayer = BagReplayer(graph.replay_node, bag)
    assert replayer.route_command_topic == '/route/command'
    wait_for_match(replayer, ['/route/command', ROUTE_COMMAND_TOPIC], graph.subscriptions)
    # caplog listens at the root logger; a logger created after `import launch` (another test
    # module may import it first) does not propagate, so listen on the replay's logger itself.
    replay_log = logging.getLogger('signattn_driver.ros.replay')
    if not replay_log.propagate:
        replay_log.addHandler(caplog.handler)
    try:
        with caplog.at_level('WARNING', logger='signattn_driver.ros.replay'):
            stats = replayer.run()
    finally:
        replay_log.removeHandler(caplog.handler)
    wait_until(lambda: len(heard) >= len(VALID) and len(joys) == len(RECORDED),
               'the replayed commands')
    assert [m.data for m in heard] == VALID               # in bag order, damage left out
    assert [int(m.buttons[0]) for m in joys] == RECORDED  # the Joy itself still goes out
    assert stats.counts['/route/command'] == len(VALID)
    assert stats.counts[ROUTE_COMMAND_TOPIC] == len(RECORDED)
    assert stats.translated == {'/route/command': ROUTE_COMMAND_TOPIC}
    assert stats.route_commands_skipped == 2
    warnings = [r for r in caplog.records if 'route command' in r.getMessage()]
    assert len(warnings) == 1 and 'got 9' in warnings[0].getMessage()

    # A navigator's command is latched: a node that subscribes afterwards learns the current
    # one (the last, not the first of the bag).
    late = graph.listen('route/command', qos=QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL))
    wait_until(lambda: late, 'the latched command')
    time.sleep(0.2)                                       # nothing older may follow
    assert [m.data for m in late] == [RIGHT]


def test_topic_choice_follows_namespace_filter_and_flag(tmp_path, ros_domain_id):
    from signattn_driver.ros.replay import BagReplayer, ReplayError

    bag = write_route_bag(tmp_path / 'route', [LEFT, RIGHT], with_frames=True)
    graph = Graph(namespace='/car')
    try:
        node = graph.replay_node
        # Resolved as the node's own subscription is: in the namespace, unless absolute.
        assert BagReplayer(node, bag).route_command_topic == '/car/route/command'
        assert BagReplayer(node, bag, route_command_topic='/nav/cmd').route_command_topic == \
            '/nav/cmd'
        assert BagReplayer(node, bag, route_command_topic='').route_command_topic is None
        camera = camera_topic('center')
        # --topics selects bag topics; the command's translation comes with the recorded one
        only_camera = BagReplayer(node, bag, topics=[camera])
        assert list(only_camera.publishers) == [camera]
        with_route = BagReplayer(node, bag, topics=[camera, ROUTE_COMMAND_TOPIC])
        assert set(with_route.publishers) == {camera, ROUTE_COMMAND_TOPIC, '/car/route/command'}
        # ... or alone when the node's topic is named (by the name given or as resolved).
        for name in ('route/command', '/car/route/command'):
            alone = BagReplayer(node, bag, topics=[camera, name])
            assert set(alone.publishers) == {camera, '/car/route/command'}
        with pytest.raises(ReplayError, match='is a topic of the bag'):
            BagReplayer(node, bag, route_command_topic=camera)
        with pytest.raises(ReplayError, match='route command topic'):
            BagReplayer(node, bag, route_command_topic='no spaces allowed')
    finally:
        graph.close()
    # A bag without a navigator (a converted Udacity drive) publishes no command at all.
    with DriveBagWriter(tmp_path / 'udacity') as plain:
        plain.write_image(T0_NS, b'\xff\xd8')
    graph = Graph()
    try:
        replayer = BagReplayer(graph.replay_node, tmp_path / 'udacity')
        assert replayer.route_command_topic is None
        assert '/route/command' not in replayer.publishers
    finally:
        graph.close()


def test_cli_flag_names_the_topic_and_the_summary_says_what_was_translated(graph, tmp_path):
    bag = write_route_bag(tmp_path / 'route', RECORDED)
    heard = graph.listen('/nav/route_command')
    result = subprocess.run(
        [sys.executable, '-m', 'signattn_driver', 'replay', str(bag), '--rate', '4',
         '--route-command-topic', '/nav/route_command', '--topics', '/nav/route_command',
         '--wait-subscribers', '30'], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    wait_until(lambda: len(heard) >= len(VALID), 'the commands over the CLI')
    assert [m.data for m in heard] == VALID
    assert f'replayed {len(VALID)} messages on 1 topics' in result.stdout
    assert (f'/nav/route_command: {len(VALID)} (std_msgs/UInt8 from {ROUTE_COMMAND_TOPIC})'
            in result.stdout)
    assert '2 invalid route commands not translated' in result.stdout


@pytest.fixture
def command_checkpoint(tmp_path):
    import torch
    from conftest import tiny_config
    from signattn_driver import checkpoint
    from signattn_driver.model import SteeringNet
    torch.manual_seed(0)
    model = SteeringNet(tiny_config(num_commands=4)).eval()
    return checkpoint.save(tmp_path / 'command.pt', model, vehicle={'name': 'mkz'})


def test_a_drive_node_steers_with_the_replayed_commands(command_checkpoint, tmp_path, graph):
    from rclpy.parameter import Parameter
    from signattn_driver.ros.drive_node import DriveNode
    from signattn_driver.ros.replay import BagReplayer

    recorded = [LEFT] * 4 + [STRAIGHT] * 4 + [RIGHT] * 4
    bag = write_route_bag(tmp_path / 'route', recorded)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = DriveNode(context=context, parameter_overrides=[
        Parameter('checkpoint', value=str(command_checkpoint)), Parameter('device', value='cpu'),
        Parameter('num_threads', value=1), Parameter('route_command_timeout_s', value=60.0)])
    heard = []                                 # the commands the node takes, in order
    receive = node.route.receive
    node.route.receive = lambda value, now_s: (heard.append(value), receive(value, now_s))[1]
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        # half speed: 100 ms between commands, room for a loaded machine
        replayer = BagReplayer(graph.replay_node, bag, rate=0.5, topics=['route/command'])
        wait_for_match(replayer, ['/route/command'], [node._route_input])
        replayer.run()
        wait_until(lambda: heard and heard[-1] == RIGHT, "the node's route input")
        # The node keeps the newest command only (depth 1): on a busy machine it may take a
        # repeated one too late, but never one out of order, and each turn reaches it.
        assert heard == sorted(heard) and set(heard) == {LEFT, STRAIGHT, RIGHT}, heard
        state = node.route.state(time.monotonic())
        assert (state.command, state.source) == (RIGHT, 'topic')   # what it now steers with
        assert state.describe().startswith('right (topic')          # as /diagnostics says
    finally:
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown(context=context)
