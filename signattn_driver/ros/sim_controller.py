"""Closed-loop driving through the real drive node: MetaDrive frames out over DDS, commands back.

The simulator side (signattn_driver.sim.closed_loop) stays free of ROS; this controller is the
one piece of the closed loop that talks to a ROS graph.
"""

from pathlib import Path
import time

from geometry_msgs.msg import Vector3Stamped
import rclpy
from rclpy.duration import Duration
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import UInt8
from std_srvs.srv import Trigger

from signattn_driver.data.labels import stamp_ns_of
from signattn_driver.ros.drive_parameters import PARAMETERS, ROUTE_COMMAND_QOS
from signattn_driver.ros.node_process import (NodeProcess, NodeProcessError, node_environment,
                                              nothing_heard_hint)
from signattn_driver.route_command import FOLLOW_LANE, NODE_ROUTE_COMMAND_TOPIC
from signattn_driver.sim.closed_loop import ClosedLoopError, InverseRadiusController


class RosController(InverseRadiusController):
    """The real drive node: frames out on a CompressedImage topic, `steering/command` back.

    Lock-step: each frame is published and the node's command for that frame's stamp is
    awaited, so the simulation never runs ahead of the node. A frame unanswered after
    `resend_s` is published again (the node may still be starting, or lose a frame sent best
    effort); the node steers on a stamp once and refuses later copies (`rejected_duplicate`),
    so its LSTM steps once per frame as in process. `frames_resent` counts the copies. The
    node applies the sequence rule (`signattn_driver.data.sequence_rule`) itself: a stamp gap
    or backward jump restarts its LSTM; `reset()` (a new episode) calls its `~/reset_state`
    service, the explicit reset.

    The navigator's route command goes to the node's `route/command` (std_msgs/UInt8, reliable
    and transient-local, as the node subscribes) just before each frame, so it is never older
    than the node's `route_command_timeout_s` however slowly the simulation runs; with
    `route_commands=False` none is sent (the node then steers follow-lane). DDS keeps no order
    between two topics, so a frame goes out only once the node has acknowledged a command of
    the frame's value sent less than half the node's timeout ago: the node's executor then
    takes the command first and steers the frame with it (the wait, a few ms, is spent only
    when the command changes and once per that half timeout).
    """

    name = 'ros'
    CAMERA_TOPIC = '/sim/center_camera/image_color/compressed'
    COMMAND_TOPIC = '/sim/steering/command'
    ROUTE_COMMAND_TOPIC = '/sim/route/command'
    RESET_SERVICE = '/drive_node/reset_state'
    ACK_WAIT_S = 1.0   # then the command is published again (the node may be starting)

    def __init__(self, checkpoint_path, vehicle='metadrive', timeout_s: float = 30.0,
                 num_threads: int = 0, route_commands: bool = True, resend_s: float = 1.0):
        super().__init__(vehicle)
        self.timeout_s = timeout_s
        self.route_commands = route_commands
        self.resend_s = resend_s
        self.frames_resent = 0
        # the node starts with the default timeout; a command acknowledged within half of it
        # is still in force when the next frame arrives
        self._ack_valid_s = PARAMETERS['route_command_timeout_s'].default / 2
        self._acked = None   # (command, monotonic s it was published) the node acknowledged
        self._rclpy, self._msg = rclpy, CompressedImage
        self.node_process = NodeProcess(
            parameters={'checkpoint': Path(checkpoint_path), 'device': 'cpu',
                        'vehicle': vehicle, 'publish_attention': False,
                        'num_threads': int(num_threads)},
            remaps={'image/compressed': self.CAMERA_TOPIC,
                    'steering/command': self.COMMAND_TOPIC,
                    NODE_ROUTE_COMMAND_TOPIC: self.ROUTE_COMMAND_TOPIC}, env=node_environment())
        self.process = self.node_process.process
        self._context = rclpy.Context()
        rclpy.init(context=self._context)
        self.node = Node('signattn_drive_sim', context=self._context)
        self._pub = self.node.create_publisher(CompressedImage, self.CAMERA_TOPIC, 10)
        self._route_pub = self.node.create_publisher(UInt8, self.ROUTE_COMMAND_TOPIC,
                                                     ROUTE_COMMAND_QOS)
        self._answers = {}
        self.node.create_subscription(Vector3Stamped, self.COMMAND_TOPIC, self._on_command, 10)
        self._reset_client = self.node.create_client(Trigger, self.RESET_SERVICE)
        self._answered = False      # the node has answered a frame since it started
        self.resets = 0
        self._executor = rclpy.executors.SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self.node)

    def _on_command(self, msg):
        self._answers[stamp_ns_of(msg.header)] = float(msg.vector.x)

    def _check_alive(self):
        try:
            self.node_process.check_alive()
        except NodeProcessError as err:
            raise ClosedLoopError(str(err)) from err

    def reset(self):
        """Make the node start a new sequence at the next frame (its ~/reset_state service).

        Before the node has answered any frame there is no state to forget: its first frame
        starts a sequence.
        """
        if not self._answered:
            return
        deadline = time.monotonic() + self.timeout_s
        while not self._reset_client.service_is_ready():
            self._check_alive()
            if time.monotonic() > deadline:
                raise ClosedLoopError(f'drive_node offers no {self.RESET_SERVICE}: '
                                      f'{nothing_heard_hint()}')
            self._executor.spin_once(timeout_sec=0.05)
        future = self._reset_client.call_async(Trigger.Request())
        while not future.done():
            self._check_alive()
            if time.monotonic() > deadline:
                raise ClosedLoopError(f'no answer from {self.RESET_SERVICE} in '
                                      f'{self.timeout_s} s')
            self._executor.spin_once(timeout_sec=0.01)
        if not future.result().success:
            raise ClosedLoopError(f'{self.RESET_SERVICE} failed: {future.result().message}')
        self.resets += 1

    def steer(self, jpeg, stamp_ns, speed_mps, sim, route_command=FOLLOW_LANE) -> float:
        """Publish the route command and the frame, wait for the node's steering for it."""
        msg = self._msg()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 10**9)
        msg.header.frame_id = 'center_camera'
        msg.format = 'jpeg'
        msg.data = jpeg
        deadline = time.monotonic() + self.timeout_s
        next_send, sent = 0.0, 0
        while stamp_ns not in self._answers:
            self._check_alive()
            now = time.monotonic()
            if now > deadline:
                raise ClosedLoopError(f'no steering/command from drive_node in '
                                      f'{self.timeout_s} s: {nothing_heard_hint()}')
            if now >= next_send and self._route_command_delivered(route_command):
                # resend until answered: the node may still be starting, or lose a frame
                self._pub.publish(msg)
                self.frames_resent += 1 if sent else 0
                sent += 1
                next_send = time.monotonic() + self.resend_s
            self._executor.spin_once(timeout_sec=0.01)
        u = self._answers.pop(stamp_ns)
        self._answers.clear()
        self._answered = True
        return self.command(u, speed_mps)

    def _route_command_delivered(self, route_command: int) -> bool:
        """Publish the route command; return whether the node holds it (see the class doc).

        False while the node's `route/command` subscription is not matched yet (discovery):
        a frame sent then could be steered with no command. Without route commands: True.
        """
        if not self.route_commands:
            return True
        published_s = time.monotonic()
        self._route_pub.publish(UInt8(data=int(route_command)))
        if (self._acked is not None and self._acked[0] == route_command
                and published_s - self._acked[1] < self._ack_valid_s):
            return True
        if self._route_pub.get_subscription_count() == 0:
            return False
        if not self._route_pub.wait_for_all_acked(Duration(seconds=self.ACK_WAIT_S)):
            return False
        self._acked = (route_command, published_s)
        return True

    def close(self):
        """Stop the node subprocess and the client."""
        self.node_process.close()
        self._executor.shutdown()
        self.node.destroy_node()
        self._rclpy.try_shutdown(context=self._context)
