"""Publish a ROS 2 bag's messages with their original timing (`signattn replay`).

For installs without `ros2 bag play` (rosbag2_py): the bag is read with rosbags and every
message goes out as the serialized CDR it was recorded as (`Publisher.publish(bytes)`), so no
message is decoded and re-encoded. Timing follows the bag's receive timestamps, scaled by
`rate`; `loop` starts over (time jumps back, as with `ros2 bag play --loop`); `clock` also
publishes the bag time on /clock for nodes with use_sim_time.

The drive node hears the route command on `route/command` (std_msgs/UInt8), not as the Joy a
bag records it (/vehicle/route_command, data/bag_layout.py). So each recorded command also
goes out, at its bag time, as a UInt8 on the node's topic with the node's QoS (reliable,
transient local: a node started late still gets the current one); the Joy goes out as well.
"""

from dataclasses import dataclass, field
import importlib
import logging
from pathlib import Path
import threading
import time

from rclpy.qos import QoSProfile
from rosbags.rosbag2 import Reader

from signattn_driver.data.bag_layout import ROUTE_COMMAND_TOPIC, ROUTE_COMMAND_TYPE
from signattn_driver.data.route_command_topics import command_of_recorded
from signattn_driver.errors import RosError
from signattn_driver.ros.node_process import nothing_heard_hint
from signattn_driver.route_command import NODE_ROUTE_COMMAND_TOPIC

log = logging.getLogger(__name__)


class ReplayError(RosError):
    """A bag that cannot be replayed (missing, unreadable, no playable topic)."""


@dataclass
class ReplayStats:
    """What a replay published: counts per topic, loops completed, wall duration.

    The route command's UInt8 translation is counted under its own (resolved) topic in
    `counts`; `translated` maps that topic to the bag topic it comes from.
    """

    counts: dict = field(default_factory=dict)
    loops: int = 0
    wall_s: float = 0.0
    bag_s: float = 0.0
    skipped_topics: dict = field(default_factory=dict)   # topic -> reason
    translated: dict = field(default_factory=dict)       # node topic -> bag topic
    route_commands_skipped: int = 0                      # invalid recorded commands


def message_class(msgtype: str):
    """Return the rclpy message class for 'pkg/msg/Name' (None when not importable)."""
    package, _, name = msgtype.split('/')
    try:
        return getattr(importlib.import_module(f'{package}.msg'), name)
    except (ImportError, AttributeError):
        return None


class BagReplayer:
    """Publishes one bag through an existing node.

    Example:
        replayer = BagReplayer(node, 'drive_bag', rate=1.0, clock=True)
        replayer.wait_for_subscribers(['/center_camera/image_color/compressed'], timeout_s=10)
        stats = replayer.run()

    Args:
        topics: bag topics to replay (None = all). The route command's translation goes out
            when /vehicle/route_command is among them or when they name its topic.
        route_command_topic: the drive node's route-command topic (relative names resolve in
            `node`'s namespace, as the node's own); '' publishes no translation.
    """

    def __init__(self, node, bag, rate: float = 1.0, loop: bool = False, clock: bool = False,
                 topics=None, clock_hz: float = 40.0,
                 route_command_topic: str = NODE_ROUTE_COMMAND_TOPIC):
        if not rate > 0:
            raise ReplayError(f'rate must be > 0, got {rate}')
        self.node, self.bag, self.rate, self.loop = node, Path(bag), rate, loop
        self.clock_hz = clock_hz
        if not (self.bag / 'metadata.yaml').is_file():
            raise ReplayError(f'{self.bag}: not a ROS 2 bag (no metadata.yaml)')
        self.stats = ReplayStats()
        self.publishers = {}
        qos = QoSProfile(depth=100)
        recorded_route_type = None
        try:
            with Reader(self.bag) as reader:
                self.stats.bag_s = reader.duration * 1e-9
                recorded_route_type = next((c.msgtype for c in reader.connections
                                            if c.topic == ROUTE_COMMAND_TOPIC), None)
                for conn in reader.connections:
                    if topics and conn.topic not in topics or conn.topic in self.publishers:
                        continue
                    cls = message_class(conn.msgtype)
                    if cls is None:
                        self.stats.skipped_topics[conn.topic] = f'{conn.msgtype} not importable'
                        continue
                    self.publishers[conn.topic] = node.create_publisher(cls, conn.topic, qos)
        except ReplayError:
            raise
        except Exception as err:  # rosbags raises several types for damaged bags
            raise ReplayError(f'{self.bag}: unreadable bag: {err}') from err
        self.route_command_topic = None    # resolved name of the translation; None: none
        if route_command_topic and recorded_route_type is not None:
            self._open_route_command(route_command_topic, recorded_route_type, topics)
        if not self.publishers:
            raise ReplayError(f'{self.bag}: no topic to replay (skipped: '
                              f'{self.stats.skipped_topics or "none"})')
        for topic, reason in self.stats.skipped_topics.items():
            log.warning('not replaying %s: %s', topic, reason)
        self.clock_publisher = None
        if clock:
            from rosgraph_msgs.msg import Clock
            self._clock_msg = Clock()
            self.clock_publisher = node.create_publisher(Clock, '/clock', QoSProfile(depth=10))

    def _open_route_command(self, name: str, msgtype: str, topics):
        """Create the UInt8 publisher on the node's route-command topic, if `topics` allow."""
        from std_msgs.msg import UInt8
        from signattn_driver.ros.drive_parameters import ROUTE_COMMAND_QOS
        try:
            resolved = self.node.resolve_topic_name(name)
        except Exception as err:  # rclpy's InvalidTopicNameException and kin
            raise ReplayError(f'route command topic {name!r}: {err}') from err
        if topics and not {ROUTE_COMMAND_TOPIC, name, resolved} & set(topics):
            return
        if msgtype != ROUTE_COMMAND_TYPE:
            self.stats.skipped_topics[resolved] = (f'{ROUTE_COMMAND_TOPIC} is {msgtype}, '
                                                   f'not {ROUTE_COMMAND_TYPE}')
            return
        if resolved == ROUTE_COMMAND_TOPIC or resolved in self.publishers:
            raise ReplayError(f'route command topic {resolved} is a topic of the bag; '
                              'choose another (the drive node listens on route/command)')
        self.publishers[resolved] = self.node.create_publisher(UInt8, resolved,
                                                               ROUTE_COMMAND_QOS)
        self.route_command_topic, self._route_msg = resolved, UInt8()
        self.stats.translated[resolved] = ROUTE_COMMAND_TOPIC

    def _publish_route_command(self, raw, msgtype: str) -> bool:
        """Publish a recorded route command as UInt8; False (and skip it) when invalid."""
        try:
            self._route_msg.data = command_of_recorded(bytes(raw), msgtype)
        except ValueError as err:
            self.stats.route_commands_skipped += 1
            if self.stats.route_commands_skipped == 1:
                log.warning('skipping invalid recorded route commands (ReplayStats.'
                            'route_commands_skipped counts them), the first: %s', err)
            return False
        self.publishers[self.route_command_topic].publish(self._route_msg)
        counts = self.stats.counts
        counts[self.route_command_topic] = counts.get(self.route_command_topic, 0) + 1
        return True

    def wait_for_subscribers(self, topics, timeout_s: float) -> bool:
        """Wait until each of `topics` has a subscriber; return whether all did in time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(self.publishers[t].get_subscription_count() > 0 for t in topics):
                return True
            time.sleep(0.05)
        return False

    def flush(self, timeout_s: float = 2.0):
        """Wait until reliable subscribers acknowledged everything (before the process ends)."""
        from rclpy.duration import Duration
        deadline = time.monotonic() + timeout_s
        for publisher in self.publishers.values():
            left = max(deadline - time.monotonic(), 0.0)
            publisher.wait_for_all_acked(Duration(nanoseconds=int(left * 1e9)))

    def _publish_clock(self, bag_ns: int):
        self._clock_msg.clock.sec, self._clock_msg.clock.nanosec = divmod(bag_ns, 1_000_000_000)
        self.clock_publisher.publish(self._clock_msg)

    def _sleep_until(self, wall_target: float, bag_start_ns: int, wall_start: float,
                     stop: threading.Event):
        """Sleep to `wall_target` (perf_counter s), ticking /clock on the way when asked."""
        while True:
            now = time.perf_counter()
            if now >= wall_target or stop.is_set():
                return
            step = wall_target - now
            if self.clock_publisher is not None:
                step = min(step, 1.0 / self.clock_hz)
                self._publish_clock(bag_start_ns + int((now - wall_start) * self.rate * 1e9))
            stop.wait(step)

    def run(self, stop: threading.Event | None = None, on_publish=None) -> ReplayStats:
        """Publish the bag (again and again with `loop`) until done or `stop` is set.

        Args:
            stop: set it from another thread to end the replay early.
            on_publish: called as on_publish(topic, bag_time_ns, rawdata, wall_perf_s) after
                each message went out (for the route command's translation: its topic and
                the recorded Joy's CDR).
        """
        stop = stop or threading.Event()
        begin = time.perf_counter()
        try:
            with Reader(self.bag) as reader:
                conns = [c for c in reader.connections if c.topic in self.publishers
                         or self.route_command_topic and c.topic == ROUTE_COMMAND_TOPIC]
                while not stop.is_set():
                    wall_start, bag_start = time.perf_counter(), None
                    for conn, bag_ns, raw in reader.messages(connections=conns):
                        if bag_start is None:
                            bag_start = bag_ns
                        self._sleep_until(wall_start + (bag_ns - bag_start) * 1e-9 / self.rate,
                                          bag_start, wall_start, stop)
                        if stop.is_set():
                            break
                        if self.clock_publisher is not None:
                            self._publish_clock(bag_ns)
                        if conn.topic in self.publishers:
                            self.publishers[conn.topic].publish(bytes(raw))
                            counts = self.stats.counts
                            counts[conn.topic] = counts.get(conn.topic, 0) + 1
                            if on_publish is not None:
                                on_publish(conn.topic, bag_ns, raw, time.perf_counter())
                        if (conn.topic == ROUTE_COMMAND_TOPIC and self.route_command_topic
                                and self._publish_route_command(raw, conn.msgtype)
                                and on_publish is not None):
                            on_publish(self.route_command_topic, bag_ns, raw,
                                       time.perf_counter())
                    else:
                        self.stats.loops += 1
                    if not self.loop:
                        break
        except Exception as err:
            raise ReplayError(f'{self.bag}: replay failed: {err}') from err
        self.stats.wall_s = time.perf_counter() - begin
        return self.stats


def _wait_for_listeners(replayer: BagReplayer, timeout_s: float):
    """Wait for a subscriber on every topic; an error when no topic has one.

    Raises:
        ReplayError: after `timeout_s` not one replayed topic has a subscriber.
    """
    if replayer.wait_for_subscribers(list(replayer.publishers), timeout_s):
        return
    heard = [t for t, p in replayer.publishers.items() if p.get_subscription_count() > 0]
    if not heard:
        raise ReplayError(f'no subscriber on any of the {len(replayer.publishers)} topics '
                          f'after {timeout_s:.1f} s: {nothing_heard_hint()}')
    log.warning('%d of %d topics have no subscriber after %.1f s; replaying anyway',
                len(replayer.publishers) - len(heard), len(replayer.publishers), timeout_s)


def replay_bag(bag, rate: float = 1.0, loop: bool = False, clock: bool = False, topics=None,
               wait_for_subscribers_s: float = 0.0, stop: threading.Event | None = None,
               node_name: str = 'signattn_replay',
               route_command_topic: str = NODE_ROUTE_COMMAND_TOPIC) -> ReplayStats:
    """Replay a bag from its own rclpy context (the body of `signattn replay`).

    Args:
        bag: ROS 2 bag directory.
        rate: speed factor (2 = twice as fast).
        loop: start over at the end until stopped (Ctrl-C).
        clock: publish /clock with the bag time.
        topics: only these topics (None = all whose message types are importable); naming
            the route-command topic selects the recorded command's translation alone.
        wait_for_subscribers_s: before starting, wait up to this long for a subscriber on
            every replayed topic (discovery takes a moment; 0 = start at once); with no
            subscriber on any topic by then, a ReplayError says why that may be.
        stop: set it from another thread to end early.
        node_name: name of the replaying node.
        route_command_topic: publish the bag's /vehicle/route_command on this topic as the
            drive node hears it (std_msgs/UInt8, reliable, transient local); '' = not at all.
    """
    import rclpy
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(node_name, context=context)
    try:
        replayer = BagReplayer(node, bag, rate=rate, loop=loop, clock=clock, topics=topics,
                               route_command_topic=route_command_topic)
        if wait_for_subscribers_s > 0:
            _wait_for_listeners(replayer, wait_for_subscribers_s)
        stats = replayer.run(stop=stop)
        replayer.flush()
        return stats
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
