"""A recorded route command (Joy in a bag) read back as the value the drive node hears."""

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from signattn_driver.data.bag_layout import (DriveBagWriter, ROUTE_COMMAND_TOPIC,
                                             ROUTE_COMMAND_TYPE, TYPESTORE)
from signattn_driver.data.route_command_topics import command_of_buttons, command_of_recorded
from signattn_driver.route_command import FOLLOW_LANE, LEFT, RIGHT, STRAIGHT


def test_buttons_give_the_command_and_refuse_what_the_node_would_refuse():
    assert command_of_buttons(np.array([RIGHT], np.int32)) == RIGHT
    assert command_of_buttons([LEFT, 7]) == LEFT             # only the first button counts
    for bad in ([4], [-1], [255]):
        with pytest.raises(ValueError, match='route command must be 0..3'):
            command_of_buttons(bad)
    with pytest.raises(ValueError, match='without buttons'):
        command_of_buttons(np.zeros(0, np.int32))


def test_commands_written_by_the_bag_writer_decode_to_their_values(tmp_path):
    commands = [FOLLOW_LANE, LEFT, STRAIGHT, RIGHT, LEFT]
    with DriveBagWriter(tmp_path / 'bag') as bag:
        for i, command in enumerate(commands):
            bag.write_route_command(10**9 + i * 50_000_000, command)
    with Reader(tmp_path / 'bag') as reader:
        conns = [c for c in reader.connections if c.topic == ROUTE_COMMAND_TOPIC]
        decoded = [command_of_recorded(raw, conn.msgtype)
                   for conn, _, raw in reader.messages(connections=conns)]
    assert decoded == commands


def test_damaged_or_foreign_messages_are_a_value_error():
    joy = TYPESTORE.types[ROUTE_COMMAND_TYPE](
        header=TYPESTORE.types['std_msgs/msg/Header'](
            stamp=TYPESTORE.types['builtin_interfaces/msg/Time'](sec=1, nanosec=0),
            frame_id='base_link'),
        axes=np.zeros(0, np.float32), buttons=np.array([9], np.int32))
    raw = bytes(TYPESTORE.serialize_cdr(joy, ROUTE_COMMAND_TYPE))
    with pytest.raises(ValueError, match='got 9'):
        command_of_recorded(raw)
    with pytest.raises(ValueError, match='undecodable'):
        command_of_recorded(raw[:10])
    with pytest.raises(ValueError, match='undecodable'):
        command_of_recorded(raw, 'std_msgs/msg/Header')        # a message without buttons
