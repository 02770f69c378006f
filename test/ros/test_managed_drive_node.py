"""`drive_node --lifecycle` (ros/managed_drive_node.py): driven through its lifecycle services.

Over loopback DDS as a lifecycle manager would (lifecycle_msgs/srv/ChangeState, GetState), with
`ros2 lifecycle` where the ROS 2 CLI is installed, and in-process for what needs no graph.
"""

import os
from pathlib import Path
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='rclpy not installed')
lifecycle_msgs = pytest.importorskip('lifecycle_msgs', reason='lifecycle_msgs not installed')
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter as NodeParameter  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from test_drive_node import Client, jpeg_msg, WAIT_S  # noqa: E402

from signattn_driver.ros.node_process import node_command, NodeProcess  # noqa: E402

pytestmark = pytest.mark.ros
SECOND = 1_000_000_000
REPLY_S = 10.0     # a change_state reply not here by then was lost (Manager.transition)
PRIMARY_STATES = ('unconfigured', 'inactive', 'active', 'finalized')


def start_managed(checkpoint) -> NodeProcess:
    command = node_command({'checkpoint': checkpoint, 'input_transport': 'compressed',
                            'device': 'cpu', 'num_threads': 1})
    command.insert(command.index('--ros-args'), '--lifecycle')
    return NodeProcess(command=command)


class Manager(Client):
    """The test's client plus what a lifecycle manager uses."""

    def __init__(self):
        super().__init__('compressed')
        self.change = self.node.create_client(ChangeState, '/drive_node/change_state')
        self.get = self.node.create_client(GetState, '/drive_node/get_state')

    def wait_for_services(self, process):
        def ready():
            assert process.alive(), process.stderr_text()
            return self.change.service_is_ready() and self.get.service_is_ready()
        self.spin_until(ready, 'the lifecycle services')
        self.state()        # one answered query: the node has matched this client by now

    def state(self) -> str:
        return self.call(self.get, GetState.Request(), resend_s=2.0).current_state.label

    def transition(self, transition_id: int) -> bool:
        """Request a transition; return whether it succeeded.

        change_state is not idempotent, so a reply lost to discovery (see `Client.call`) is
        not sent again: after REPLY_S without one, the state answers instead. A lifecycle
        transition succeeds exactly when it leaves the primary state it started from.
        """
        before = self.state()
        request = ChangeState.Request(transition=Transition(id=transition_id))
        future = self.change.call_async(request)
        deadline = time.monotonic() + REPLY_S
        while not future.done() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)
        if future.done():
            return future.result().success
        self.change.remove_pending_request(future)
        after, deadline = self.state(), time.monotonic() + WAIT_S
        while after not in PRIMARY_STATES:         # still configuring, activating, ...
            assert time.monotonic() < deadline, f'the node stays {after}'
            after = self.state()
        return after != before

    def latest_diagnostic(self):
        """(level, message, values) of a /diagnostics status newer than this call."""
        count = len(self.diagnostics)
        self.spin_until(lambda: len(self.diagnostics) > count, '/diagnostics')
        status = self.diagnostics[-1].status[0]
        return (int.from_bytes(status.level, 'little'), status.message,
                {kv.key: kv.value for kv in status.values})


@pytest.fixture
def managed(tiny_checkpoint, ros_domain_id):
    process = start_managed(tiny_checkpoint)
    manager = Manager()
    try:
        manager.wait_for_services(process)
        yield manager, process
    finally:
        manager.close()
        returncode = process.stop()
        stderr = process.stderr_text()
        process.close()
    assert returncode == 0, stderr


def test_configure_activate_deactivate_cleanup_through_the_lifecycle_services(
        managed, camera_frames):
    manager, process = managed
    assert manager.state() == 'unconfigured'
    level, message, values = manager.latest_diagnostic()
    assert (level, values['state']) == (0, 'unconfigured') and 'not steering' in message
    assert manager.camera.get_subscription_count() == 0
    # Not configured: nothing to reset.
    assert not manager.call(manager.reset, Trigger.Request()).success

    assert manager.transition(Transition.TRANSITION_CONFIGURE)
    assert manager.state() == 'inactive'
    level, _, values = manager.latest_diagnostic()
    assert values['state'] == 'inactive' and values['device'] == 'cpu' and level == 0
    assert manager.camera.get_subscription_count() == 0        # not subscribed before activate

    assert manager.transition(Transition.TRANSITION_ACTIVATE)
    assert manager.state() == 'active'
    frame = camera_frames[0]
    u = manager.send(jpeg_msg(frame, 10 * SECOND))
    assert np.isfinite(u)

    # Deactivate while frames keep coming at 20 Hz: after the transition returns, no frame
    # is answered, whatever was under way.
    stamp = [20 * SECOND]

    def camera_tick():
        stamp[0] += SECOND // 20
        manager.camera.publish(jpeg_msg(frame, stamp[0]))
    timer = manager.node.create_timer(0.05, camera_tick)
    manager.spin_until(lambda: stamp[0] > 21 * SECOND, 'a second of frames')
    assert manager.transition(Transition.TRANSITION_DEACTIVATE)
    after_deactivate = stamp[0]
    manager.spin_until(lambda: stamp[0] > after_deactivate + 2 * SECOND, 'two more seconds')
    timer.cancel()
    assert any(s > 20 * SECOND for s in manager.commands), 'frames before deactivate answered'
    late = [s for s in manager.commands if s > after_deactivate]
    assert not late, f'{len(late)} command(s) for frames sent after deactivate returned'
    assert manager.state() == 'inactive'
    manager.spin_until(lambda: manager.camera.get_subscription_count() == 0, 'unsubscribing')

    # Activate again: steering resumes, from a fresh LSTM state (same picture, same u).
    assert manager.transition(Transition.TRANSITION_ACTIVATE)
    assert manager.send(jpeg_msg(frame, 60 * SECOND)) == pytest.approx(u, abs=1e-6)

    assert manager.transition(Transition.TRANSITION_DEACTIVATE)
    assert manager.transition(Transition.TRANSITION_CLEANUP)
    assert manager.state() == 'unconfigured'
    _, _, values = manager.latest_diagnostic()
    assert values == {'state': 'unconfigured'}                   # the network is gone
    # A fresh configure works after cleanup; shutdown from active takes everything down.
    assert manager.transition(Transition.TRANSITION_CONFIGURE)
    assert manager.transition(Transition.TRANSITION_ACTIVATE)
    assert manager.transition(Transition.TRANSITION_ACTIVE_SHUTDOWN)
    assert manager.state() == 'finalized'
    assert process.alive()


def test_a_failed_configure_stays_unconfigured_and_says_why(tmp_path, ros_domain_id):
    process = start_managed(tmp_path / 'absent.pt')
    manager = Manager()
    try:
        manager.wait_for_services(process)
        assert not manager.transition(Transition.TRANSITION_CONFIGURE)
        assert manager.state() == 'unconfigured'
        level, message, values = manager.latest_diagnostic()
        assert level == 2 and values['state'] == 'unconfigured'
        assert message == (f'unconfigured: configure failed: checkpoint not found: '
                           f'{tmp_path / "absent.pt"}')
        assert 'configure failed: checkpoint not found' in process.stderr_text()
        assert process.alive()
    finally:
        manager.close()
        assert process.stop() == 0, process.stderr_text()
        process.close()


def ros2_cli() -> str:
    for candidate in (Path(sys.executable).parent / 'ros2', shutil.which('ros2')):
        if candidate and os.access(candidate, os.X_OK):
            result = subprocess.run([str(candidate), 'lifecycle', '--help'],
                                    capture_output=True, timeout=120)
            if result.returncode == 0:
                return str(candidate)
    pytest.skip('the ROS 2 CLI with `ros2 lifecycle` is not installed (ros2cli, '
                'ros2lifecycle: `make ros2-extras` or a sourced ROS 2 install)')


def test_ros2_lifecycle_set_and_get(managed):
    ros2 = ros2_cli()
    manager, _ = managed

    def lifecycle(*args) -> str:
        # No daemon (none left behind); spin long enough to discover the node on a busy CPU.
        result = subprocess.run([ros2, 'lifecycle', *args, '--no-daemon', '--spin-time', '5'],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout.strip()
    assert lifecycle('get', '/drive_node') == 'unconfigured [1]'
    assert lifecycle('set', '/drive_node', 'configure') == 'Transitioning successful'
    assert lifecycle('set', '/drive_node', 'activate') == 'Transitioning successful'
    assert lifecycle('get', '/drive_node') == 'active [3]'
    assert np.isfinite(manager.send(jpeg_msg(np.zeros((480, 640, 3), np.uint8), SECOND)))


@pytest.fixture
def managed_in_process(tiny_checkpoint, ros_domain_id):
    from signattn_driver.ros.managed_drive_node import ManagedDriveNode
    context = rclpy.Context()
    rclpy.init(context=context)
    node = ManagedDriveNode(context=context, parameter_overrides=[
        NodeParameter('checkpoint', value=str(tiny_checkpoint)),
        NodeParameter('device', value='cpu')])
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_inactive_node_computes_nothing_it_publishes_and_cleanup_frees_the_network(
        managed_in_process, camera_frames):
    node = managed_in_process
    assert not node.started and node.predictor is None
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.started and not node.active
    published = []
    node.outputs.command.publish = published.append
    msg = jpeg_msg(camera_frames[0], 10 * SECOND)
    assert node.process(msg) is None and not published          # inactive: no command
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    # the next frame (the same stamp again would be a copy of one stepped on: rejected_duplicate)
    assert node.process(jpeg_msg(camera_frames[0], 10 * SECOND + SECOND // 20)) is not None
    assert len(published) == 1
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.process(jpeg_msg(camera_frames[1], 11 * SECOND)) is None
    assert len(published) == 1
    worker = node._worker
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert node.predictor is None and node.outputs is None and not worker.is_alive()
