"""viewer_node's ROS side without a browser: the drive node's topics in, the hub fed.

A test node publishes what drive_node publishes (command, /diagnostics, the attention overlay
or raw map) plus a camera JPEG and a route; the hub must hold exactly what a page would show.
"""

import math
import threading
import time

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='rclpy not installed')
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402
from geometry_msgs.msg import Vector3Stamped  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import qos_profile_sensor_data, QoSProfile  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import UInt8  # noqa: E402

from fixtures import waiting  # noqa: E402
from signattn_driver.ros.image_conversion import array_to_image_msg  # noqa: E402
from signattn_driver.ros.viewer_node import ViewerNode  # noqa: E402
from signattn_driver.vehicle import load_vehicle  # noqa: E402
from signattn_driver.viewer.config import ViewerConfig  # noqa: E402
from signattn_driver.viewer.hub import StreamHub  # noqa: E402

pytestmark = pytest.mark.ros
STAMP_NS = 1_600_000_000_050_000_000
WAIT_S = 30.0


def set_stamp(header, stamp_ns: int):
    header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 10**9)


def wait_for(condition, what: str):
    return waiting.wait_for(condition, what, WAIT_S)


@pytest.fixture
def graph(ros_domain_id):
    """Spin a ViewerNode (watched, ready) and a publishing test node in one executor."""
    context = rclpy.Context()
    rclpy.init(context=context)
    hub = StreamHub()
    viewer = ViewerNode(hub, ViewerConfig(), context=context)
    viewer.watched = viewer.ready = lambda stream: True
    source = rclpy.create_node('viewer_test_source', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(viewer)
    executor.add_node(source)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    reliable = QoSProfile(depth=10)
    publishers = {
        'command': source.create_publisher(Vector3Stamped, 'steering/command', reliable),
        'diagnostics': source.create_publisher(DiagnosticArray, '/diagnostics', reliable),
        'attention': source.create_publisher(Image, 'attention', reliable),
        'camera': source.create_publisher(CompressedImage, 'image/compressed',
                                          qos_profile_sensor_data),
        'route': source.create_publisher(UInt8, 'route/command', reliable),
    }
    yield hub, viewer, publishers
    executor.shutdown(timeout_sec=2.0)
    thread.join(timeout=5.0)
    viewer.destroy_node()
    source.destroy_node()
    rclpy.try_shutdown(context=context)


def connected(publisher):
    wait_for(lambda: publisher.get_subscription_count() > 0, f'{publisher.topic_name} matched')
    return publisher


def test_command_status_and_route_reach_the_hub(graph):
    hub, _, pubs = graph
    command = Vector3Stamped()
    set_stamp(command.header, STAMP_NS)
    command.vector.x = 0.02
    connected(pubs['command']).publish(command)
    got = wait_for(lambda: hub.commands_since(0), 'the command')[0]
    vehicle = load_vehicle('mkz')
    assert got.stamp_ns == STAMP_NS and got.inverse_radius_per_m == 0.02
    assert got.steering_wheel_deg == pytest.approx(
        math.degrees(0.02 * vehicle.wheelbase_m * vehicle.steering_ratio))

    status = DiagnosticStatus(name='drive_node: steering inference', level=DiagnosticStatus.WARN,
                              message='no frame for 2.1 s', values=[
                                  KeyValue(key='frames_processed', value='40'),
                                  KeyValue(key='latency_p99_ms', value='12.500')])
    other = DiagnosticStatus(name='another_node', level=DiagnosticStatus.ERROR, message='x')
    connected(pubs['diagnostics']).publish(DiagnosticArray(status=[other, status]))
    shown = wait_for(lambda: hub.state('status')[1], 'the status')
    assert (shown['level'], shown['message']) == ('WARN', 'no frame for 2.1 s')
    assert shown['frames_processed'] == 40 and shown['latency_p99_ms'] == 12.5

    connected(pubs['route']).publish(UInt8(data=2))
    assert wait_for(lambda: hub.state('route')[1], 'the route')['name'] == 'go straight'


def test_overlays_become_jpegs_and_raw_maps_travel_with_the_camera_jpeg(graph):
    hub, _, pubs = graph
    overlay = np.zeros((48, 64, 3), np.uint8)
    overlay[:, :32] = (255, 0, 0)                               # blue left half (bgr8)
    msg = array_to_image_msg(overlay, 'bgr8')
    set_stamp(msg.header, STAMP_NS)
    wait_for(lambda: pubs['attention'].get_subscription_count() > 0, 'attention matched')
    pubs['attention'].publish(msg)
    frame = wait_for(lambda: hub.frame('attention')[1], 'the overlay frame')
    picture = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (48, 64, 3) and frame.stamp_ns == STAMP_NS
    assert picture[24, 8, 0] > 200 and picture[24, 56, 0] < 50  # blue stays on the left
    assert frame.attention_map is None

    alpha = np.random.default_rng(0).random((10, 20)).astype(np.float32)
    raw = array_to_image_msg(alpha, '32FC1')
    set_stamp(raw.header, STAMP_NS + 50_000_000)
    pubs['attention'].publish(raw)    # the first raw map: drawn alone, camera subscribed after
    wait_for(lambda: hub.frame('attention')[0] == 2, 'the first raw map')
    camera_jpeg = cv2.imencode('.jpg', np.full((120, 160, 3), 99, np.uint8))[1].tobytes()
    camera = CompressedImage(format='jpeg', data=camera_jpeg)
    set_stamp(camera.header, STAMP_NS + 100_000_000)
    connected(pubs['camera'])
    deadline = time.monotonic() + WAIT_S    # best effort: send until one frame is paired
    while hub.frame('attention')[1].attention_map is None and time.monotonic() < deadline:
        pubs['camera'].publish(camera)
        time.sleep(0.1)
        set_stamp(raw.header, STAMP_NS + 100_000_000)
        pubs['attention'].publish(raw)
        time.sleep(0.1)
    frame = hub.frame('attention')[1]
    assert frame.attention_map is not None, 'no raw map was paired with its camera JPEG'
    assert frame.jpeg == camera_jpeg and (frame.width, frame.height) == (160, 120)
    np.testing.assert_array_equal(frame.attention_map, alpha)
