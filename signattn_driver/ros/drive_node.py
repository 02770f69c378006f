"""The drive node: camera frames in, steering command and attention map out.

Thin glue around `Predictor`: the network, its LSTM state and (on CUDA) the preprocessing stay
on the device. The subscription callback only hands the newest frame to a worker thread; a frame
that arrives before the previous one was taken is dropped and counted, so the node always works
on the newest picture. Topics, parameters and figures: docs/node.md.

Each frame's time is kept per stage (`STAGES`: age at receipt, wait for the worker, decode,
preprocess, network, publish) and its p50/p99 go to /diagnostics, which also turns WARN when
publishers exist but no frame arrives, or when too many frames are dropped or rejected.
"""

import collections
import math
import os
import signal
import sys
import tempfile
import threading
import time

import numpy as np
import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, qos_profile_sensor_data, QoSProfile

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped, Vector3Stamped
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Float32
from std_srvs.srv import Trigger

from signattn_driver.attention_overlay import attention_overlay
from signattn_driver.checkpoint import CheckpointError
from signattn_driver.data.labels import stamp_ns_of
from signattn_driver.data.sequence_rule import SequenceRule, SequenceTracker
from signattn_driver.ros.drive_parameters import (descriptor, PARAMETERS, RELIABILITIES,
                                                  TYPE_NAMES, validate)
from signattn_driver.ros.image_conversion import (array_to_image_msg, compressed_msg_to_array,
                                                  image_msg_to_array, ImageConversionError,
                                                  working_cv_bridge)
from signattn_driver.preprocessing import PreprocessingError
from signattn_driver.vehicle import front_wheel_angle_rad, load_vehicle

try:  # Iron and later; Humble has the same class in rclpy.qos_event
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:
    from rclpy.qos_event import SubscriptionEventCallbacks

try:  # optional: ros-<distro>-ackermann-msgs
    from ackermann_msgs.msg import AckermannDriveStamped
except ImportError:
    AckermannDriveStamped = None

REJECTION_KINDS = ('encoding', 'zero_size', 'step', 'truncated', 'corrupt', 'too_large',
                   'stale', 'future', 'non_finite_output', 'cuda_oom')
LATENCY_WINDOW = 1000  # frames kept for the p50/p99 in /diagnostics
# Per-frame stages timed in /diagnostics (ms): node clock at receipt minus the header stamp,
# receipt to the worker taking the frame, decoding, preprocessing, network, publishing.
STAGES = ('age_at_receipt', 'wait', 'decode', 'preprocess', 'network', 'publish')
DROP_WINDOW_S = 10  # diagnostics ticks (1 s) over which max_drop_fraction is judged


class NodeStartupError(RuntimeError):
    """A configuration the node cannot start with (checkpoint, device, parameters)."""


class DriveNode(Node):
    """Steer from the front camera; see the module docstring and docs/node.md."""

    def __init__(self, **kwargs):
        super().__init__('drive_node', **kwargs)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        try:
            for name, (default, kind, read_only, text) in PARAMETERS.items():
                self.declare_parameter(name, default, descriptor(text, kind, read_only))
        except InvalidParameterValueException as err:
            reason = str(err.args[0]).split('Reason: ', 1)[-1].removesuffix(f': {name}')
            raise NodeStartupError(f'parameter {name}: {reason}') from err
        except InvalidParameterTypeException as err:   # e.g. -p attention_every_n:=abc
            given = getattr(self, '_parameter_overrides', {}).get(name)
            got = repr(given.value) if given is not None else 'another type'
            raise NodeStartupError(f'parameter {name}: expected {TYPE_NAMES[kind]}, got '
                                   f'{got}') from err
        value = {name: self.get_parameter(name).value for name in PARAMETERS}
        self._settings = dict(value)
        self.vehicle = load_vehicle(value['vehicle'])
        self.predictor = self._load_predictor(value)
        self.device_note = ''

        self.stats = collections.Counter({k: 0 for k in (
            'received', 'processed', 'dropped', 'rejected', 'state_resets',
            'attention_published')})
        self.rejections = collections.Counter({k: 0 for k in REJECTION_KINDS})
        self.stage_ms = {name: collections.deque(maxlen=LATENCY_WINDOW)
                         for name in ('latency', 'compute', *STAGES)}
        self.latency_ms = self.stage_ms['latency']   # receipt -> published
        self.compute_ms = self.stage_ms['compute']   # conversion + network + publishing
        self._window = collections.deque([(0, 0, 0, dict(self.rejections))],
                                         maxlen=DROP_WINDOW_S + 1)   # counter snapshots
        self._last_frame_mono = self._publishers_since = time.monotonic()
        self.incompatible_qos = 0
        self._tracker = SequenceTracker(SequenceRule(value['reset_gap_s']))
        self._pending = None
        self._cond = threading.Condition()
        self._stopping = False

        self._bridge = working_cv_bridge()
        reliable = QoSProfile(depth=10)
        self.pub_radius = self.create_publisher(Float32, 'steering/inverse_turning_radius',
                                                reliable)
        self.pub_command = self.create_publisher(Vector3Stamped, 'steering/command', reliable)
        self.pub_ackermann = (self.create_publisher(AckermannDriveStamped, 'steering/ackermann',
                                                    reliable) if AckermannDriveStamped else None)
        self._speed_mps = None   # last speed_topic linear.x; None until one arrives
        if self.pub_ackermann is not None and value['speed_topic']:
            self.create_subscription(TwistStamped, value['speed_topic'], self._on_speed,
                                     qos_profile_sensor_data)
        self.pub_attention = self.create_publisher(Image, 'attention', reliable)
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', reliable)
        # REP-2003 sensor data (best effort, volatile, keep last) unless input_reliability says
        # reliable: Fast DDS LARGE_DATA loses raw 640x480 frames sent best effort (node.md).
        sensor = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=value['input_depth'],
                            reliability=RELIABILITIES[value['input_reliability']],
                            durability=DurabilityPolicy.VOLATILE)
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
        kind, topic = ((CompressedImage, 'image/compressed')
                       if value['input_transport'] == 'compressed' else (Image, 'image'))
        self.input = self.create_subscription(kind, topic, self._on_image, sensor,
                                              event_callbacks=events)
        self.create_service(Trigger, '~/reset_state', self._on_reset_state)
        self.create_timer(1.0, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name='drive_node_inference',
                                        daemon=True)
        self._worker.start()
        self.get_logger().info(
            f'steering with {value["checkpoint"]} on {self.predictor.device} '
            f'({value["precision"]}), input {value["input_transport"]} '
            f'({value["input_reliability"]}, depth {value["input_depth"]}), '
            f'cv_bridge {"in use" if self._bridge else "not usable: built-in converter"}')

    def _load_predictor(self, value: dict):
        """Build the Predictor once at start; every failure becomes one NodeStartupError."""
        import torch
        from signattn_driver.predictor import Predictor
        for name in ('checkpoint', 'device', 'precision'):
            reason = validate(name, value[name])
            if reason:
                raise NodeStartupError(reason)
        if value['num_threads']:
            torch.set_num_threads(value['num_threads'])
        try:
            return Predictor(value['checkpoint'], device=value['device'],
                             precision=value['precision'])
        except (CheckpointError, ValueError) as err:  # ValueError: no such device, int8 on GPU
            raise NodeStartupError(str(err).splitlines()[0]) from err

    # -- parameters ---------------------------------------------------------------------------

    def _on_set_parameters(self, params) -> SetParametersResult:
        """Validate every update; apply them only when all are acceptable."""
        vehicle = None
        for param in params:
            if param.name in PARAMETERS:
                reason = validate(param.name, param.value)
                if reason:
                    return SetParametersResult(successful=False, reason=reason)
            if param.name == 'vehicle':   # loaded once here: the file may change in between
                try:
                    vehicle = load_vehicle(param.value)
                except Exception as err:   # never let a profile file stop the node
                    return SetParametersResult(successful=False, reason=f'vehicle '
                                               f'{param.value!r}: {str(err).splitlines()[0]}')
        if hasattr(self, '_settings'):   # after start: apply to the running node
            for param in params:
                if param.name == 'vehicle':
                    self.vehicle = vehicle
                if param.name == 'reset_gap_s':
                    self._tracker.rule = SequenceRule(param.value)
                self._settings[param.name] = param.value
        return SetParametersResult(successful=True)

    # -- frames -------------------------------------------------------------------------------

    def _on_image(self, msg):
        """Hand the newest frame to the worker; one still waiting is dropped (counted)."""
        received = time.perf_counter()
        received_ns = self.get_clock().now().nanoseconds
        with self._cond:
            self.stats['received'] += 1
            self._last_frame_mono = time.monotonic()
            if self._pending is not None:
                self.stats['dropped'] += 1
            self._pending = (msg, received, received_ns)
            self._cond.notify()
        # Give the GIL up now: the woken worker starts on the frame at once instead of waiting
        # for the executor's own bookkeeping after this callback (0.45 -> 0.10 ms p50, node.md).
        time.sleep(0)

    def _on_speed(self, msg):
        self._speed_mps = msg.twist.linear.x

    def _on_incompatible_qos(self, event):
        self.incompatible_qos = event.total_count
        self.get_logger().warning(
            f'a publisher on {self.input.topic_name} offers QoS incompatible with this '
            f'subscription ({self._settings["input_reliability"]}); its frames never arrive: '
            f'publish reliable or set input_reliability:=best_effort', throttle_duration_sec=5.0)

    def _on_reset_state(self, request, response):
        """Forget the LSTM state before the next frame (std_srvs/Trigger)."""
        with self._cond:
            self._tracker.request_reset()
        response.success = True
        response.message = 'LSTM state resets before the next frame'
        return response

    def _work(self):
        while True:
            with self._cond:
                while self._pending is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                (msg, received, received_ns), self._pending = self._pending, None
            try:
                self.process(msg, received, received_ns)
            except Exception as err:  # never let one frame stop the node
                self.get_logger().error(f'frame skipped: {type(err).__name__}: {err}')
                self._reject('corrupt')

    def _reject(self, kind: str, detail: str = ''):
        self.stats['rejected'] += 1
        self.rejections[kind] += 1
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
        import torch
        start = time.perf_counter()
        received = start if received is None else received
        stamp_ns = stamp_ns_of(msg.header)
        settings = self._settings
        now_ns = self.get_clock().now().nanoseconds
        max_age = settings['max_frame_age_s']
        if max_age > 0:
            age_s = (now_ns - stamp_ns) * 1e-9
            if age_s > max_age:
                self._reject('stale', f'frame {age_s:.3f} s old > max_frame_age_s {max_age}')
                return None
        max_future = settings['max_future_s']
        if max_future > 0 and now_ns > 0:   # now 0: use_sim_time before the first /clock
            ahead_s = (stamp_ns - now_ns) * 1e-9
            if ahead_s > max_future:
                self._reject('future', f'frame stamped {ahead_s:.3f} s ahead of the node clock '
                             f'> max_future_s {max_future}')
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
        decoded = time.perf_counter()
        times['decode'] = (decoded - start) * 1e3
        with self._cond:
            starts = self._tracker.observe(stamp_ns)   # data.sequence_rule: gap, jump, reset
        if starts:
            self.predictor.reset()
            self.stats['state_resets'] += 1
        index = self.stats['processed'] + self.rejections['non_finite_output']
        want = (settings['publish_attention'] and index % settings['attention_every_n'] == 0
                and self.pub_attention.get_subscription_count() > 0)
        try:
            prepared = time.perf_counter()
            x = self.predictor.preprocess(image, order)
            stepped = time.perf_counter()
            u_tensor, alpha_tensor = self.predictor.step_input(x)
            u = float(u_tensor[0])   # the one synchronisation per frame
            alpha = alpha_tensor[0].cpu().numpy() if want else None
            times['preprocess'] = (stepped - prepared) * 1e3
            times['network'] = (time.perf_counter() - stepped) * 1e3
        except torch.cuda.OutOfMemoryError:
            self.predictor.to('cpu')
            self.device_note = 'fell back to the CPU after CUDA ran out of memory'
            self.get_logger().error(f'CUDA out of memory: {self.device_note}')
            self._reject('cuda_oom')
            return None
        except PreprocessingError as err:
            self._reject('corrupt', str(err))
            return None
        if not math.isfinite(u):
            self._reject('non_finite_output', f'network output {u} (state kept)')
            return None
        published = time.perf_counter()
        self._publish(msg.header, u, image, order, alpha)
        done = time.perf_counter()
        self.stats['processed'] += 1
        times.update(publish=(done - published) * 1e3, compute=(done - start) * 1e3,
                     latency=(done - received) * 1e3)
        for name, value in times.items():
            self.stage_ms[name].append(value)
        return u

    def _publish(self, header, u: float, image, order: str, alpha):
        command = Vector3Stamped()
        command.header = header
        command.vector.x = u
        self.pub_command.publish(command)
        self.pub_radius.publish(Float32(data=u))
        if self.pub_ackermann is not None:
            ackermann = AckermannDriveStamped()
            ackermann.header = header
            speed = self._speed_mps
            speed = self._settings['assumed_speed_mps'] if speed is None else speed
            # speed / acceleration / jerk stay 0: the network commands steering only
            ackermann.drive.steering_angle = float(front_wheel_angle_rad(u, speed, self.vehicle))
            self.pub_ackermann.publish(ackermann)
        if alpha is not None:
            if self._settings['attention_raw']:
                out = array_to_image_msg(alpha.astype(np.float32), '32FC1', header)
            else:
                bgr = image if order == 'bgr' else image[..., ::-1]
                out = array_to_image_msg(
                    attention_overlay(bgr, alpha, self._settings['attention_alpha']),
                    'bgr8', header)
            self.pub_attention.publish(out)
            self.stats['attention_published'] += 1

    # -- diagnostics --------------------------------------------------------------------------

    def latency_stats(self) -> dict:
        """Return node-internal latency percentiles (ms) over the last frames.

        `latency` runs from the message's arrival in the node to the last publish, including
        the wait for the worker; `compute` is image conversion, network and publishing; the
        `STAGES` split it: `age_at_receipt` (node clock at receipt minus the header stamp:
        transport, when the camera stamps with the same clock), `wait` (receipt until the
        worker takes the frame), `decode`, `preprocess`, `network` (including reading u back),
        `publish`.
        """
        out = {}
        for name, values in self.stage_ms.items():
            arr = np.array(values) if values else np.array([math.nan])
            out[f'{name}_p50_ms'] = float(np.percentile(arr, 50))
            out[f'{name}_p99_ms'] = float(np.percentile(arr, 99))
        return out

    def health(self) -> tuple[int, str]:
        """Judge the input: (DiagnosticStatus level, message with the counts).

        WARN when the input topic has publishers but no frame arrived for `stale_input_s`, when
        more than `max_drop_fraction` of the frames received in the last DROP_WINDOW_S
        diagnostics ticks was dropped or rejected, or after a CUDA fallback.
        """
        settings, now = self._settings, time.monotonic()
        problems = [self.device_note] if self.device_note else []
        snapshot = (self.stats['received'], self.stats['dropped'], self.stats['rejected'],
                    dict(self.rejections))
        self._window.append(snapshot)
        publishers = self.count_publishers(self.input.topic_name)
        if not publishers:
            self._publishers_since = now
        silent_s = now - max(self._last_frame_mono, self._publishers_since)
        stale = settings['stale_input_s']
        if publishers and stale > 0 and silent_s > stale:
            hint = ('; large raw frames sent best effort are lost with Fast DDS LARGE_DATA: try '
                    'input_reliability:=reliable' if settings['input_reliability'] ==
                    'best_effort' else '')
            if self.incompatible_qos:
                hint = f'; {self.incompatible_qos} publisher(s) with incompatible QoS'
            problems.append(f'no frame for {silent_s:.1f} s from {publishers} publisher(s) on '
                            f'{self.input.topic_name} (frames_received {snapshot[0]}){hint}')
        old = self._window[0]
        received = snapshot[0] - old[0]
        dropped, rejected = snapshot[1] - old[1], snapshot[2] - old[2]
        if received and (dropped + rejected) / received > settings['max_drop_fraction']:
            kinds = ', '.join(f'{k} {v - old[3][k]}' for k, v in snapshot[3].items()
                              if v > old[3][k])
            problems.append(f'{dropped + rejected} of {received} frames in the last '
                            f'{len(self._window) - 1} s dropped ({dropped}) or rejected '
                            f'({rejected}{": " + kinds if kinds else ""}) > max_drop_fraction '
                            f'{settings["max_drop_fraction"]}')
        if problems:
            return DiagnosticStatus.WARN, '; '.join(problems)
        return DiagnosticStatus.OK, 'ok'

    def _publish_diagnostics(self):
        status = DiagnosticStatus(name='drive_node: steering inference',
                                  hardware_id=str(self.predictor.device))
        status.level, status.message = self.health()
        values = {
            **{f'frames_{k}': self.stats[k] for k in ('received', 'processed', 'dropped',
                                                      'rejected')},
            'state_resets': self.stats['state_resets'],
            'attention_published': self.stats['attention_published'],
            'input_publishers': self.count_publishers(self.input.topic_name),
            'input_qos_incompatible': self.incompatible_qos,
            **{f'rejected_{k}': v for k, v in self.rejections.items()},
            **{k: f'{v:.3f}' for k, v in self.latency_stats().items()},
            'device': str(self.predictor.device) + (f' ({self.device_note})'
                                                    if self.device_note else ''),
            'precision': self._settings['precision'],
            'checkpoint': self._settings['checkpoint'],
            'checkpoint_sha256': self.predictor.checkpoint.file_sha256,
        }
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.pub_diagnostics.publish(array)

    def destroy_node(self):
        """Stop the worker thread, then the node."""
        worker = getattr(self, '_worker', None)   # absent when the start failed
        if worker is not None:
            with self._cond:
                self._stopping = True
                self._cond.notify()
            worker.join(timeout=5.0)
        return super().destroy_node()


def _init_rclpy(args):
    """rclpy.init, with a malformed `--ros-args` turned into one NodeStartupError.

    rcl logs its own parse error to stderr before raising: that output is held back and shown
    only when the start succeeds, so a bad argument gives the one `drive_node: error:` line.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            rclpy.init(args=args)
        except Exception as err:   # rclpy raises its C extension's RCLError
            text = str(err).split(', at ', 1)[0].replace('. Error: error not set', '')
            text = text.removeprefix('failed to initialize rcl: ')
            raise NodeStartupError(f'invalid ROS arguments: {text} (a parameter needs a '
                                   f'value: -p name:=value)') from err
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            output = held.read()
        sys.stderr.buffer.write(output)
        sys.stderr.flush()


def main(args=None):
    """Run the drive node until shut down; a bad configuration exits with one line (status 1)."""
    try:
        _init_rclpy(args)
    except NodeStartupError as err:
        print(f'drive_node: error: {err}', file=sys.stderr)
        return 1
    node = None
    try:
        node = DriveNode()
        rclpy.spin(node)
    except NodeStartupError as err:
        print(f'drive_node: error: {err}', file=sys.stderr)
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # `ros2 launch` forwards Ctrl-C while the terminal already sent it: a second SIGINT
        # during teardown must not turn a clean exit into a KeyboardInterrupt traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
