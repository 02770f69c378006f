"""The live viewer's ROS side: the drive node's topics in, the viewer's hub fed.

Subscribes to `steering/command` (geometry_msgs/Vector3Stamped, vector.x = u in 1/m),
`/diagnostics` (the drive_node status), `route/command` (std_msgs/UInt8, optional) and, only
while a browser or a Foxglove client watches, `attention` and `attention/contribution`
(sensor_msgs/Image: the bgr8 overlay, or the raw 32FC1 map). The drive node computes overlays
only while someone subscribes, so an idle viewer costs the node nothing. Overlays become JPEG
here, in the viewer's process. A raw map (the node run with attention_raw:=true, the cheap
way for the node) is sent with the camera's own JPEG of the same stamp, taken from
`image/compressed` (remap it like the node's input), and the page draws the heat map. The page
and the Foxglove bridge (signattn_driver.viewer) only send bytes. Parameters mirror
`ViewerConfig`; how to use it: docs/viewer.md.
"""

import collections
from dataclasses import asdict, fields
import math
import os
import signal
import sys
import threading
import time

import numpy as np
import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, qos_profile_sensor_data, QoSProfile, ReliabilityPolicy

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Vector3Stamped
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import UInt8

from signattn_driver.data.labels import stamp_ns_of
from signattn_driver.ros.image_conversion import (compressed_image_size, image_msg_to_array,
                                                  ImageConversionError)
from signattn_driver.route_command import NODE_ROUTE_COMMAND_TOPIC
from signattn_driver.vehicle import load_vehicle, steering_from_inverse_radius
from signattn_driver.viewer.config import ViewerConfig, ViewerError
from signattn_driver.viewer.frames import FrameEncodingError, make_frame, raw_map_bgr
from signattn_driver.viewer.hub import Frame, StreamHub
from signattn_driver.viewer.status import DRIVE_STATUS_PREFIX, NodeStatusTracker, route_state

IMAGE_TOPICS = {'attention': 'attention', 'contribution': 'attention/contribution'}
CAMERA_TOPIC = 'image/compressed'   # the node's input, for raw attention maps
CAMERA_FRAMES_KEPT = 30             # by stamp: a map arrives one processing time after its frame
MAX_INPUT_PIXELS = 4096 * 4096
SUBSCRIPTION_CHECK_S = 0.25   # how soon a new browser gets pictures
PARAMETER_TEXT = {
    'host': 'address of the page and the Foxglove server (not loopback: warned)',
    'port': 'web page port: http://host:port/',
    'foxglove': 'also serve the Foxglove WebSocket protocol',
    'foxglove_port': 'Foxglove WebSocket port: ws://host:foxglove_port',
    'trace_s': 'steering trace length on the page, s',
    'stale_s': 'the page calls frames or status missing after this long, s',
    'jpeg_quality': 'JPEG quality 1-100 of the pictures sent',
    'max_clients': 'browser connections served at once',
    'vehicle': 'vehicle profile for the steering-wheel angle shown next to u',
    'niceness': 'added to the viewer process nice value: the drive node wins the CPU',
}


def _level(value) -> int:
    """DiagnosticStatus.level is a byte: bytes of length 1 in rclpy."""
    return value[0] if isinstance(value, (bytes, bytearray)) else int(value)


def float_map(msg) -> np.ndarray:
    """Return the (height, width) float32 array of a 32FC1 Image (attention_raw:=true)."""
    dtype = np.dtype('>f4' if msg.is_bigendian else '<f4')
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0 or step < 4 * width or len(msg.data) < step * height:
        raise ImageConversionError(f'32FC1 image {width}x{height}, step {step}, '
                                   f'{len(msg.data)} bytes is inconsistent', 'truncated')
    rows = np.frombuffer(bytes(msg.data[:step * height]), np.uint8).reshape(height, step)
    return rows[:, :4 * width].copy().view(dtype).reshape(height, width).astype(np.float32)


class ViewerNode(Node):
    """Feed a StreamHub from the drive node's topics; see the module docstring.

    Args:
        hub: where commands, status and pictures go.
        config: the defaults of the node's parameters (ROS overrides win).
        **kwargs: for rclpy's Node.
    """

    def __init__(self, hub: StreamHub, config: ViewerConfig | None = None, **kwargs):
        super().__init__('viewer', **kwargs)
        defaults = asdict(config or ViewerConfig())
        for name, value in defaults.items():
            self.declare_parameter(name, value, ParameterDescriptor(
                description=PARAMETER_TEXT[name], read_only=True))
        self.config = ViewerConfig(**{f.name: self.get_parameter(f.name).value
                                      for f in fields(ViewerConfig)})
        self.hub = hub
        self.hub.trace_s = self.config.trace_s
        try:
            self.vehicle = load_vehicle(self.config.vehicle)
        except Exception as err:   # missing or malformed profile file
            raise ViewerError(f'vehicle {self.config.vehicle!r}: '
                              f'{str(err).splitlines()[0]}') from err
        # Set by run_viewer once the servers run: whether anyone watches a picture stream (then
        # the node subscribes to it), and whether anyone can take a new picture right now (then
        # an arriving one is converted and encoded; otherwise it is skipped).
        self.watched = self.ready = lambda stream: False
        self._tracker = NodeStatusTracker()
        reliable = QoSProfile(depth=10)
        self.create_subscription(Vector3Stamped, 'steering/command', self._on_command, reliable)
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics,
                                 reliable)
        # best effort matches any publisher of the route (reliable or not)
        self.create_subscription(UInt8, NODE_ROUTE_COMMAND_TOPIC, self._on_route, QoSProfile(
            depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
        # depth 1: only the newest picture matters; reliable, as raw 640x480 frames sent best
        # effort get lost over Fast DDS LARGE_DATA (docs/node.md)
        self._image_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                                     reliability=ReliabilityPolicy.RELIABLE)
        self._image_subscriptions = {}
        self._raw_attention = False        # the node publishes raw maps (seen one)
        self._camera = collections.OrderedDict()   # stamp_ns -> (jpeg bytes, width, height)
        self._camera_subscription = None
        self.create_timer(SUBSCRIPTION_CHECK_S, self._update_image_subscriptions)

    def _update_image_subscriptions(self):
        """Subscribe to a picture topic only while someone watches it."""
        for stream, topic in IMAGE_TOPICS.items():
            subscription = self._image_subscriptions.get(stream)
            wanted = self.watched(stream)
            if wanted and subscription is None:
                self._image_subscriptions[stream] = self.create_subscription(
                    Image, topic, lambda msg, s=stream: self._on_image(s, msg), self._image_qos)
            elif not wanted and subscription is not None:
                self.destroy_subscription(subscription)
                del self._image_subscriptions[stream]
        camera_wanted = self._raw_attention and self.watched('attention')
        if camera_wanted and self._camera_subscription is None:
            self._camera_subscription = self.create_subscription(
                CompressedImage, CAMERA_TOPIC, self._on_camera, qos_profile_sensor_data)
        elif not camera_wanted and self._camera_subscription is not None:
            self.destroy_subscription(self._camera_subscription)
            self._camera_subscription = None
            self._camera.clear()

    def _on_camera(self, msg):
        size = compressed_image_size(msg.data)
        if size is None:
            return   # neither JPEG nor PNG: the raw map is then drawn alone
        self._camera[stamp_ns_of(msg.header)] = (bytes(msg.data), size[1], size[2])
        while len(self._camera) > CAMERA_FRAMES_KEPT:
            self._camera.popitem(last=False)

    def _on_image(self, stream: str, msg):
        raw = str(msg.encoding).upper() == '32FC1'
        if stream == 'attention':
            self._raw_attention = raw
        if not self.ready(stream):
            return
        stamp_ns = stamp_ns_of(msg.header)
        try:
            if raw and stream == 'attention' and stamp_ns in self._camera:
                jpeg, width, height = self._camera[stamp_ns]
                self.hub.put_frame(Frame(stream, stamp_ns, jpeg, width, height,
                                         attention_map=float_map(msg)))
                return
            if raw:
                image = raw_map_bgr(float_map(msg))
            else:
                image, order = image_msg_to_array(msg, None, MAX_INPUT_PIXELS)
                if order == 'rgb':
                    image = image[..., ::-1]
            self.hub.put_frame(make_frame(stream, stamp_ns, image, self.config.jpeg_quality))
        except (ImageConversionError, FrameEncodingError) as err:
            self.get_logger().warning(f'{stream} picture skipped: {err}',
                                      throttle_duration_sec=5.0)

    def _on_command(self, msg):
        u = float(msg.vector.x)
        if not math.isfinite(u):
            self.get_logger().warning(f'non-finite command {u} skipped',
                                      throttle_duration_sec=5.0)
            return
        wheel_rad = float(steering_from_inverse_radius(u, 0.0, self.vehicle))
        self.hub.put_command(stamp_ns_of(msg.header), u, math.degrees(wheel_rad))

    def _on_diagnostics(self, msg):
        for status in msg.status:
            if status.name.startswith(DRIVE_STATUS_PREFIX):
                values = {kv.key: kv.value for kv in status.values}
                self.hub.put_state('status', self._tracker.update(
                    _level(status.level), status.message, values, time.monotonic(),
                    status.name))

    def _on_route(self, msg):
        self.hub.put_state('route', route_state(msg.data))


def run_viewer(config: ViewerConfig | None = None, args=None, announce=None) -> int:
    """Serve the viewer until Ctrl-C or shutdown; return 0.

    Args:
        config: settings (default ViewerConfig(); `--ros-args -p name:=value` in `args` win).
        args: command-line arguments for rclpy.init (remaps, parameters).
        announce: called with one line per address served (e.g. print).

    Raises:
        ViewerError: a port in use, a bad setting, foxglove-sdk missing.
    """
    from signattn_driver.viewer.foxglove_bridge import FoxgloveBridge
    from signattn_driver.viewer.server import ViewerServer
    rclpy.init(args=args)
    node = server = bridge = None
    try:
        node = ViewerNode(StreamHub(), config)
        server = ViewerServer(node.hub, node.config).start()
        if node.config.foxglove:
            bridge = FoxgloveBridge(node.hub, node.config).start()
        if node.config.niceness:
            os.nice(node.config.niceness)
        node.watched = lambda stream: server.client_count > 0 or (
            bridge is not None and bridge.wants(stream))
        node.ready = lambda stream: server.ready(stream) or (
            bridge is not None and bridge.wants(stream))
        if announce is not None:
            announce(f'viewer: open {server.url}')
            if bridge is not None:
                announce(f'Foxglove: open connection -> Foxglove WebSocket -> {bridge.url}')
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # `ros2 launch` forwards Ctrl-C while the terminal already sent it: a second SIGINT
        # during teardown must not turn a clean exit into a traceback (as in drive_node).
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        for part in (bridge, server):
            if part is not None:
                part.stop()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def main(args=None):
    """Entry point of `viewer_node` (launch: view:=true); a bad setting exits with status 1."""
    try:
        return run_viewer(args=args, announce=lambda line: print(line, flush=True))
    except ViewerError as err:
        print(f'viewer_node: error: {err}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
