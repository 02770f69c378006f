"""How a node process starts and ends: rclpy init, parameters, network, spin, one-line errors.

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
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException

from signattn_driver import vehicle as vehicles
from signattn_driver.errors import RosError, SignattnError
from signattn_driver.ros.drive_parameters import PARAMETERS, TYPE_NAMES, validate


class NodeStartupError(RosError):
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


def declare_parameters(node):
    """Declare the drive node's PARAMETERS on `node`; a bad start value: NodeStartupError."""
    try:
        for name, row in PARAMETERS.items():
            node.declare_parameter(name, row.default, row.descriptor())
    except InvalidParameterValueException as err:
        reason = str(err.args[0]).split('Reason: ', 1)[-1].removesuffix(f': {name}')
        raise NodeStartupError(f'parameter {name}: {reason}') from err
    except InvalidParameterTypeException as err:   # e.g. -p attention_every_n:=abc
        given = getattr(node, '_parameter_overrides', {}).get(name)
        got = repr(given.value) if given is not None else 'another type'
        raise NodeStartupError(f'parameter {name}: expected {TYPE_NAMES[row.kind]}, got '
                               f'{got}') from err


def load_predictor(settings: dict):
    """Build the node's Predictor from its parameter values; every failure: NodeStartupError."""
    import torch
    from signattn_driver.predictor import Predictor
    for name in ('checkpoint', 'device', 'precision'):
        reason = validate(name, settings[name])
        if reason:
            raise NodeStartupError(reason)
    if settings['num_threads']:
        torch.set_num_threads(settings['num_threads'])
    try:
        return Predictor(settings['checkpoint'], device=settings['device'],
                         precision=settings['precision'])
    except (SignattnError, ValueError) as err:  # checkpoint, no such device, int8 on GPU
        raise NodeStartupError(str(err).splitlines()[0]) from err


def load_vehicle(name: str):
    """Load the vehicle profile `name`; a failure becomes NodeStartupError.

    Checked when the parameter was set; the file may have changed since.
    """
    try:
        return vehicles.load_vehicle(name)
    except Exception as err:
        raise NodeStartupError(f'vehicle {name!r}: {str(err).splitlines()[0]}') from err


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
    except Exception:
        # Ctrl-C's handler shuts the context down under a running executor; rclpy then fails
        # building its next wait set (RCLError "the given context is not valid"). That is a
        # shutdown, not an error; anything raised while the context is still up is one.
        if rclpy.ok():
            raise
    finally:
        # `ros2 launch` forwards Ctrl-C while the terminal already sent it: a second SIGINT
        # during teardown must not turn a clean exit into a KeyboardInterrupt traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
