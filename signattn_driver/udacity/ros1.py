"""ROS 1 side of the Udacity bags: reading with embedded definitions, CameraInfo to ROS 2."""

from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag1 import Reader as Reader1
from rosbags.typesys import get_types_from_msg, get_typestore, Stores

from signattn_driver.data.bag_layout import TYPESTORE
from signattn_driver.udacity.errors import BagStreamError, ConverterError, UnreadableBagError

STEERING_REPORT_TOPIC = '/vehicle/steering_report'
STEERING_FIELDS = ('steering_wheel_angle', 'speed')   # rad (+ = left), m/s


def camera_info_to_ros2(msg):
    """Copy a ROS 1 sensor_msgs/CameraInfo into the ROS 2 typestore's message."""
    T = TYPESTORE.types
    roi = msg.roi
    return T['sensor_msgs/msg/CameraInfo'](
        header=T['std_msgs/msg/Header'](
            stamp=T['builtin_interfaces/msg/Time'](sec=msg.header.stamp.sec,
                                                   nanosec=msg.header.stamp.nanosec),
            frame_id=msg.header.frame_id),
        height=msg.height, width=msg.width, distortion_model=msg.distortion_model,
        d=np.asarray(msg.D, np.float64), k=np.asarray(msg.K, np.float64),
        r=np.asarray(msg.R, np.float64), p=np.asarray(msg.P, np.float64),
        binning_x=msg.binning_x, binning_y=msg.binning_y,
        roi=T['sensor_msgs/msg/RegionOfInterest'](
            x_offset=roi.x_offset, y_offset=roi.y_offset, height=roi.height, width=roi.width,
            do_rectify=roi.do_rectify))


class Ros1Bag:
    """A ROS 1 bag opened with AnyReader (embedded definitions).

    If AnyReader refuses the bag because of one unusable embedded definition (a custom type it
    cannot parse, a wrong md5), the bag is read with the plain rosbag1 reader and only the
    definitions of the topics the converter needs; the others are skipped and listed.
    """

    def __init__(self, path: Path, needed_topics):
        self.path = path
        self.type_problem = None
        try:
            self.reader = AnyReader([path])
            self.reader.open()
            self.connections = self.reader.connections
            self._deserialize = self.reader.deserialize
            return
        except AnyReaderError as err:
            first_error = err
        try:
            self.reader = Reader1(path)
            self.reader.open()
        except Exception as err:  # noqa: BLE001 - any failure here means an unreadable file
            raise UnreadableBagError(
                f'{path}: unreadable ROS 1 bag ({first_error}); nothing was converted from '
                f'it (a truncated download must be fetched again or `rosbag reindex`ed)'
            ) from err
        self.type_problem = str(first_error)
        store = get_typestore(Stores.EMPTY)
        for conn in self.reader.connections:
            if conn.topic in needed_topics:
                try:
                    store.register(get_types_from_msg(conn.msgdef.data, conn.msgtype))
                except Exception as err:  # noqa: BLE001
                    raise ConverterError(f'{path}: cannot use the embedded definition of '
                                         f'{conn.msgtype} on {conn.topic}: {err}') from err
        self.connections = self.reader.connections
        self._deserialize = lambda raw, typ: store.deserialize_ros1(raw, typ)

    def messages(self, connections):
        """Yield (connection, receive_ns, message) in receive order."""
        try:
            for conn, t, raw in self.reader.messages(connections=connections):
                yield conn, t, self._deserialize(raw, conn.msgtype)
        except Exception as err:  # noqa: BLE001 - rosbags raises several types for bad data
            raise BagStreamError(self.path, str(err)) from err

    def close(self):
        """Close the reader."""
        self.reader.close()
