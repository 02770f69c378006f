"""launch_testing: the installed drive.launch.py starts drive_node, and it steers from a frame.

Runs under launch_testing: `launch_test test/ros/test_drive_launch_testing.py`, or pytest with
launch_testing's pytest plugin active (`colcon test` on a ROS 2 install). Without launch_testing,
or when its plugin is not loaded (`-p no:launch_testing`, or pytest >= 9.1 where the plugin of
launch_testing 3.7.1 cannot load), it skips, saying why; test_drive_launch.py then covers the
launch file with `ros2 launch` itself.
"""

import os
import time
import unittest

import pytest

os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
pytest.importorskip(
    'launch_testing', reason='launch_testing is not installed (apt ros-<distro>-launch-testing-'
    'ros, or ros2-extras/install.sh --with-launch-testing); test_drive_launch.py covers the '
    'launch file with ros2 launch')

import cv2  # noqa: E402
from geometry_msgs.msg import Vector3Stamped  # noqa: E402
import launch  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CompressedImage  # noqa: E402

from signattn_driver.paths import share_dir  # noqa: E402


@pytest.fixture(autouse=True)
def _launch_testing_runs_this_file(request):
    """Under plain pytest the classes below would run without the launch: skip them."""
    if not request.config.pluginmanager.hasplugin('launch_testing'):
        pytest.skip("launch_testing's pytest plugin is not active (-p no:launch_testing, or "
                    'pytest >= 9.1); run `launch_test test/ros/test_drive_launch_testing.py`')


@pytest.mark.launch_test
def generate_test_description():
    """Include the package's launch file with its defaults (shipped checkpoint, CPU)."""
    launch_file = str(share_dir() / 'launch' / 'drive.launch.py')
    return launch.LaunchDescription([
        IncludeLaunchDescription(PythonLaunchDescriptionSource(launch_file),
                                 launch_arguments={'device': 'cpu'}.items()),
        launch_testing.actions.ReadyToTest(),
    ])


class TestDriveNodeSteers(unittest.TestCase):
    """A camera frame on the default topic is answered on steering/command."""

    @classmethod
    def setUpClass(cls):
        rclpy.init()

    @classmethod
    def tearDownClass(cls):
        rclpy.shutdown()

    def test_frame_is_answered_with_its_stamp(self):
        node = rclpy.create_node('signattn_launch_test_probe')
        try:
            answers = []
            node.create_subscription(Vector3Stamped, '/steering/command', answers.append, 10)
            camera = node.create_publisher(CompressedImage,
                                           '/center_camera/image_color/compressed',
                                           qos_profile_sensor_data)
            frame = CompressedImage(format='jpeg')
            frame.header.frame_id = 'center_camera'
            frame.data = cv2.imencode('.jpg', np.full((480, 640, 3), 90, np.uint8))[1].tobytes()
            sent = []
            deadline = time.monotonic() + 60.0
            while not answers and time.monotonic() < deadline:
                frame.header.stamp = node.get_clock().now().to_msg()
                sent.append((frame.header.stamp.sec, frame.header.stamp.nanosec))
                camera.publish(frame)
                rclpy.spin_once(node, timeout_sec=0.2)
            self.assertTrue(answers, 'no steering/command within 60 s')
            for answer in answers:   # each command carries the header of a frame that was sent
                self.assertIn((answer.header.stamp.sec, answer.header.stamp.nanosec), sent)
                self.assertEqual(answer.header.frame_id, 'center_camera')
                self.assertTrue(np.isfinite(answer.vector.x))
        finally:
            node.destroy_node()


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    """The node exits cleanly when launch stops it."""

    def test_exit_codes(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -2, -15])
