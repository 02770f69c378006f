"""config/attention.rviz against what the drive node really publishes (rviz2 cannot run here)."""

from pathlib import Path

import pytest
import yaml

from signattn_driver.data.bag_layout import camera_topic

rclpy = pytest.importorskip('rclpy', reason='rclpy not installed')
from rclpy.qos import ReliabilityPolicy  # noqa: E402

pytestmark = pytest.mark.ros
VIEW = Path(__file__).resolve().parents[2] / 'config' / 'attention.rviz'
# rviz2 display class -> the message type it subscribes to
DISPLAY_TYPES = {'rviz_default_plugins/Image': 'sensor_msgs/msg/Image'}
RELIABILITY = {'Reliable': ReliabilityPolicy.RELIABLE,
               'Best Effort': ReliabilityPolicy.BEST_EFFORT}


@pytest.fixture
def published(tiny_checkpoint, ros_domain_id):
    """Topic -> (types, reliabilities) of what a running DriveNode publishes."""
    from rclpy.parameter import Parameter
    from signattn_driver.ros.drive_node import DriveNode
    context = rclpy.Context()
    rclpy.init(context=context)
    node = DriveNode(context=context, parameter_overrides=[
        Parameter('checkpoint', value=str(tiny_checkpoint)), Parameter('device', value='cpu')])
    try:
        yield {topic: (types, {info.qos_profile.reliability
                               for info in node.get_publishers_info_by_topic(topic)})
               for topic, types in node.get_publisher_names_and_types_by_node(
                   node.get_name(), node.get_namespace())}
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_every_display_shows_a_topic_the_node_publishes_or_its_camera(published):
    with open(VIEW) as f:
        displays = yaml.safe_load(f)['Visualization Manager']['Displays']
    assert {d['Class'] for d in displays} <= set(DISPLAY_TYPES), 'a display type to check'
    shown = {}
    for display in displays:
        topic = display['Topic']['Value']
        wanted = RELIABILITY[display['Topic']['Reliability Policy']]
        shown[display['Name']] = topic
        if topic == camera_topic('center'):
            # The launch file's default camera_topic, which the node subscribes as
            # CompressedImage; rviz2 reads `<base>/compressed` through image_transport.
            assert topic.endswith('/compressed') and wanted == ReliabilityPolicy.BEST_EFFORT
            continue
        assert topic in published, f'{display["Name"]}: nothing publishes {topic}'
        types, reliabilities = published[topic]
        assert types == [DISPLAY_TYPES[display['Class']]]
        # A Reliable subscriber matches only reliable publishers.
        assert wanted == ReliabilityPolicy.BEST_EFFORT or reliabilities == {wanted}
    assert shown == {'Attention': '/attention', 'Contribution': '/attention/contribution',
                     'Camera': camera_topic('center')}
    names = [d['Name'] for d in displays]
    assert names.index('Contribution') == names.index('Attention') + 1   # side by side
