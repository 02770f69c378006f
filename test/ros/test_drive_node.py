"""The drive node over real (loopback) DDS: started as a user would, fed frames, inspected."""

import hashlib
import re
import time

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='rclpy not installed')
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from fixtures.png_bomb import png_bomb  # noqa: E402
from geometry_msgs.msg import Vector3Stamped  # noqa: E402
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter as NodeParameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from signattn_driver.ros.node_process import NodeProcess  # noqa: E402

pytestmark = pytest.mark.ros
WAIT_S = 30.0  # generous: a loaded 2-core CI machine; the tests never assert on time


def stamp_of(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def set_stamp(msg, stamp_ns: int):
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    msg.header.frame_id = 'center_camera'
    return msg


def jpeg_msg(image, stamp_ns):
    msg = CompressedImage(format='jpeg')
    msg.data = cv2.imencode('.jpg', image)[1].tobytes()
    return set_stamp(msg, stamp_ns)


def raw_msg(image, encoding, stamp_ns, pad=0):
    height, width = image.shape[:2]
    rows = image.reshape(height, -1)
    padded = np.zeros((height, rows.shape[1] + pad), np.uint8)
    padded[:, :rows.shape[1]] = rows
    msg = Image(height=height, width=width, encoding=encoding, step=padded.shape[1])
    msg.data = padded.tobytes()
    return set_stamp(msg, stamp_ns)


class Client:
    """The test's side of the graph: camera publisher, listeners, service clients."""

    def __init__(self, transport: str, reliable: bool = False):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('drive_node_test', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        kind, topic = ((CompressedImage, 'image/compressed') if transport == 'compressed'
                       else (Image, 'image'))
        self.camera = self.node.create_publisher(kind, topic,
                                                 10 if reliable else qos_profile_sensor_data)
        self.commands, self.attention, self.diagnostics = {}, [], []
        self.node.create_subscription(Vector3Stamped, 'steering/command',
                                      lambda m: self.commands.__setitem__(stamp_of(m.header),
                                                                          m.vector.x), 10)
        self.node.create_subscription(DiagnosticArray, '/diagnostics',
                                      self.diagnostics.append, 10)
        self.reset = self.node.create_client(Trigger, '/drive_node/reset_state')
        self.set_parameters = self.node.create_client(SetParameters,
                                                      '/drive_node/set_parameters')

    def spin_until(self, condition, what: str):
        deadline = time.monotonic() + WAIT_S
        while not condition():
            assert time.monotonic() < deadline, f'gave up waiting for {what}'
            self.executor.spin_once(timeout_sec=0.05)

    def wait_for_node(self, process):
        def ready():
            assert process.alive(), process.stderr_text()
            return (self.camera.get_subscription_count() > 0
                    and self.node.count_publishers('/steering/command') > 0
                    and self.reset.service_is_ready())
        self.spin_until(ready, 'the drive node')

    def send(self, msg) -> float:
        """Publish a frame until its command comes back (the first may precede discovery)."""
        stamp = stamp_of(msg.header)
        for _ in range(20):
            self.camera.publish(msg)
            end = time.monotonic() + 1.5
            while stamp not in self.commands and time.monotonic() < end:
                self.executor.spin_once(timeout_sec=0.02)
            if stamp in self.commands:
                return self.commands[stamp]
        raise AssertionError(f'no steering/command for stamp {stamp}')

    def send_unanswered(self, msg, expected_key: str):
        """Publish a bad frame and wait until the node's diagnostics count it."""
        before = self.latest_value(expected_key, 0)
        self.camera.publish(msg)
        self.spin_until(lambda: self.latest_value(expected_key, 0) > before,
                        f'{expected_key} to grow')

    def call(self, client, request, resend_s: float | None = None):
        """Call a service of the node; return its response.

        A server may not have matched this client's response reader yet when the first request
        arrives (Fast DDS then drops the response: "failed to send response (timeout)").
        Idempotent queries pass `resend_s` and are sent again while unanswered.
        """
        future, sent = client.call_async(request), time.monotonic()

        def answered():
            nonlocal future, sent
            if resend_s and not future.done() and time.monotonic() - sent > resend_s:
                client.remove_pending_request(future)
                future, sent = client.call_async(request), time.monotonic()
            return future.done()
        self.spin_until(answered, f'{client.srv_name}')
        return future.result()

    def latest_status(self):
        """(level, message) of the newest /diagnostics status, or None before the first."""
        if not self.diagnostics:
            return None
        status = self.diagnostics[-1].status[0]
        return int.from_bytes(status.level, 'little'), status.message

    def latest_value(self, key: str, default=None):
        for array in reversed(self.diagnostics):
            for kv in array.status[0].values:
                if kv.key == key:
                    return int(kv.value) if kv.value.isdigit() else kv.value
        return default

    def close(self):
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def start_node(checkpoint, transport, *extra):
    return NodeProcess({'checkpoint': checkpoint, 'input_transport': transport, 'device': 'cpu',
                        'num_threads': 1}, extra_ros_args=extra)


@pytest.fixture
def running(request, tiny_checkpoint, ros_domain_id, monkeypatch):
    """Start a drive node subprocess and the test's client.

    The param is the transport, or a dict: 'transport', extra node 'args', 'env' for both
    sides and whether the camera publishes 'reliable'.
    """
    spec = request.param if isinstance(request.param, dict) else {'transport': request.param}
    transport = spec['transport']
    for name, value in spec.get('env', {}).items():
        monkeypatch.setenv(name, value)
    process = start_node(tiny_checkpoint, transport, *spec.get('args', ()))
    client = Client(transport, reliable=spec.get('reliable', False))
    try:
        client.wait_for_node(process)
        yield client, process
    finally:
        client.close()
        returncode = process.stop()
        stderr = process.stderr_text()
        process.close()
    assert returncode == 0, stderr      # SIGINT: a clean shutdown


@pytest.mark.parametrize('running', ['compressed'], indirect=True)
def test_compressed_frames_answered_with_matching_stamps_and_state_handling(
        running, camera_frames, tiny_checkpoint, tmp_path):
    client, _ = running
    a, b, c = (camera_frames[i] for i in range(3))
    second = 1_000_000_000
    client.send(jpeg_msg(a, 1 * second))                      # warm-up, then a clean start
    assert client.call(client.reset, Trigger.Request()).success

    t0 = 10 * second
    u_a = client.send(jpeg_msg(a, t0))
    u_b = client.send(jpeg_msg(b, t0 + second // 20))
    client.send(jpeg_msg(c, t0 + second // 10))
    assert set(client.commands) >= {t0, t0 + second // 20, t0 + second // 10}
    assert all(np.isfinite(list(client.commands.values())))
    assert u_a != u_b

    # The LSTM state carries over: the same picture later in the sequence answers differently.
    u_a_carried = client.send(jpeg_msg(a, t0 + 3 * second // 20))
    assert abs(u_a_carried - u_a) > 1e-7
    # ~/reset_state: the next frame starts a fresh sequence.
    assert client.call(client.reset, Trigger.Request()).success
    assert client.send(jpeg_msg(a, t0 + 4 * second // 20)) == pytest.approx(u_a, abs=1e-6)
    # Time jumps back (a bag loop): the state resets by itself.
    client.send(jpeg_msg(b, t0 + 5 * second // 20))
    assert client.send(jpeg_msg(a, 5 * second)) == pytest.approx(u_a, abs=1e-6)
    # A gap longer than reset_gap_s (0.5 s by default, as in training) also resets it.
    client.send(jpeg_msg(b, 5 * second + second // 20))
    assert client.send(jpeg_msg(a, 20 * second)) == pytest.approx(u_a, abs=1e-6)

    # Corrupt and empty JPEGs: survived, counted, never answered.
    bad = jpeg_msg(a, 21 * second)
    bad.data = b'\xff\xd8 not really a jpeg'
    client.send_unanswered(bad, 'rejected_corrupt')
    empty = jpeg_msg(a, 22 * second)
    empty.data = b''
    client.send_unanswered(empty, 'rejected_corrupt')
    assert 21 * second not in client.commands and 22 * second not in client.commands
    assert client.latest_value('rejected_corrupt') == 2
    client.send(jpeg_msg(b, 23 * second))                     # still steering

    # Attention: nothing was rendered while nobody listened; a subscriber gets the overlay.
    client.spin_until(lambda: client.latest_value('frames_processed', 0) >= 10, 'diagnostics')
    assert client.latest_value('attention_published') == 0
    client.node.create_subscription(Image, 'attention', client.attention.append, 10)
    stamp = 30 * second
    while not client.attention:
        stamp += second // 20
        client.send(jpeg_msg(c, stamp))
        client.executor.spin_once(timeout_sec=0.1)
    overlay = client.attention[0]
    assert (overlay.encoding, overlay.height, overlay.width) == ('bgr8', 480, 640)
    assert stamp_of(overlay.header) in client.commands

    # Diagnostics: counts, latency and the checkpoint's hash.
    sha = hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    client.spin_until(lambda: client.latest_value('attention_published', 0) > 0, 'diagnostics')
    assert client.latest_value('checkpoint_sha256') == sha
    assert client.latest_value('device') == 'cpu'
    assert client.latest_value('state_resets') >= 3
    assert float(client.latest_value('latency_p50_ms')) > 0

    # Parameter updates are validated: a bad value and a read-only one are refused with reasons.
    def set_param(name, value):
        param = Parameter(name=name, value=ParameterValue(type=ParameterType.PARAMETER_INTEGER,
                                                          integer_value=value))
        return client.call(client.set_parameters,
                           SetParameters.Request(parameters=[param])).results[0]
    refused = set_param('attention_every_n', 0)
    assert not refused.successful and 'attention_every_n must be >= 1' in refused.reason
    assert set_param('attention_every_n', 2).successful
    read_only = client.call(client.set_parameters, SetParameters.Request(parameters=[Parameter(
        name='checkpoint', value=ParameterValue(type=ParameterType.PARAMETER_STRING,
                                                string_value='/elsewhere.pt'))])).results[0]
    assert not read_only.successful and 'read-only' in read_only.reason

    # A malformed or out-of-range vehicle profile set at run time is refused; the node steers on.
    def set_vehicle(path):
        param = Parameter(name='vehicle', value=ParameterValue(
            type=ParameterType.PARAMETER_STRING, string_value=str(path)))
        return client.call(client.set_parameters,
                           SetParameters.Request(parameters=[param])).results[0]
    (tmp_path / 'bad.yaml').write_text('name: bad\nwheelbase_m: [1, 2\n')
    (tmp_path / 'inf.yaml').write_text('name: inf\nwheelbase_m: .inf\nsteering_ratio: 14\n'
                                       'slip_factor_s2_per_m2: 0\n')
    refused = set_vehicle(tmp_path / 'bad.yaml')
    assert not refused.successful and 'not valid YAML' in refused.reason
    refused = set_vehicle(tmp_path / 'inf.yaml')
    assert not refused.successful and 'wheelbase_m must be a finite number' in refused.reason
    assert set_vehicle('mkz').successful
    client.send(jpeg_msg(a, 40 * second))


@pytest.mark.parametrize('running', ['raw'], indirect=True)
def test_raw_frames_any_supported_encoding_and_bad_images_counted(running, camera_frames):
    client, _ = running
    second = 1_000_000_000
    bgr = cv2.resize(camera_frames[0], (160, 120), interpolation=cv2.INTER_AREA)
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    client.send(raw_msg(bgr, 'bgr8', 1 * second))             # warm-up

    # Each frame steps back in time, so each starts a fresh sequence: same picture, same u.
    u = client.send(raw_msg(bgr, 'bgr8', 100 * second))
    assert client.send(raw_msg(rgb, 'rgb8', 90 * second, pad=7)) == pytest.approx(u, abs=1e-6)
    assert client.send(raw_msg(rgba, 'rgba8', 80 * second, pad=4)) == pytest.approx(u, abs=1e-6)
    grey = client.send(raw_msg(bgr[..., 1].copy(), 'mono8', 70 * second, pad=3))
    assert np.isfinite(grey)

    unknown = raw_msg(bgr, 'bgr8', 60 * second)
    unknown.encoding = '16UC1'
    client.send_unanswered(unknown, 'rejected_encoding')
    zero = raw_msg(bgr, 'bgr8', 61 * second)
    zero.height, zero.width, zero.step, zero.data = 0, 0, 0, b''
    client.send_unanswered(zero, 'rejected_zero_size')
    narrow = raw_msg(bgr, 'bgr8', 62 * second)
    narrow.step = 160 * 3 - 1
    client.send_unanswered(narrow, 'rejected_step')
    truncated = raw_msg(bgr, 'bgr8', 63 * second)
    truncated.data = bytes(truncated.data[:-10])
    client.send_unanswered(truncated, 'rejected_truncated')
    assert not set(client.commands) & {s * second for s in (60, 61, 62, 63)}
    assert client.latest_value('frames_rejected') == 4
    client.send(raw_msg(bgr, 'bgr8', 64 * second))            # still steering


def test_missing_or_bad_checkpoint_exits_with_one_line(tmp_path, ros_domain_id):
    for path, expected in ((tmp_path / 'absent.pt', 'checkpoint not found'),
                           (tmp_path / 'garbage.pt', 'garbage.pt')):
        if path.name == 'garbage.pt':
            path.write_bytes(b'not a checkpoint')
        process = start_node(path, 'compressed')
        assert process.wait(timeout_s=60) != 0
        stderr = process.stderr_text()
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith('drive_node: error:'), stderr
        assert expected in lines[0]
        assert 'Traceback' not in stderr


@pytest.mark.parametrize('args, expected', [
    (['-p', 'attention_every_n:=abc'],
     "drive_node: error: parameter attention_every_n: expected an integer, got 'abc'"),
    (['-p', 'checkpoint:='], "drive_node: error: invalid ROS arguments: Couldn't parse "
     "parameter override rule: '-p checkpoint:='"),
    (['-p', 'vehicle:={bad}'], 'drive_node: error: parameter vehicle: vehicle '),
    (['-p', 'vehicle:={inf}'], 'wheelbase_m must be a finite number, got inf'),
    (['-p', 'input_reliability:=sometimes'],
     "input_reliability must be best_effort or reliable, got 'sometimes'"),
    (['-p', 'input_depth:=0'], 'input_depth must be >= 1, got 0'),
])
def test_bad_start_arguments_give_one_line_and_status_1(tiny_checkpoint, ros_domain_id, tmp_path,
                                                        args, expected):
    bad, inf = tmp_path / 'bad.yaml', tmp_path / 'inf.yaml'
    bad.write_text('name: bad\nwheelbase_m: [1, 2\n')
    inf.write_text('name: inf\nwheelbase_m: .inf\nsteering_ratio: 14\n'
                   'slip_factor_s2_per_m2: 0\n')
    args = [a.format(bad=bad, inf=inf) for a in args]
    process = start_node(tiny_checkpoint, 'compressed', *args)
    assert process.wait(timeout_s=60) == 1
    stderr = process.stderr_text()
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith('drive_node: error:'), stderr
    assert expected in lines[0]
    if 'bad.yaml' in ' '.join(args):
        assert 'not valid YAML' in lines[0]


@pytest.mark.parametrize('running', [{
    'transport': 'raw', 'reliable': True, 'env': {'FASTDDS_BUILTIN_TRANSPORTS': 'LARGE_DATA'},
    'args': ['-p', 'input_reliability:=reliable']}], indirect=True)
def test_raw_640x480_bgr8_over_large_data_reliable_is_answered(running, camera_frames):
    client, _ = running
    second = 1_000_000_000
    stamps = [(100 + i) * second for i in range(5)]
    for stamp, frame in zip(stamps, camera_frames):
        assert np.isfinite(client.send(raw_msg(frame, 'bgr8', stamp)))   # 921,600 bytes each
    assert set(stamps) <= set(client.commands)
    client.spin_until(lambda: client.latest_value('frames_processed', 0) >= 5, 'diagnostics')


@pytest.mark.parametrize('running', [{
    'transport': 'compressed', 'args': ['-p', 'stale_input_s:=0.5']}], indirect=True)
def test_diagnostics_warn_on_silent_input_and_on_rejections_and_bombs_cost_nothing(
        running, camera_frames):
    client, process = running
    # The camera publisher exists but sends nothing: WARN naming the silence.
    client.spin_until(lambda: client.latest_status() is not None
                      and 'no frame for' in client.latest_status()[1], 'a stale-input WARN')
    level, message = client.latest_status()
    assert level == 1 and '1 publisher(s)' in message and 'frames_received 0' in message
    second = 1_000_000_000
    client.send(jpeg_msg(camera_frames[0], 1 * second))

    # A 48 KB PNG that decodes to 20000x20000 is refused from its header, and counted.
    bomb = CompressedImage(format='png', data=png_bomb())
    for i in range(3):
        client.send_unanswered(set_stamp(bomb, (2 + i) * second), 'rejected_too_large')
    assert client.latest_value('rejected_too_large') == 3
    u = client.send(jpeg_msg(camera_frames[1], 6 * second))   # answered right after
    assert np.isfinite(u)
    client.spin_until(lambda: 'too_large 3' in client.latest_status()[1], 'a rejection WARN')
    level, message = client.latest_status()
    bad, received = map(int, re.search(r'(\d+) of (\d+) frames', message).groups())
    assert level == 1 and bad == 3 and received >= 4, message
    assert 'rejected (3: too_large 3)' in message
    assert float(client.latest_value('decode_p50_ms')) > 0
    assert process.alive()


def test_invalid_start_parameter_exits_with_the_reason(tiny_checkpoint, ros_domain_id):
    process = start_node(tiny_checkpoint, 'compressed', '-p', 'device:=gpu')
    assert process.wait(timeout_s=60) != 0
    stderr = process.stderr_text()
    assert stderr.strip() == ("drive_node: error: parameter device: device must be auto, cpu, "
                              "cuda or cuda:N, got 'gpu'")


@pytest.fixture
def node_in_process(tiny_checkpoint, ros_domain_id):
    from signattn_driver.ros.drive_node import DriveNode
    context = rclpy.Context()
    rclpy.init(context=context)
    node = DriveNode(context=context, parameter_overrides=[
        NodeParameter('checkpoint', value=str(tiny_checkpoint)),
        NodeParameter('device', value='cpu')])
    published = []
    node.outputs.command.publish = published.append
    try:
        yield node, published
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_non_finite_output_is_counted_and_not_published(node_in_process, camera_frames):
    import torch
    node, published = node_in_process
    msg = jpeg_msg(camera_frames[0], 10**9)
    assert node.process(msg) is not None and len(published) == 1
    from signattn_driver.model import Explained
    node.predictor.step_input = lambda x, command=None: Explained(
        torch.tensor([float('nan')]), torch.zeros(1, 10, 20), torch.zeros(1, 10, 20),
        torch.zeros(1), None)
    assert node.process(jpeg_msg(camera_frames[0], 2 * 10**9)) is None
    assert len(published) == 1 and node.counters.rejections['non_finite_output'] == 1


def test_a_resent_frame_is_refused_and_the_lstm_steps_once_per_frame(
        node_in_process, camera_frames, tiny_checkpoint):
    from signattn_driver.predictor import Predictor
    node, published = node_in_process
    t0, period = 10**18, 50_000_000
    msgs = [jpeg_msg(camera_frames[i], t0 + i * period) for i in range(3)]
    assert node.process(msgs[0]) is not None
    # a lock-step publisher resent frame 0 before its answer came: not steered on again
    assert node.process(msgs[0]) is None
    assert node.counters.rejections['duplicate'] == 1 and len(published) == 1
    u = [node.process(m) for m in msgs[1:]]
    assert node.counters.frames['state_resets'] == 1

    def in_process(order):
        predictor = Predictor(tiny_checkpoint, device='cpu')
        images = [cv2.imdecode(np.frombuffer(bytes(m.data), np.uint8), cv2.IMREAD_COLOR)
                  for m in msgs]
        return [predictor.step_full(images[i]).u_per_m for i in order]
    # the node's state is that of one step per frame, as in process ...
    assert u == pytest.approx(in_process([0, 1, 2])[1:], abs=1e-6)
    # ... which a second step on frame 0 would have changed
    assert abs(in_process([0, 0, 1, 2])[2] - u[0]) > 1e-6
    # after ~/reset_state the same stamp is a new sequence's first frame, not a copy
    node._on_reset_state(Trigger.Request(), Trigger.Response())
    assert node.process(msgs[2]) == pytest.approx(in_process([2])[0], abs=1e-6)
    assert node.counters.rejections['duplicate'] == 1


def test_future_stamps_are_rejected_and_stages_are_timed(node_in_process, camera_frames):
    node, published = node_in_process
    now_ns = node.get_clock().now().nanoseconds
    assert node.process(jpeg_msg(camera_frames[0], now_ns + 3600 * 10**9)) is None
    assert node.counters.rejections['future'] == 1 and not published
    assert node.process(jpeg_msg(camera_frames[0], now_ns + 10**8)) is not None   # in tolerance
    node.set_parameters([NodeParameter('max_future_s', value=0.0)])   # off
    assert node.process(jpeg_msg(camera_frames[1], now_ns + 3600 * 10**9)) is not None
    assert len(published) == 2
    stats = node.latency_stats()
    for stage in ('decode', 'preprocess', 'network', 'publish', 'compute', 'latency'):
        assert stats[f'{stage}_p50_ms'] > 0, stage
    assert stats['wait_p50_ms'] == 0   # called directly, not through the worker's queue
    assert stats['latency_p50_ms'] >= stats['network_p50_ms']


def test_raw_pixel_limit_is_a_run_time_parameter(node_in_process, camera_frames):
    node, published = node_in_process
    msg = raw_msg(camera_frames[0], 'bgr8', 10**9)
    refused = node.set_parameters([NodeParameter('max_input_pixels', value=-1)])
    assert not refused[0].successful and 'max_input_pixels must be >= 0' in refused[0].reason
    node.set_parameters([NodeParameter('max_input_pixels', value=640 * 479)])
    assert node.process(msg) is None and node.counters.rejections['too_large'] == 1
    node.set_parameters([NodeParameter('max_input_pixels', value=640 * 480)])
    assert node.process(msg) is not None and len(published) == 1


def test_cuda_out_of_memory_falls_back_to_cpu(node_in_process, camera_frames):
    import torch
    node, published = node_in_process
    real_step = node.predictor.step_input

    def out_of_memory(*args):
        node.predictor.step_input = real_step
        raise torch.cuda.OutOfMemoryError('CUDA out of memory (simulated)')
    node.predictor.step_input = out_of_memory
    msg = jpeg_msg(camera_frames[0], 10**9)
    assert node.process(msg) is None and not published
    assert node.counters.rejections['cuda_oom'] == 1
    assert 'CUDA ran out of memory' in node.steering.device_note
    assert node.predictor.device.type == 'cpu'
    assert node.process(msg) is not None and len(published) == 1


# One drive, in arrival order, for the sequence-rule consistency test: 20 Hz, a 0.3 s stall (the
# state is kept), a 0.6 s gap (over the 0.5 s rule, under the node's old 1 s), a jump back.
DRIVE_NS = 1_600_000_000 * 10**9 + np.array(
    [0, 50, 100, 400, 450, 1050, 1100, 1150, 700, 750]) * 1_000_000
DRIVE_STARTS = [0, 5, 8]


def test_node_training_and_evaluation_start_sequences_at_the_same_frames(
        node_in_process, camera_frames, tmp_path):
    from signattn_driver.data.dataset import Dataset, DatasetWriter
    from signattn_driver.data.sequence_rule import SequenceRule
    from signattn_driver.data.sequences import SequenceIndex
    from signattn_driver.preprocessing import to_hsv_u8
    from signattn_driver.vehicle import load_vehicle

    # the rule itself, on the arrival order
    assert np.flatnonzero(SequenceRule().segment_starts(DRIVE_NS)).tolist() == DRIVE_STARTS
    # the node with its default reset_gap_s: the LSTM state resets exactly there
    node, _ = node_in_process
    starts = []
    for i, stamp in enumerate(DRIVE_NS):
        before = node.counters.frames['state_resets']
        assert node.process(jpeg_msg(camera_frames[i % 8], int(stamp))) is not None
        if node.counters.frames['state_resets'] > before:
            starts.append(i)
    assert starts == DRIVE_STARTS
    # training and evaluation (data/sequences.py) cut a stored drive at the same frames; a
    # dataset is stamp-ordered, so the part before the jump back is what it can hold
    increasing = DRIVE_NS[:DRIVE_STARTS[-1]]
    writer = DatasetWriter(tmp_path / 'ds', vehicle=load_vehicle('mkz'), smoothing_alpha=0.2)
    drive = writer.drive('d')
    for i, stamp in enumerate(increasing):
        drive.append(to_hsv_u8(camera_frames[i % 8]), int(stamp), 0.0, 10.0)
    writer.close_drive(drive)
    index = SequenceIndex([Dataset(writer.finalize())], splits=('train',))
    first_frames = sorted(int(np.searchsorted(increasing, s.stamps_ns[0])) for s in index.segments)
    assert first_frames == DRIVE_STARTS[:-1]


def contribution_of_first_frame(checkpoint, frame, command=None):
    """Return phi and u of `frame` (sent as JPEG) as the first frame of a sequence."""
    from signattn_driver.predictor import Predictor
    jpeg = np.frombuffer(bytes(jpeg_msg(frame, 0).data), np.uint8)
    out = Predictor(checkpoint, device='cpu').step_full(
        cv2.imdecode(jpeg, cv2.IMREAD_COLOR), want_contribution=True, command=command)
    return out.contribution_per_m, out.u_per_m


def test_contribution_map_published_as_overlay_or_raw_phi_with_its_scale(
        node_in_process, camera_frames, tiny_checkpoint):
    node, published = node_in_process
    maps = []
    node.outputs.contribution.publish = maps.append
    msg = jpeg_msg(camera_frames[0], 10**9)
    assert node.process(msg) is not None and not maps       # nobody listens: not computed
    node.outputs.contribution.get_subscription_count = lambda: 1
    node._on_reset_state(Trigger.Request(), Trigger.Response())
    u = node.process(jpeg_msg(camera_frames[0], 2 * 10**9))
    overlay = maps[-1]
    assert (overlay.encoding, overlay.height, overlay.width) == ('bgr8', 480, 640)
    assert stamp_of(overlay.header) == 2 * 10**9
    phi, u_alone = contribution_of_first_frame(tiny_checkpoint, camera_frames[0])
    assert u == pytest.approx(u_alone, abs=1e-6)
    # the stated scale: this frame's max |phi|, or the parameter when it is > 0
    assert node.outputs.contribution_scale_per_m == pytest.approx(float(np.abs(phi).max()),
                                                                  rel=1e-5)
    assert not node.set_parameters([NodeParameter('contribution_scale_per_m',
                                                  value=-1.0)])[0].successful
    node.set_parameters([NodeParameter('contribution_scale_per_m', value=0.25),
                         NodeParameter('contribution_raw', value=True)])
    node._on_reset_state(Trigger.Request(), Trigger.Response())
    node.process(jpeg_msg(camera_frames[0], 3 * 10**9))
    raw = maps[-1]
    assert (raw.encoding, raw.height, raw.width) == ('32FC1', 10, 20)
    values = np.frombuffer(bytes(raw.data), np.float32).reshape(10, 20)
    np.testing.assert_allclose(values, phi, rtol=1e-5, atol=1e-8)   # phi itself, 1/m
    assert node.outputs.contribution_scale_per_m == 0.25
    assert node.counters.frames['contribution_published'] == 2
    node.set_parameters([NodeParameter('publish_contribution', value=False)])
    node.process(jpeg_msg(camera_frames[1], 4 * 10**9))
    assert len(maps) == 2 and len(published) == 4


@pytest.fixture
def command_checkpoint(tmp_path):
    import torch
    from conftest import tiny_config
    from signattn_driver import checkpoint
    from signattn_driver.model import SteeringNet
    torch.manual_seed(0)
    model = SteeringNet(tiny_config(num_commands=4)).eval()
    with torch.no_grad():   # make the branches differ clearly
        model.head.weight.copy_(torch.randn_like(model.head.weight))
    return checkpoint.save(tmp_path / 'command.pt', model, vehicle={'name': 'mkz'})


def test_route_command_steers_a_command_model_until_it_expires(
        command_checkpoint, camera_frames, ros_domain_id):
    from std_msgs.msg import UInt8
    from signattn_driver.ros.drive_node import DriveNode
    context = rclpy.Context()
    rclpy.init(context=context)
    node = DriveNode(context=context, parameter_overrides=[
        NodeParameter('checkpoint', value=str(command_checkpoint)),
        NodeParameter('device', value='cpu'), NodeParameter('route_command_timeout_s',
                                                            value=0.5)])
    try:
        frame = camera_frames[2]

        def first_frame_u(stamp_s):
            node._on_reset_state(Trigger.Request(), Trigger.Response())
            return node.process(jpeg_msg(frame, stamp_s * 10**9))
        follow = first_frame_u(1)
        assert follow == pytest.approx(contribution_of_first_frame(
            command_checkpoint, frame, command=0)[1], abs=1e-6)
        node._on_route_command(UInt8(data=1))                      # left
        left = first_frame_u(2)
        assert left == pytest.approx(contribution_of_first_frame(
            command_checkpoint, frame, command=1)[1], abs=1e-6)
        assert abs(left - follow) > 1e-4
        assert node.route.state(time.monotonic()).describe().startswith('left (topic')
        time.sleep(0.6)                                            # older than the timeout
        assert first_frame_u(3) == pytest.approx(follow, abs=1e-6)
        assert 'expired' in node.route.state(time.monotonic()).describe()
        node._on_route_command(UInt8(data=9))                      # invalid: follow-lane
        assert first_frame_u(4) == pytest.approx(follow, abs=1e-6)
        assert node.route.invalid == 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_a_camera_only_checkpoint_ignores_route_commands(node_in_process, camera_frames):
    from std_msgs.msg import UInt8
    node, _ = node_in_process
    u = node.process(jpeg_msg(camera_frames[0], 10**9))
    node._on_route_command(UInt8(data=3))
    node._on_reset_state(Trigger.Request(), Trigger.Response())
    assert node.process(jpeg_msg(camera_frames[0], 2 * 10**9)) == pytest.approx(u, abs=1e-6)
    assert node.route.state(time.monotonic()).source == 'ignored'


def test_a_latched_route_command_reaches_a_node_started_later(command_checkpoint,
                                                              camera_frames, ros_domain_id):
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from std_msgs.msg import UInt8
    client = Client('compressed')
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    navigator = client.node.create_publisher(UInt8, 'route/command', latched)
    navigator.publish(UInt8(data=2))                               # before the node exists
    process = start_node(command_checkpoint, 'compressed', '-p', 'route_command_timeout_s:=60.0')
    try:
        client.wait_for_node(process)
        client.send(jpeg_msg(camera_frames[0], 10**9))
        client.spin_until(lambda: str(client.latest_value('route_command', '')).startswith(
            'straight (topic'), 'the latched command in /diagnostics')
    finally:
        client.close()
        assert process.stop() == 0, process.stderr_text()
        process.close()
