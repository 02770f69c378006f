"""`ros2 launch signattn_driver drive.launch.py` for real: started as a process, checked over DDS.

The working tree is pip-installed once per session into a temporary prefix (the layout of
`make install` / `pip install .`: executables reached through <prefix>/lib/signattn_driver/),
so these tests run this tree's node and launch file, never a copy installed earlier. They need
the ROS 2 launch system and CLI (launch, launch_ros, ros2launch, ros2param): CI adds them with
../shared/ros2-extras/install.sh (.ci/run, `make ros2-extras`); a sourced ROS 2 install has
them. Elsewhere the tests skip, saying so. test_launch.py keeps the checks that need no ROS.
"""

import os
from pathlib import Path
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
import yaml

NO_LAUNCH = ('the ROS 2 launch system is not installed (launch, launch_ros, ros2launch, ros2cli): '
             'run `make ros2-extras` (../shared/ros2-extras/install.sh .venv, as .ci/run does) '
             'or source a ROS 2 install')
rclpy = pytest.importorskip('rclpy', reason='rclpy not installed')
launch = pytest.importorskip('launch', reason=NO_LAUNCH)
if not hasattr(launch, 'LaunchService'):   # the source tree's launch/ folder, not ROS 2 launch
    pytest.skip(NO_LAUNCH, allow_module_level=True)
for _module in ('launch_ros', 'ros2launch', 'ros2param'):
    pytest.importorskip(_module, reason=NO_LAUNCH)

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import TwistStamped, Vector3Stamped  # noqa: E402
from rcl_interfaces.srv import GetParameters, ListParameters  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import parameter_value_to_python  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from conftest import prefix_site_packages  # noqa: E402
from signattn_driver.vehicle import front_wheel_angle_rad, load_vehicle  # noqa: E402

pytestmark = pytest.mark.ros
ROOT = Path(__file__).resolve().parents[2]
PACKAGE = 'signattn_driver'
WAIT_S = 60.0   # generous: a loaded 2-core CI machine; nothing asserts on time
DEFAULT_CAMERA = '/center_camera/image_color/compressed'
# Launch arguments that set a drive_node parameter of the same name; the others remap topics or
# switch rviz2 on. test_every_argument_is_known keeps this list complete.
PARAMETER_ARGUMENTS = ('checkpoint', 'device', 'precision', 'input_transport',
                       'input_reliability', 'input_depth', 'speed_topic', 'assumed_speed_mps',
                       'use_sim_time')
OTHER_ARGUMENTS = ('camera_topic', 'ackermann_topic', 'rviz', 'lifecycle',
                   'route_command_topic', 'view')


def ros2_executable() -> str:
    for candidate in (Path(sys.executable).parent / 'ros2', shutil.which('ros2')):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.skip(NO_LAUNCH)


def launch_environment(prefix: Path, log_dir: Path) -> dict:
    """Return the environment of a shell that pip-installed into `prefix` and exported it."""
    site = prefix_site_packages(prefix)
    env = dict(os.environ)
    env['AMENT_PREFIX_PATH'] = os.pathsep.join(
        [str(prefix), env.get('AMENT_PREFIX_PATH') or sys.prefix])
    env['PYTHONPATH'] = os.pathsep.join(p for p in (str(site), env.get('PYTHONPATH')) if p)
    env.update(ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', FASTDDS_BUILTIN_TRANSPORTS='LARGE_DATA',
               PYTHONUNBUFFERED='1', ROS_LOG_DIR=str(log_dir))
    return env


def session_processes(session_id: int) -> list[str]:
    """List the live processes (not zombies) of a session as 'pid command' strings."""
    found = []
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try:
            name, rest = stat.read_text().rsplit(')', 1)
            cmdline = (stat.parent / 'cmdline').read_bytes().replace(b'\0', b' ').decode()
        except OSError:
            continue
        state, _, _, session = rest.split()[:4]
        if int(session) == session_id and state != 'Z':
            found.append(f'{stat.parent.name} {cmdline or name}')
    return found


class Launch:
    """`ros2 launch signattn_driver drive.launch.py ARGS` in a session of its own."""

    def __init__(self, prefix: Path, log_dir: Path, *arguments: str):
        self.prefix = prefix
        self.env = launch_environment(prefix, log_dir)
        self.process = subprocess.Popen(
            [ros2_executable(), 'launch', PACKAGE, 'drive.launch.py', *arguments],
            env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return ''.join(self.lines)

    def wait(self, timeout: float = WAIT_S) -> int:
        status = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return status

    def ctrl_c(self) -> int:
        """Do what Ctrl-C in a terminal does: SIGINT to the whole foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.wait(30)

    def left_behind(self) -> list[str]:
        return session_processes(self.process.pid)

    def node_pid(self) -> int:
        match = re.search(r'\[drive_node-1\]: process started with pid \[(\d+)\]', self.output)
        assert match, self.output
        return int(match.group(1))

    def close(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        for line in self.left_behind():
            os.kill(int(line.split()[0]), signal.SIGKILL)


@pytest.fixture
def start(pip_prefix, tmp_path, ros_domain_id, monkeypatch):
    """Start launches (and close whatever is left of them at the end of the test)."""
    monkeypatch.setenv('FASTDDS_BUILTIN_TRANSPORTS', 'LARGE_DATA')   # the probe's images too
    started = []

    def starter(*arguments: str) -> Launch:
        started.append(Launch(pip_prefix, tmp_path / 'ros_log', *arguments))
        return started[-1]
    yield starter
    for one in started:
        one.close()


def stamp_of(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


class Probe:
    """The test's side of the graph: camera, listeners, parameter clients."""

    def __init__(self, launch_process: Launch):
        self.launch = launch_process
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('drive_launch_probe', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.commands, self.sent = {}, set()
        self.node.create_subscription(
            Vector3Stamped, '/steering/command',
            lambda m: self.commands.setdefault(stamp_of(m.header), m), 10)

    def spin_until(self, condition, what: str, timeout: float = WAIT_S, every=None):
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.launch.process.poll() is None, \
                f'the launch ended while waiting for {what}:\n{self.launch.output}'
            assert time.monotonic() < deadline, \
                f'gave up waiting for {what}:\n{self.launch.output}'
            if every:
                every()
            self.executor.spin_once(timeout_sec=0.05)

    def answer_each(self, publisher, make_frame, stamps_ns, keep_alive=None) -> list:
        """Send one frame per stamp, each after the previous was answered; return the answers.

        Frames go best effort (sensor-data QoS): until discovery has matched the camera
        publisher, frames are sent (as first stamp - k ms) until one is answered; after that an
        unanswered frame is sent again, with its stamp, once a second.
        """
        first, retry = stamps_ns[0], [0]

        def send(stamp):
            self.sent.add(stamp)
            publisher.publish(make_frame(stamp))

        def resend():
            if keep_alive:
                keep_alive()
            retry[0] += 1
            if retry[0] % 10 == 1:
                send(first - retry[0] * 1_000_000)
        self.spin_until(lambda: self.commands, 'the first answer', every=resend)
        for stamp in stamps_ns:
            send(stamp)
            sent_at = [time.monotonic()]

            def again():
                if keep_alive:
                    keep_alive()
                if time.monotonic() - sent_at[0] > 1.0:
                    send(stamp)
                    sent_at[0] = time.monotonic()
            self.spin_until(lambda: stamp in self.commands, f'the answer to frame {stamp}',
                            every=again)
            assert self.commands[stamp].header == make_frame(stamp).header  # stamp, frame_id
        assert set(self.commands) <= self.sent    # answers only to frames that were sent
        return [self.commands[stamp] for stamp in stamps_ns]

    def parameters(self, names) -> dict:
        """drive_node's values of `names` that it declares (through its parameter services)."""
        listed = self.call(ListParameters, '/drive_node/list_parameters', ListParameters.Request(),
                           resend_s=2.0)
        declared = [n for n in names if n in listed.result.names]
        got = self.call(GetParameters, '/drive_node/get_parameters',
                        GetParameters.Request(names=declared), resend_s=2.0)
        return {n: parameter_value_to_python(v) for n, v in zip(declared, got.values)}

    def call(self, kind, name, request, resend_s: float | None = None):
        """Call a service of the node; return its response.

        A server may not have matched this client's response reader yet when the first request
        arrives (Fast DDS then drops the response: "failed to send response (timeout)").
        Idempotent queries pass `resend_s` and are sent again while unanswered.
        """
        client = self.node.create_client(kind, name)
        self.spin_until(client.service_is_ready, name)
        future, sent = client.call_async(request), time.monotonic()

        def resend():
            nonlocal future, sent
            if resend_s and not future.done() and time.monotonic() - sent > resend_s:
                future, sent = client.call_async(request), time.monotonic()
        self.spin_until(lambda: future.done(), f'the answer of {name}', every=resend)
        return future.result()

    def close(self):
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture
def probes():
    made = []

    def make(launch_process):
        made.append(Probe(launch_process))
        return made[-1]
    yield make
    for probe in made:
        probe.close()


def jpeg_maker(image, frame_id='center_camera'):
    data = cv2.imencode('.jpg', image)[1].tobytes()

    def make(stamp_ns):
        msg = CompressedImage(format='jpeg', data=data)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        msg.header.frame_id = frame_id
        return msg
    return make


def declared_defaults() -> dict:
    """Name -> default text of every argument the launch file declares (real launch objects)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('drive_launch',
                                                  ROOT / 'launch' / 'drive.launch.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    context = launch.LaunchContext()
    return {e.name: (launch.utilities.perform_substitutions(context, e.default_value)
                     if e.name != 'checkpoint' else None)
            for e in module.generate_launch_description().entities
            if isinstance(e, launch.actions.DeclareLaunchArgument)}


def test_every_argument_is_known():
    assert sorted(declared_defaults()) == sorted(PARAMETER_ARGUMENTS + OTHER_ARGUMENTS)


def test_default_arguments_answer_stamp_for_stamp_and_ctrl_c_ends_everything(
        start, probes, tiny_checkpoint, camera_frames):
    launched = start(f'checkpoint:={tiny_checkpoint}', 'device:=cpu')
    probe = probes(launched)
    camera = probe.node.create_publisher(CompressedImage, DEFAULT_CAMERA, qos_profile_sensor_data)
    answers = probe.answer_each(camera, jpeg_maker(camera_frames[0]),
                                [10**9 * 100 + i * 50_000_000 for i in range(5)])
    assert all(np.isfinite(a.vector.x) for a in answers)

    # Each argument's parameter, as given or as the launch file's default.
    expected = {name: yaml.safe_load(text) if name in ('input_depth', 'use_sim_time')
                else text for name, text in declared_defaults().items()
                if name in PARAMETER_ARGUMENTS}
    expected.update(checkpoint=str(tiny_checkpoint), device='cpu')
    expected['assumed_speed_mps'] = float(expected['assumed_speed_mps'])
    got = probe.parameters(PARAMETER_ARGUMENTS)
    assert set(PARAMETER_ARGUMENTS) == set(got)   # every argument is a declared parameter
    assert got == {name: expected[name] for name in got}
    cli = subprocess.run([ros2_executable(), 'param', 'get', '--no-daemon', '--timeout', '30',
                          '/drive_node', 'precision'], capture_output=True, text=True,
                         timeout=WAIT_S, env=launched.env)
    assert cli.stdout.strip() == 'String value is: fp32', cli.stdout + cli.stderr

    # The launched executable is the pip layout's forwarder, exec'd into the console script.
    interpreter, script = map(os.fsdecode, Path(f'/proc/{launched.node_pid()}/cmdline')
                              .read_bytes().split(b'\0')[:2])
    assert Path(interpreter).name.startswith('python'), interpreter   # no shell left in between
    assert Path(script).resolve() == (launched.prefix / 'bin' / 'drive_node').resolve()

    assert launched.ctrl_c() == 0, launched.output
    assert launched.left_behind() == []
    assert 'Traceback' not in launched.output, launched.output


def test_raw_int8_with_sim_time(start, probes, tiny_checkpoint, camera_frames):
    launched = start(f'checkpoint:={tiny_checkpoint}', 'device:=cpu', 'input_transport:=raw',
                     'camera_topic:=/cam/image', 'precision:=int8', 'use_sim_time:=true')
    probe = probes(launched)
    diagnostics = []
    probe.node.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
    clock = probe.node.create_publisher(Clock, '/clock', 10)
    sim_start_ns, wall_start = 5_000 * 10**9, time.monotonic()

    def sim_now_ns() -> int:
        return sim_start_ns + int((time.monotonic() - wall_start) * 1e9)

    def tick():
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(sim_now_ns(), 1_000_000_000)
        clock.publish(msg)

    bgr = camera_frames[1]

    def raw_frame(stamp_ns):
        msg = Image(height=bgr.shape[0], width=bgr.shape[1], encoding='bgr8',
                    step=bgr.shape[1] * 3, data=bgr.tobytes())
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        msg.header.frame_id = 'cam'
        return msg
    camera = probe.node.create_publisher(Image, '/cam/image', qos_profile_sensor_data)
    answers = probe.answer_each(camera, raw_frame,
                                [sim_start_ns + 10**9 + i * 50_000_000 for i in range(3)],
                                keep_alive=tick)
    assert all(np.isfinite(a.vector.x) for a in answers)
    # The node's clock is /clock: its 1 Hz diagnostics carry simulated time.
    probe.spin_until(lambda: diagnostics, '/diagnostics', every=tick)
    stamp_ns = stamp_of(diagnostics[-1].header)
    assert sim_start_ns <= stamp_ns <= sim_now_ns(), (stamp_ns, sim_now_ns())
    values = {kv.key: kv.value for kv in diagnostics[-1].status[0].values}
    assert values['precision'] == 'int8'
    assert probe.parameters(['use_sim_time', 'precision', 'input_transport']) == {
        'use_sim_time': True, 'precision': 'int8', 'input_transport': 'raw'}
    assert launched.ctrl_c() == 0, launched.output
    assert launched.left_behind() == []


def test_ackermann_angle_from_speed_topic_else_assumed_speed(start, probes, tiny_checkpoint,
                                                             camera_frames):
    ackermann_msgs = pytest.importorskip(
        'ackermann_msgs.msg', reason='ackermann_msgs is not installed (ros-<distro>-ackermann-'
        'msgs, or `make ros2-extras`): the node publishes no AckermannDriveStamped')
    launched = start(f'checkpoint:={tiny_checkpoint}', 'device:=cpu',
                     'speed_topic:=/vehicle/twist', 'assumed_speed_mps:=5.0',
                     'ackermann_topic:=/ackermann_cmd')
    probe = probes(launched)
    drives = {}
    probe.node.create_subscription(ackermann_msgs.AckermannDriveStamped, '/ackermann_cmd',
                                   lambda m: drives.setdefault(stamp_of(m.header), m), 10)
    camera = probe.node.create_publisher(CompressedImage, DEFAULT_CAMERA, qos_profile_sensor_data)
    make = jpeg_maker(camera_frames[2])
    mkz = load_vehicle('mkz')

    def check(stamp, speed_mps):
        drive = drives[stamp]
        assert drive.header == probe.commands[stamp].header
        u = probe.commands[stamp].vector.x
        assert drive.drive.steering_angle == pytest.approx(
            front_wheel_angle_rad(u, speed_mps, mkz), rel=1e-5, abs=1e-9)
        assert drive.drive.speed == 0.0

    # No twist yet: assumed_speed_mps.
    stamps = [10**9 * 200 + i * 50_000_000 for i in range(2)]
    probe.answer_each(camera, make, stamps)
    for stamp in stamps:
        probe.spin_until(lambda: stamp in drives, f'the Ackermann answer to {stamp}')
        check(stamp, 5.0)
    # A twist at 20 m/s: later frames are steered for that speed.
    twist = probe.node.create_publisher(TwistStamped, '/vehicle/twist', 10)
    speed = TwistStamped()
    speed.twist.linear.x = 20.0
    probe.spin_until(lambda: twist.get_subscription_count() > 0, 'the speed subscription')
    twist.publish(speed)
    for i in range(200):
        stamp = 10**9 * 300 + i * 50_000_000
        probe.answer_each(camera, make, [stamp])
        probe.spin_until(lambda: stamp in drives, f'the Ackermann answer to {stamp}')
        u = probe.commands[stamp].vector.x
        if drives[stamp].drive.steering_angle != pytest.approx(
                front_wheel_angle_rad(u, 5.0, mkz), rel=1e-5, abs=1e-9):
            break
        twist.publish(speed)
    check(stamp, 20.0)
    assert launched.ctrl_c() == 0, launched.output


@pytest.mark.parametrize('arguments, message', [
    (['checkpoint:=/nonexistent/model.pt'],
     'drive_node: error: checkpoint not found: /nonexistent/model.pt'),
    (['checkpoint:={tiny}', 'device:=tpu'],
     "drive_node: error: parameter device: device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
])
def test_a_node_that_exits_ends_the_launch_nonzero_with_its_message(
        start, tiny_checkpoint, arguments, message):
    launched = start(*(a.format(tiny=tiny_checkpoint) for a in arguments))
    assert launched.wait() != 0, launched.output
    assert message in launched.output
    assert 'drive_node exited with status 1' in launched.output
    assert launched.left_behind() == []


def test_rviz_without_rviz2_fails_before_anything_starts(start, pip_prefix, tiny_checkpoint):
    env = launch_environment(pip_prefix, Path('/tmp'))
    if any((Path(p) / 'share/ament_index/resource_index/packages/rviz2').is_file()
           for p in env['AMENT_PREFIX_PATH'].split(os.pathsep) if p):
        pytest.skip('rviz2 is installed here: rviz:=true would start it')
    launched = start(f'checkpoint:={tiny_checkpoint}', 'rviz:=true')
    assert launched.wait() != 0, launched.output
    assert 'rviz2 is not installed' in launched.output
    assert 'sudo apt install ros-$ROS_DISTRO-rviz2' in launched.output
    assert 'process started' not in launched.output      # drive_node was never started
    assert launched.left_behind() == []


def test_lifecycle_true_starts_a_managed_node_that_steers_once_activated(
        start, probes, tiny_checkpoint, camera_frames):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    launched = start(f'checkpoint:={tiny_checkpoint}', 'device:=cpu', 'lifecycle:=true')
    probe = probes(launched)
    state = probe.call(GetState, '/drive_node/get_state', GetState.Request(), resend_s=2.0)
    assert state.current_state.label == 'unconfigured'
    camera = probe.node.create_publisher(CompressedImage, DEFAULT_CAMERA, qos_profile_sensor_data)
    for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
        assert probe.call(ChangeState, '/drive_node/change_state', ChangeState.Request(
            transition=Transition(id=transition))).success
    answers = probe.answer_each(camera, jpeg_maker(camera_frames[0]),
                                [10**9 * 100 + i * 50_000_000 for i in range(3)])
    assert all(np.isfinite(a.vector.x) for a in answers)
    assert launched.ctrl_c() == 0, launched.output
    assert launched.left_behind() == []
    assert 'Traceback' not in launched.output, launched.output
