"""Start the drive node on a camera topic, optionally with rviz2 showing the attention map.

Usage: ros2 launch signattn_driver drive.launch.py [checkpoint:=/path/model.pt] [rviz:=true]

Without `checkpoint` the node loads the shipped demo model (config/models/sim_sign_small.pt,
trained on simulated drives); pass your own for real cameras.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'signattn_driver'


def generate_launch_description():
    """Declare the arguments, then the drive node and (behind `rviz`) rviz2."""
    share = FindPackageShare(PACKAGE)
    arguments = [
        DeclareLaunchArgument('checkpoint',
                              default_value=PathJoinSubstitution(
                                  [share, 'config', 'models', 'sim_sign_small.pt']),
                              description='checkpoint written by `signattn train` (default: '
                              'the shipped model trained on simulated drives)'),
        DeclareLaunchArgument('camera_topic',
                              default_value='/center_camera/image_color/compressed',
                              description='camera topic; CompressedImage for '
                              'input_transport:=compressed, Image for raw'),
        DeclareLaunchArgument('input_transport', default_value='compressed',
                              choices=['compressed', 'raw'],
                              description='message type on camera_topic'),
        DeclareLaunchArgument('device', default_value='auto',
                              description='auto | cpu | cuda | cuda:N'),
        DeclareLaunchArgument('precision', default_value='fp32',
                              choices=['fp32', 'bf16', 'int8'],
                              description='fp32 | bf16 | int8 (int8: CPU only)'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='use /clock (e.g. `signattn replay BAG --clock`)'),
        DeclareLaunchArgument('rviz', default_value='false',
                              description='also start rviz2 with the attention view'),
    ]
    camera_topic = LaunchConfiguration('camera_topic')
    drive_node = Node(
        package=PACKAGE,
        executable='drive_node',
        name='drive_node',
        output='screen',
        parameters=[
            PathJoinSubstitution([share, 'config', 'drive.yaml']),
            {
                'checkpoint': LaunchConfiguration('checkpoint'),
                'device': LaunchConfiguration('device'),
                'precision': LaunchConfiguration('precision'),
                'input_transport': LaunchConfiguration('input_transport'),
                'use_sim_time': ParameterValue(LaunchConfiguration('use_sim_time'),
                                               value_type=bool),
            },
        ],
        remappings=[('image/compressed', camera_topic), ('image', camera_topic)],
    )
    rviz = Node(
        package='rviz2',
        executable='rviz2',
        name='rviz2',
        arguments=['-d', PathJoinSubstitution([share, 'config', 'attention.rviz'])],
        parameters=[{'use_sim_time': ParameterValue(LaunchConfiguration('use_sim_time'),
                                                    value_type=bool)}],
        condition=IfCondition(LaunchConfiguration('rviz')),
    )
    return LaunchDescription([*arguments, drive_node, rviz])
