"""Topics and message types of the ROS 2 bags this package writes (converter and simulator).

Pure rosbags (no rclpy): messages are built with the ROS 2 Kilted typestore and serialized to
CDR. Ground truth uses common_interfaces types and carries the source header stamps:

| topic                                 | type                        | content                 |
|---------------------------------------|-----------------------------|-------------------------|
| /center_camera/image_color/compressed | sensor_msgs/CompressedImage | JPEG, as recorded       |
| /left_camera/..., /right_camera/...   | sensor_msgs/CompressedImage | optional cameras        |
| /center_camera/camera_info            | sensor_msgs/CameraInfo      | copied when present     |
| /vehicle/steering_wheel_angle         | sensor_msgs/JointState      | name ['steering_wheel'],|
|                                       |                             | position [theta, rad]   |
| /vehicle/twist                        | geometry_msgs/TwistStamped  | linear.x = v (m/s),     |
|                                       |                             | angular.z = u v (rad/s) |
| /vehicle/inverse_turning_radius       | geometry_msgs/Vector3Stamped| vector.x = u (1/m)      |
| /vehicle/route_command                | sensor_msgs/Joy             | buttons [command]       |

Signs follow REP-103 (+ = left). u is eq. 3 of the smoothed (eq. 2) angle and speed.

The route command (route_command.py: 0 follow-lane, 1 left, 2 straight, 3 right) is recorded
per frame where a navigator gave one (simulated drives); bags without the topic, e.g. converted
Udacity drives, read as follow-lane. The drive node's live input `route/command` is
std_msgs/UInt8, which has no header; in bags the command must carry its frame's header stamp,
so it is a sensor_msgs/Joy (the common_interfaces message for a stamped discrete operator
input) with `buttons = [command]` and no axes.
The drive node's own output `steering/command` uses the same Vector3Stamped convention, so
ground truth and prediction compare field by field.
"""

from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_typestore, Stores

from signattn_driver.data.labels import LabelTrack, stamp_ns_of
from signattn_driver.route_command import FOLLOW_LANE, route_command_name

CAMERAS = ('center', 'left', 'right')
STEERING_TOPIC = '/vehicle/steering_wheel_angle'
TWIST_TOPIC = '/vehicle/twist'
INVERSE_RADIUS_TOPIC = '/vehicle/inverse_turning_radius'
ROUTE_COMMAND_TOPIC = '/vehicle/route_command'
ROUTE_COMMAND_TYPE = 'sensor_msgs/msg/Joy'
STEERING_JOINT = 'steering_wheel'
STORAGES = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}

TYPESTORE = get_typestore(Stores.ROS2_KILTED)
_T = TYPESTORE.types


def camera_topic(camera: str = 'center') -> str:
    """Return the compressed image topic of a Udacity camera ('center', 'left', 'right')."""
    return f'/{camera}_camera/image_color/compressed'


def camera_info_topic(camera: str = 'center') -> str:
    """Return the CameraInfo topic of a Udacity camera."""
    return f'/{camera}_camera/camera_info'


def _header(stamp_ns: int, frame_id: str):
    t = _T['builtin_interfaces/msg/Time'](sec=int(stamp_ns // 1_000_000_000),
                                          nanosec=int(stamp_ns % 1_000_000_000))
    return _T['std_msgs/msg/Header'](stamp=t, frame_id=frame_id)


def compressed_image(stamp_ns: int, frame_id: str, data: bytes, fmt: str = 'jpeg'):
    """Build a sensor_msgs/CompressedImage message."""
    return _T['sensor_msgs/msg/CompressedImage'](
        header=_header(stamp_ns, frame_id), format=fmt,
        data=np.frombuffer(data, dtype=np.uint8))


class DriveBagWriter:
    """Writes one drive's ROS 2 bag in the layout above.

    Example:
        with DriveBagWriter(path) as bag:
            bag.write_image(stamp_ns, jpeg_bytes)
            bag.write_ground_truth(stamp_ns, theta_rad, v_mps, u_per_m)
    """

    def __init__(self, path, storage: str = 'mcap', cameras=('center',),
                 with_camera_info: bool = False):
        if storage not in STORAGES:
            raise ValueError(f'storage must be one of {sorted(STORAGES)}, got {storage!r}')
        self.path = Path(path)
        self._writer = Writer(self.path, version=9, storage_plugin=STORAGES[storage])
        self._cameras = tuple(cameras)
        self._with_info = with_camera_info
        self._conns = {}
        self.counts = {}

    def __enter__(self):
        """Open the bag and register its topics."""
        w = self._writer
        w.open()
        for cam in self._cameras:
            self._conns[camera_topic(cam)] = w.add_connection(
                camera_topic(cam), 'sensor_msgs/msg/CompressedImage', typestore=TYPESTORE)
            if self._with_info:
                self._conns[camera_info_topic(cam)] = w.add_connection(
                    camera_info_topic(cam), 'sensor_msgs/msg/CameraInfo', typestore=TYPESTORE)
        for topic, msgtype in ((STEERING_TOPIC, 'sensor_msgs/msg/JointState'),
                               (TWIST_TOPIC, 'geometry_msgs/msg/TwistStamped'),
                               (INVERSE_RADIUS_TOPIC, 'geometry_msgs/msg/Vector3Stamped')):
            self._conns[topic] = w.add_connection(topic, msgtype, typestore=TYPESTORE)
        return self

    def __exit__(self, *exc):
        """Close the bag (writes its metadata.yaml)."""
        self._writer.close()

    def write(self, topic: str, stamp_ns: int, msg):
        """Serialize `msg` (a TYPESTORE message) on `topic`, received at `stamp_ns`."""
        conn = self._conns[topic]
        self._writer.write(conn, int(stamp_ns),
                           TYPESTORE.serialize_cdr(msg, conn.msgtype))
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def write_image(self, stamp_ns: int, data: bytes, camera: str = 'center',
                    fmt: str = 'jpeg'):
        """Write a compressed camera frame with header stamp `stamp_ns`."""
        msg = compressed_image(stamp_ns, f'{camera}_camera', data, fmt)
        self.write(camera_topic(camera), stamp_ns, msg)

    def write_camera_info(self, stamp_ns: int, msg, camera: str = 'center'):
        """Write a CameraInfo message (already a TYPESTORE message)."""
        self.write(camera_info_topic(camera), stamp_ns, msg)

    def write_ground_truth(self, stamp_ns: int, steering_wheel_rad: float, speed_mps: float,
                           inverse_radius_per_m: float, frame_id: str = 'base_link'):
        """Write the three ground-truth messages, all stamped `stamp_ns`."""
        header = _header(stamp_ns, frame_id)
        joint = _T['sensor_msgs/msg/JointState'](
            header=header, name=[STEERING_JOINT],
            position=np.array([steering_wheel_rad], np.float64),
            velocity=np.zeros(0, np.float64), effort=np.zeros(0, np.float64))
        vec3 = _T['geometry_msgs/msg/Vector3']
        twist = _T['geometry_msgs/msg/TwistStamped'](
            header=header, twist=_T['geometry_msgs/msg/Twist'](
                linear=vec3(x=float(speed_mps), y=0.0, z=0.0),
                angular=vec3(x=0.0, y=0.0, z=float(inverse_radius_per_m * speed_mps))))
        u = _T['geometry_msgs/msg/Vector3Stamped'](
            header=header, vector=vec3(x=float(inverse_radius_per_m), y=0.0, z=0.0))
        self.write(STEERING_TOPIC, stamp_ns, joint)
        self.write(TWIST_TOPIC, stamp_ns, twist)
        self.write(INVERSE_RADIUS_TOPIC, stamp_ns, u)

    def write_route_command(self, stamp_ns: int, command: int, frame_id: str = 'base_link'):
        """Write the route command (route_command.py) in force at the frame `stamp_ns`.

        The topic is registered on the first call, so bags without a navigator lack it.
        """
        route_command_name(command)     # ValueError for values outside the command set
        if ROUTE_COMMAND_TOPIC not in self._conns:
            self._conns[ROUTE_COMMAND_TOPIC] = self._writer.add_connection(
                ROUTE_COMMAND_TOPIC, ROUTE_COMMAND_TYPE, typestore=TYPESTORE)
        msg = _T[ROUTE_COMMAND_TYPE](header=_header(stamp_ns, frame_id),
                                     axes=np.zeros(0, np.float32),
                                     buttons=np.array([int(command)], np.int32))
        self.write(ROUTE_COMMAND_TOPIC, stamp_ns, msg)


def read_ground_truth(path) -> dict:
    """Read a bag's ground truth (the layout above) into arrays sorted by header stamp.

    Returns:
        {'stamp_ns': (N,) int64 stamps of /vehicle/inverse_turning_radius,
         'inverse_radius_per_m': (N,), 'steering_wheel_rad': (N,), 'speed_mps': (N,)}; angle
        and speed are interpolated to the u stamps (data.labels.LabelTrack; NaN where the bag
        lacks that topic or outside its stamps), and 'route_command': (N,) uint8, the command
        in force at each stamp (`route_commands_at`; FOLLOW_LANE without the topic).
        Empty arrays when the bag has no ground truth.
    """
    from rosbags.rosbag2 import Reader
    series = {STEERING_TOPIC: {}, TWIST_TOPIC: {}, INVERSE_RADIUS_TOPIC: {}}
    with Reader(Path(path)) as reader:
        conns = [c for c in reader.connections if c.topic in series]
        for conn, _, raw in reader.messages(connections=conns) if conns else ():
            msg = TYPESTORE.deserialize_cdr(raw, conn.msgtype)
            if conn.topic == STEERING_TOPIC:
                value = float(msg.position[list(msg.name).index(STEERING_JOINT)])
            elif conn.topic == TWIST_TOPIC:
                value = float(msg.twist.linear.x)
            else:
                value = float(msg.vector.x)
            series[conn.topic][stamp_ns_of(msg.header)] = value
    stamps = np.array(sorted(series[INVERSE_RADIUS_TOPIC]), np.int64)

    def at_stamps(topic):
        known = series[topic]
        if not known:
            return np.full(len(stamps), np.nan)
        t = np.array(sorted(known), np.int64)
        return LabelTrack(t, [known[s] for s in t]).at_stamps(stamps)[0][:, 0]

    return {'stamp_ns': stamps,
            'inverse_radius_per_m': np.array([series[INVERSE_RADIUS_TOPIC][s] for s in stamps]),
            'steering_wheel_rad': at_stamps(STEERING_TOPIC),
            'speed_mps': at_stamps(TWIST_TOPIC),
            'route_command': route_commands_at(*read_route_commands(path), stamps)}


def read_route_commands(path) -> tuple:
    """Read a bag's route commands: ((N,) int64 header stamps, (N,) uint8 commands), sorted.

    Both are empty when the bag has no /vehicle/route_command topic.
    """
    from rosbags.rosbag2 import Reader
    known = {}
    with Reader(Path(path)) as reader:
        conns = [c for c in reader.connections if c.topic == ROUTE_COMMAND_TOPIC]
        # rosbags reads every topic when given no connections
        for conn, _, raw in reader.messages(connections=conns) if conns else ():
            msg = TYPESTORE.deserialize_cdr(raw, conn.msgtype)
            known[stamp_ns_of(msg.header)] = int(msg.buttons[0])
    stamps = np.array(sorted(known), np.int64)
    return stamps, np.array([known[s] for s in stamps], np.uint8)


def route_commands_at(stamps_ns: np.ndarray, commands: np.ndarray,
                      query_ns: np.ndarray) -> np.ndarray:
    """Return the command in force at each query stamp: the latest at or before it.

    A zero-order hold, as a navigator's command stays in force until the next one.

    Args:
        stamps_ns: (N,) sorted int64 stamps of the commands.
        commands: (N,) their values.
        query_ns: (M,) int64 stamps to look up.

    Returns:
        (M,) uint8; FOLLOW_LANE before the first command or when there is none.
    """
    query_ns = np.asarray(query_ns, np.int64)
    i = np.searchsorted(np.asarray(stamps_ns, np.int64), query_ns, side='right') - 1
    held = np.asarray(commands, np.uint8)[np.clip(i, 0, None)] if len(commands) else \
        np.zeros(len(query_ns), np.uint8)
    return np.where(i >= 0, held, FOLLOW_LANE).astype(np.uint8)


def iter_camera_frames(path, camera: str = 'center'):
    """Yield (header stamp_ns, compressed bytes) of a camera topic in bag order."""
    from rosbags.rosbag2 import Reader
    topic = camera_topic(camera)
    with Reader(Path(path)) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        for conn, _, raw in reader.messages(connections=conns) if conns else ():
            msg = TYPESTORE.deserialize_cdr(raw, conn.msgtype)
            yield stamp_ns_of(msg.header), msg.data.tobytes()
