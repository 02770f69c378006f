"""How a node process starts and ends: rclpy init, spin, a one-line error for a bad start.

`run_node(make_node)` is the whole `main()` of the drive node: a configuration the node cannot
start with (`NodeStartupError`: checkpoint, device, parameters, malformed `--ros-args`) ends the
process with one `drive_node: error: ...` line on stderr and status 1, no traceback; Ctrl-C and
an external shutdown end it with status 0.
"""

import os
import signal
import sys
import tempfile

import rclpy
from rclpy.executors import ExternalShutdownException


class NodeStartupError(RuntimeError):
    """A configuration the node cannot start with (checkpoint, device, parameters)."""


def init_rclpy(args):
    """rclpy.init, with a malformed `--ros-args` turned into one NodeStartupError.

    rcl logs its own parse error to stderr before raising: that output is held back and shown
    only when the start succeeds, so a bad argument gives the one `drive_node: error:` line.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            rclpy.init(args=args)
        except Exception as err:   # rclpy raises its C extension's RCLError
            text = str(err).split(', at ', 1)[0].replace('. Error: error not set', '')
            text = text.removeprefix('failed to initialize rcl: ')
            raise NodeStartupError(f'invalid ROS arguments: {text} (a parameter needs a '
                                   f'value: -p name:=value)') from err
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            output = held.read()
        sys.stderr.buffer.write(output)
        sys.stderr.flush()


def run_node(make_node, args=None, name: str = 'drive_node') -> int:
    """Init rclpy, build the node with `make_node()`, spin until shut down; return the status.

    Args:
        make_node: callable returning the node; it raises NodeStartupError on a bad start.
        args: command line for rclpy (None: sys.argv).
        name: the program name in the error line.
    """
    try:
        init_rclpy(args)
    except NodeStartupError as err:
        print(f'{name}: error: {err}', file=sys.stderr)
        return 1
    node = None
    try:
        node = make_node()
        rclpy.spin(node)
    except NodeStartupError as err:
        print(f'{name}: error: {err}', file=sys.stderr)
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # `ros2 launch` forwards Ctrl-C while the terminal already sent it: a second SIGINT
        # during teardown must not turn a clean exit into a KeyboardInterrupt traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
