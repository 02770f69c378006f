"""The route command on its two topics: recorded as a stamped Joy, heard by the node as UInt8.

Bags record the command with its frame's header stamp as sensor_msgs/Joy `buttons = [command]`
on /vehicle/route_command (data/bag_layout.py); the drive node listens on `route/command`
(std_msgs/UInt8, values in route_command.py). `signattn replay` (ros/replay.py) translates
one into the other with `command_of_recorded`. Pure rosbags, no rclpy.
"""

from signattn_driver.data.bag_layout import ROUTE_COMMAND_TYPE, TYPESTORE
from signattn_driver.route_command import route_command_name


def command_of_buttons(buttons) -> int:
    """Return the command a recorded Joy carries: `buttons[0]`, checked.

    Args:
        buttons: the Joy's buttons, (K,) ints; the layout writes K = 1.

    Raises:
        ValueError: no button, or a value outside route_command.ROUTE_COMMANDS (0..3).
    """
    if len(buttons) == 0:
        raise ValueError('route command Joy without buttons (expected buttons = [command])')
    value = int(buttons[0])
    route_command_name(value)      # ValueError naming the valid commands
    return value


def command_of_recorded(raw: bytes, msgtype: str = ROUTE_COMMAND_TYPE) -> int:
    """Decode one recorded /vehicle/route_command message (CDR) to its command value.

    Raises:
        ValueError: the message does not decode as `msgtype` with buttons, or carries no
            valid command.
    """
    try:
        buttons = TYPESTORE.deserialize_cdr(raw, msgtype).buttons
    except Exception as err:  # rosbags raises several types for damaged or foreign data
        raise ValueError(f'undecodable route command ({msgtype}): {err}') from err
    return command_of_buttons(buttons)
