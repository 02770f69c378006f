"""The simulator's lock-step controller through a real drive node (ros/sim_controller.py).

Through the node a drive must steer as in process (issue 20): each frame steps the node's LSTM
once, however often it was resent, and with the route command sent for that frame.
"""

import time

import cv2
import pytest

pytest.importorskip('rclpy', reason='the controller drives a drive node over DDS')

pytestmark = pytest.mark.ros
PERIOD_NS = 50_000_000   # 20 Hz stamps, as the simulator's


@pytest.fixture
def command_checkpoint(tmp_path):
    """Save a tiny route-command checkpoint whose branches steer clearly apart."""
    import torch
    from conftest import tiny_config
    from signattn_driver import checkpoint
    from signattn_driver.model import SteeringNet
    torch.manual_seed(0)
    model = SteeringNet(tiny_config(num_commands=4)).eval()
    with torch.no_grad():
        model.head.weight.copy_(torch.randn_like(model.head.weight))
    return checkpoint.save(tmp_path / 'command.pt', model, vehicle={'name': 'mkz'})


def drive_both(checkpoint, jpegs, commands, copies: int = 1):
    """Steer the frames with the commands through the node and in process; both commands.

    With `copies` > 1 every frame is published that often, 20 ms apart: each copy reaches the
    node after it took the one before, as the resend of a frame answered late does.
    """
    from signattn_driver.ros.sim_controller import RosController
    from signattn_driver.sim.closed_loop import ModelController
    model = ModelController(checkpoint, vehicle='metadrive')
    ros = RosController(checkpoint, vehicle='metadrive', num_threads=1)
    publish = ros._pub.publish

    def publish_copies(msg):
        for copy in range(copies):
            time.sleep(0.02 if copy else 0.0)
            publish(msg)
    ros._pub.publish = publish_copies
    try:
        pairs = []
        for i, (jpeg, command) in enumerate(zip(jpegs, commands)):
            stamp_ns = 10**18 + i * PERIOD_NS
            pairs.append((ros.steer(jpeg, stamp_ns, 8.0, None, route_command=command),
                          model.steer(jpeg, stamp_ns, 8.0, None, route_command=command)))
    finally:
        ros.close()
    return pairs, ros


def test_resent_frames_step_the_node_lstm_once(command_checkpoint, camera_frames, ros_domain_id):
    jpegs = [cv2.imencode('.jpg', f)[1].tobytes() for f in camera_frames] * 3
    pairs, _ = drive_both(command_checkpoint, jpegs, [0] * len(jpegs), copies=2)
    for i, (through_node, in_process) in enumerate(pairs):
        assert through_node == pytest.approx(in_process, abs=1e-4), f'frame {i}'


def test_each_frame_is_steered_with_its_own_route_command(command_checkpoint, camera_frames,
                                                          ros_domain_id):
    jpegs = [cv2.imencode('.jpg', f)[1].tobytes() for f in camera_frames] * 5
    commands = [i % 4 for i in range(len(jpegs))]       # a new command every frame
    pairs, _ = drive_both(command_checkpoint, jpegs, commands)
    for i, (through_node, in_process) in enumerate(pairs):
        assert through_node == pytest.approx(in_process, abs=1e-4), f'frame {i}'
    # the commands matter: the same frames under follow-lane throughout steer otherwise
    follow, _ = drive_both(command_checkpoint, jpegs[:4], [0] * 4)
    assert max(abs(f[1] - p[1]) for f, p in zip(follow[1:], pairs[1:4])) > 1e-3
