"""The drive node: camera frames (and a route command) in; steering command and maps out.

Glue only. The subscription callback hands the newest frame to a worker thread (frame_gate:
a frame replaced before it was taken is dropped and counted), which gates it, steers on it
(steering_step: Predictor, network on its device) and publishes (drive_outputs). Counters,
stage times and the /diagnostics verdict: node_health; route command: route_input; parameters:
drive_parameters; start-up: node_startup (pure ones tested without a graph). See docs/node.md.
"""

import sys
import threading
import time

from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data, QoSProfile

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import UInt8
from std_srvs.srv import Trigger

from signattn_driver.data.labels import stamp_ns_of
from signattn_driver.data.sequence_rule import SequenceRule, SequenceTracker
from signattn_driver.ros.drive_outputs import DriveOutputs
from signattn_driver.ros.drive_parameters import (check_updates, input_qos, PARAMETERS,
                                                  ROUTE_COMMAND_QOS)
from signattn_driver.ros.frame_gate import (attention_due, NewestFrameSlot, Rejection,
                                            repeat_rejection, stamp_rejection)
from signattn_driver.ros.image_conversion import (compressed_msg_to_array, image_msg_to_array,
                                                  ImageConversionError, working_cv_bridge)
from signattn_driver.ros.node_health import (diagnostic_values, FrameCounters, HealthMonitor,
                                             idle_verdict, InputView, StageTimes)
from signattn_driver.ros.node_startup import (declare_parameters, load_predictor, load_vehicle,
                                              run_node)
from signattn_driver.ros.route_input import expected_commands, RouteInput
from signattn_driver.ros.steering_step import SteeringStep
from signattn_driver.route_command import NODE_ROUTE_COMMAND_TOPIC

try:  # Iron and later; Humble has the same class in rclpy.qos_event
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:
    from rclpy.qos_event import SubscriptionEventCallbacks


class DriveNode(Node):
    """Steer from the front camera; see the module docstring and docs/node.md.

    The plain node starts at once. Its steps are the lifecycle's transitions, which
    ManagedDriveNode (ros/managed_drive_node.py) calls one by one: `_start` (configure: load
    the network, create the publishers and the worker), `_open_input` (activate: subscribe and
    publish), `_close_input` (deactivate), `_stop` (cleanup: free the network).
    """

    START_AT_ONCE = True   # the managed node waits for configure and activate

    def __init__(self, **kwargs):
        super().__init__('drive_node', **kwargs)
        self.started = False   # predictor, publishers and worker exist; updates apply to them
        self.active = False    # subscribed; frames are steered on and answered
        self.input = self._speed_input = self._route_input = None
        self.predictor = self.outputs = None
        self.start_error = ''  # why the last start failed (managed node: shown in diagnostics)
        self._publish_lock = threading.Lock()   # `active` changes between whole publishes
        self.add_on_set_parameters_callback(self._on_set_parameters)
        declare_parameters(self)
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics',
                                                     QoSProfile(depth=10))
        self.create_timer(1.0, self._publish_diagnostics)
        self.create_service(Trigger, '~/reset_state', self._on_reset_state)
        if self.START_AT_ONCE:
            self._start()
            self._open_input()

    def _create_output(self, kind, topic: str):
        """Create one output publisher (the managed node makes lifecycle publishers)."""
        return self.create_publisher(kind, topic, QoSProfile(depth=10))

    def _start(self):
        """Load the vehicle and the network, create the publishers and the worker thread.

        Raises:
            NodeStartupError: the checkpoint, device, precision or vehicle is unusable; then
                nothing was created.
        """
        self._settings = value = {name: self.get_parameter(name).value for name in PARAMETERS}
        vehicle, self.predictor = load_vehicle(value['vehicle']), load_predictor(value)
        self.steering = SteeringStep(self.predictor)
        self.vehicle, self.incompatible_qos = vehicle, 0
        self.route = RouteInput(value['route_command_timeout_s'],
                                used=self.predictor.config.num_commands > 0)
        self.counters = FrameCounters()
        self.stage_times = StageTimes()
        self.health_monitor = HealthMonitor(self.counters, time.monotonic())
        self._tracker = SequenceTracker(SequenceRule(value['reset_gap_s']))
        self._tracker_lock = threading.Lock()
        self._slot = NewestFrameSlot()
        self._bridge = working_cv_bridge()
        self.outputs = DriveOutputs(self._create_output)
        self._speed_mps = None   # last speed_topic linear.x; None until one arrives
        self._worker = threading.Thread(target=self._work, name='drive_node_inference',
                                        daemon=True)
        self._worker.start()
        self.started, self.start_error = True, ''

    def _open_input(self):
        """Subscribe to the camera (and the speed): from now on frames are answered."""
        value = self._settings
        if self.outputs.ackermann is not None and value['speed_topic']:
            self._speed_input = self.create_subscription(
                TwistStamped, value['speed_topic'], self._on_speed, qos_profile_sensor_data)
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
        kind, topic = ((CompressedImage, 'image/compressed')
                       if value['input_transport'] == 'compressed' else (Image, 'image'))
        # Created before the camera's subscription: the executor takes ready subscriptions in
        # creation order, so a command that has reached this node (acknowledged, as the
        # simulator's controller waits for) is taken before a frame published after it.
        self._route_input = self.create_subscription(UInt8, NODE_ROUTE_COMMAND_TOPIC,
                                                     self._on_route_command, ROUTE_COMMAND_QOS)
        with self._publish_lock:
            self.active = True
        self.input = self.create_subscription(kind, topic, self._on_image, input_qos(value),
                                              event_callbacks=events)
        self.get_logger().info(
            f'steering with {value["checkpoint"]} on {self.predictor.device} '
            f'({value["precision"]}), input {value["input_transport"]} '
            f'({value["input_reliability"]}, depth {value["input_depth"]}), '
            f'cv_bridge {"in use" if self._bridge else "not usable: built-in converter"}, '
            f'attention score {self.predictor.config.attention_score}, '
            + expected_commands(self.predictor.config.num_commands,
                                self.predictor.checkpoint.metadata))

    def _close_input(self):
        """Stop answering: once this returns, no command is published until `_open_input`."""
        with self._publish_lock:   # waits for a publish under way
            self.active = False
        for subscription in (self.input, self._speed_input, self._route_input):
            if subscription is not None:
                self.destroy_subscription(subscription)
        self.input = self._speed_input = self._route_input = None
        self._slot.clear()
        with self._tracker_lock:   # the next drive starts with a fresh LSTM state
            self._tracker.request_reset()

    def _stop(self):
        """Stop the worker, remove the publishers and free the network."""
        self._slot.close()
        self._worker.join(timeout=5.0)
        for publisher in self.outputs.publishers():
            self.destroy_publisher(publisher)
        self.outputs = None
        self.started, self.predictor, self.steering, self.vehicle = False, None, None, None

    # -- parameters ---------------------------------------------------------------------------

    def _on_set_parameters(self, params) -> SetParametersResult:
        """Validate every update; apply them only when all are acceptable."""
        reason, vehicle = check_updates(params)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        if self.started:   # before: declared values are read when the node starts
            for param in params:
                if param.name == 'vehicle':
                    self.vehicle = vehicle
                if param.name == 'reset_gap_s':
                    self._tracker.rule = SequenceRule(param.value)
                if param.name == 'route_command_timeout_s':
                    self.route.timeout_s = param.value
                self._settings[param.name] = param.value
        return SetParametersResult(successful=True)

    # -- frames -------------------------------------------------------------------------------

    def _on_image(self, msg):
        """Hand the newest frame to the worker; one still waiting is dropped (counted)."""
        received = time.perf_counter()
        received_ns = self.get_clock().now().nanoseconds
        self.counters.frames['received'] += 1
        self.health_monitor.frame_arrived(time.monotonic())
        if self._slot.put((msg, received, received_ns)):
            self.counters.frames['dropped'] += 1
        # Give the GIL up now: the woken worker starts on the frame at once instead of waiting
        # for the executor's own bookkeeping after this callback (0.45 -> 0.10 ms p50, node.md).
        time.sleep(0)

    def _on_speed(self, msg):
        self._speed_mps = msg.twist.linear.x

    def _on_route_command(self, msg):
        note = self.route.receive(msg.data, time.monotonic())
        if note:
            self.get_logger().warning(note, throttle_duration_sec=5.0)

    def _on_incompatible_qos(self, event):
        self.incompatible_qos = event.total_count
        self.get_logger().warning(
            f'a publisher on {self.input.topic_name} offers QoS incompatible with this '
            f'subscription ({self._settings["input_reliability"]}); its frames never arrive: '
            f'publish reliable or set input_reliability:=best_effort', throttle_duration_sec=5.0)

    def _on_reset_state(self, request, response):
        """Forget the LSTM state before the next frame (std_srvs/Trigger)."""
        if not self.started:
            response.success, response.message = False, 'not configured: no LSTM state'
            return response
        with self._tracker_lock:
            self._tracker.request_reset()   # also: the same frame again starts the sequence
        response.success = True
        response.message = 'LSTM state resets before the next frame'
        return response

    def _work(self):
        while (item := self._slot.take()) is not None:
            try:
                self.process(*item)
            except Exception as err:  # never let one frame stop the node
                self.get_logger().error(f'frame skipped: {type(err).__name__}: {err}')
                self._reject('corrupt')

    def _reject(self, kind: str, detail: str = ''):
        self.counters.reject(kind)
        if detail:
            self.get_logger().warning(f'frame rejected ({kind}): {detail}',
                                      throttle_duration_sec=5.0)

    def process(self, msg, received: float | None = None,
                received_ns: int | None = None) -> float | None:
        """Run one camera message through the network and publish; return u or None.

        Args:
            msg: sensor_msgs/Image or CompressedImage.
            received: perf_counter() at receipt (for the latency statistics).
            received_ns: node clock at receipt (for the age of the frame at receipt).
        """
        start = time.perf_counter()
        received = start if received is None else received
        stamp_ns = stamp_ns_of(msg.header)
        settings = self._settings
        refused = stamp_rejection(stamp_ns, self.get_clock().now().nanoseconds,
                                  settings['max_frame_age_s'], settings['max_future_s'])
        if refused:
            self._reject(refused.kind, refused.detail)
            return None
        with self._tracker_lock:
            if repeat_rejection(stamp_ns, self._tracker.stepped_ns):
                self._reject('duplicate')   # an expected resend: counted, not logged
                return None
        times = {'wait': (start - received) * 1e3}
        if received_ns:
            times['age_at_receipt'] = (received_ns - stamp_ns) * 1e-6
        try:
            if isinstance(msg, CompressedImage):
                image, order = compressed_msg_to_array(msg, settings['max_input_pixels']), 'bgr'
            else:
                image, order = image_msg_to_array(msg, self._bridge, settings['max_input_pixels'])
        except ImageConversionError as err:
            self._reject(err.kind, str(err))
            return None
        times['decode'] = (time.perf_counter() - start) * 1e3
        with self._tracker_lock:
            starts = self._tracker.observe(stamp_ns)   # data.sequence_rule: gap, jump, reset
        if starts:
            self.predictor.reset()
            self.counters.frames['state_resets'] += 1
        frames, every_n = self.counters.frames, settings['attention_every_n']
        index = frames['processed'] + self.counters.rejections['non_finite_output']
        result = self.steering(
            image, order, times, command=self.route.state(time.monotonic()).command,
            want_attention=attention_due(index, every_n, settings['publish_attention'],
                                         self.outputs.attention.get_subscription_count()),
            want_contribution=attention_due(index, every_n, settings['publish_contribution'],
                                            self.outputs.contribution.get_subscription_count()))
        if isinstance(result, Rejection):
            if result.kind == 'cuda_oom':
                self.get_logger().error(result.detail)
            self._reject(result.kind, result.detail)
            return None
        with self._tracker_lock:
            self._tracker.stepped(stamp_ns)   # the LSTM has stepped on this frame
        published = time.perf_counter()
        with self._publish_lock:
            if not self.active:   # deactivated while this frame was computed
                return None
            speed = self._speed_mps
            self.outputs.publish(msg.header, result, image if order == 'bgr' else image[..., ::-1],
                                 settings, self.vehicle, settings['assumed_speed_mps']
                                 if speed is None else speed, self.counters)
        done = time.perf_counter()
        frames['processed'] += 1
        times.update(publish=(done - published) * 1e3, compute=(done - start) * 1e3,
                     latency=(done - received) * 1e3)
        self.stage_times.add(times)
        return result.u_per_m

    # -- diagnostics --------------------------------------------------------------------------

    def latency_stats(self) -> dict:
        """Return the p50/p99 of each timed stage, ms (node_health.StageTimes.summary)."""
        return self.stage_times.summary()

    def health(self) -> tuple[bytes, str]:
        """Judge the node now: (DiagnosticStatus level, message).

        While steering, HealthMonitor.judge on the input; otherwise node_health.idle_verdict
        (a managed node before activate, or after a failed configure: ERROR with the reason).
        """
        if not self.active:
            level, message = idle_verdict(self.started, self.start_error)
            return bytes([level]), message
        settings = self._settings
        view = InputView(self.input.topic_name, self.count_publishers(self.input.topic_name),
                         self.incompatible_qos, settings['input_reliability'] == 'best_effort')
        level, message = self.health_monitor.judge(
            time.monotonic(), view, settings['stale_input_s'], settings['max_drop_fraction'],
            self.steering.device_note)
        return bytes([level]), message

    def _publish_diagnostics(self):
        status = DiagnosticStatus(name='drive_node: steering inference')
        status.level, status.message = self.health()
        values = {'state': ('active' if self.active else 'inactive' if self.started
                            else 'unconfigured')}
        if self.started:
            status.hardware_id = device = str(self.predictor.device)
            note, settings = self.steering.device_note, self._settings
            topic = self.input.topic_name if self.input is not None else None
            values.update(diagnostic_values(
                self.counters, self.latency_stats(), self.count_publishers(topic) if topic else 0,
                self.incompatible_qos, device=device + (f' ({note})' if note else ''),
                precision=settings['precision'], checkpoint=settings['checkpoint'],
                checkpoint_sha256=self.predictor.checkpoint.file_sha256,
                contribution_scale_per_m=f'{self.outputs.contribution_scale_per_m:.6g}',
                route_command=self.route.state(time.monotonic()).describe(),
                route_commands_invalid=self.route.invalid))
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.pub_diagnostics.publish(array)

    def destroy_node(self):
        """Stop the worker thread, then the node."""
        if self.started:
            self._slot.close()
            self._worker.join(timeout=5.0)
        return super().destroy_node()


def main(args=None):
    """Run the drive node until shut down; a bad configuration exits with one line (status 1).

    `drive_node --lifecycle --ros-args ...` runs it as a managed node (ManagedDriveNode).
    """
    argv = sys.argv if args is None else list(args)
    own = argv[1:argv.index('--ros-args')] if '--ros-args' in argv else argv[1:]
    if '--lifecycle' in own:
        from signattn_driver.ros.managed_drive_node import ManagedDriveNode
        return run_node(ManagedDriveNode, argv)
    return run_node(DriveNode, argv)


if __name__ == '__main__':
    sys.exit(main())
