"""Start the drive node on a camera topic, optionally with rviz2 showing the attention map.

Usage: ros2 launch signattn_driver drive.launch.py [checkpoint:=/path/model.pt] [rviz:=true]
       [lifecycle:=true]

Without `checkpoint` the node loads the shipped demo model (config/models/sim_route.pt,
trained on simulated drives; it takes the navigator's turn command on `route/command`, and
follows the lane without one); pass your own for real cameras. `--show-args` lists the rest.

The launch ends with the node: if drive_node exits with an error (bad checkpoint, bad
parameter) the launch stops with a nonzero status after the node's own message. `rviz:=true`
without rviz2 installed fails before anything is started. `lifecycle:=true` starts it as a
managed node that waits, unconfigured, for `configure` and `activate` from a lifecycle manager
(or `ros2 lifecycle set /drive_node configure`, then `activate`).
"""

from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, OpaqueFunction, RegisterEventHandler,
                            Shutdown)
from launch.conditions import IfCondition, UnlessCondition
from launch.event_handlers import OnProcessExit
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare
from signattn_driver.choices import DEVICE_HELP, PRECISIONS, RELIABILITY_NAMES, TRANSPORTS
from signattn_driver.paths import SHIPPED_MODEL
from signattn_driver.route_command import NODE_ROUTE_COMMAND_TOPIC

PACKAGE = 'signattn_driver'
RVIZ_MISSING = ("rviz:=true, but rviz2 is not installed (no package 'rviz2' on "
                'AMENT_PREFIX_PATH). Install it with `sudo apt install ros-$ROS_DISTRO-rviz2` and '
                'source /opt/ros/$ROS_DISTRO/setup.bash, or launch without rviz:=true and view '
                '/attention from another machine with config/attention.rviz.')


def require_rviz2(context):
    """Fail the launch, before any process starts, when rviz is asked for but missing."""
    if LaunchConfiguration('rviz').perform(context).lower() not in ('true', '1'):
        return []
    from ament_index_python.packages import get_package_prefix, PackageNotFoundError
    try:
        get_package_prefix('rviz2')
    except PackageNotFoundError:
        raise RuntimeError(RVIZ_MISSING) from None
    return []


def end_with_drive_node(context):
    """Stop the whole launch when drive_node ends; nonzero status when it failed."""
    if context.is_shutdown:    # Ctrl-C or another shutdown stopped it: nothing to report
        return []
    status = context.locals.event.returncode
    if status != 0:
        # An exception is how a launch file makes `ros2 launch` return nonzero.
        raise RuntimeError(f'drive_node exited with status {status} (its error is above)')
    return [Shutdown(reason='drive_node exited')]


def generate_launch_description():
    """Declare the arguments, then the drive node (plain or managed) and rviz2 (if asked)."""
    share = FindPackageShare(PACKAGE)
    arguments = [
        DeclareLaunchArgument('checkpoint',
                              default_value=PathJoinSubstitution(
                                  [share, 'config', *SHIPPED_MODEL]),
                              description='checkpoint written by `signattn train` (default: '
                              'the shipped model trained on simulated drives)'),
        DeclareLaunchArgument('camera_topic',
                              default_value='/center_camera/image_color/compressed',
                              description='camera topic; CompressedImage for '
                              'input_transport:=compressed, Image for raw'),
        DeclareLaunchArgument('input_transport', default_value='compressed',
                              choices=list(TRANSPORTS),
                              description='message type on camera_topic'),
        DeclareLaunchArgument('input_reliability', default_value='best_effort',
                              choices=list(RELIABILITY_NAMES),
                              description='QoS reliability of the camera subscription'),
        DeclareLaunchArgument('input_depth', default_value='1',
                              description='QoS history depth of the camera subscription'),
        DeclareLaunchArgument('device', default_value='auto',
                              description=DEVICE_HELP),
        DeclareLaunchArgument('precision', default_value='fp32',
                              choices=list(PRECISIONS),
                              description='fp32 | bf16 | int8 (int8: CPU only)'),
        DeclareLaunchArgument('speed_topic', default_value='',
                              description='geometry_msgs/TwistStamped speed (linear.x) for the '
                              'Ackermann steering angle, e.g. /vehicle/twist (empty: use '
                              'assumed_speed_mps)'),
        DeclareLaunchArgument('assumed_speed_mps', default_value='0.0',
                              description='speed for the Ackermann steering angle while no '
                              'speed_topic message has arrived, m/s'),
        DeclareLaunchArgument('ackermann_topic', default_value='steering/ackermann',
                              description='AckermannDriveStamped output, e.g. /ackermann_cmd'),
        DeclareLaunchArgument('route_command_topic', default_value=NODE_ROUTE_COMMAND_TOPIC,
                              description='std_msgs/UInt8 route command from the navigator '
                              '(0 follow-lane, 1 left, 2 straight, 3 right; reliable, '
                              'transient local); used by checkpoints trained with commands'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='use /clock (e.g. `signattn replay BAG --clock`)'),
        DeclareLaunchArgument('rviz', default_value='false',
                              description='also start rviz2 with the attention view'),
        DeclareLaunchArgument('lifecycle', default_value='false', choices=['true', 'false'],
                              description='run drive_node as a managed (lifecycle) node: it '
                              'loads the checkpoint on configure and steers once activated'),
        DeclareLaunchArgument('view', default_value='false',
                              description='also start the live web viewer (`signattn view`): '
                              'http://127.0.0.1:8080'),
    ]
    camera_topic = LaunchConfiguration('camera_topic')
    use_sim_time = ParameterValue(LaunchConfiguration('use_sim_time'), value_type=bool)
    lifecycle = LaunchConfiguration('lifecycle')
    node_settings = dict(
        package=PACKAGE,
        executable='drive_node',
        name='drive_node',
        output='screen',
        parameters=[
            PathJoinSubstitution([share, 'config', 'drive.yaml']),
            {
                **{name: ParameterValue(LaunchConfiguration(name), value_type=str)
                   for name in ('checkpoint', 'device', 'precision', 'input_transport',
                                'input_reliability', 'speed_topic')},
                'input_depth': ParameterValue(LaunchConfiguration('input_depth'),
                                              value_type=int),
                'assumed_speed_mps': ParameterValue(LaunchConfiguration('assumed_speed_mps'),
                                                    value_type=float),
                'use_sim_time': use_sim_time,
            },
        ],
        remappings=[('image/compressed', camera_topic), ('image', camera_topic),
                    ('steering/ackermann', LaunchConfiguration('ackermann_topic')),
                    (NODE_ROUTE_COMMAND_TOPIC, LaunchConfiguration('route_command_topic'))],
    )
    drive_node = Node(**node_settings, condition=UnlessCondition(lifecycle))
    managed_drive_node = LifecycleNode(**node_settings, namespace='', arguments=['--lifecycle'],
                                       condition=IfCondition(lifecycle))
    rviz = Node(
        package='rviz2',
        executable='rviz2',
        name='rviz2',
        arguments=['-d', PathJoinSubstitution([share, 'config', 'attention.rviz'])],
        parameters=[{'use_sim_time': use_sim_time}],
        condition=IfCondition(LaunchConfiguration('rviz')),
    )
    return LaunchDescription([
        *arguments,
        OpaqueFunction(function=require_rviz2),   # before drive_node starts
        drive_node,
        managed_drive_node,
        *(RegisterEventHandler(OnProcessExit(
            target_action=node, on_exit=[OpaqueFunction(function=end_with_drive_node)]))
          for node in (drive_node, managed_drive_node)),
        rviz,
        Node(package=PACKAGE, executable='viewer_node', name='viewer', output='screen',
             parameters=[{'use_sim_time': use_sim_time}],
             remappings=[('image/compressed', camera_topic)],   # for attention_raw maps
             condition=IfCondition(LaunchConfiguration('view'))),   # docs/viewer.md
    ])
