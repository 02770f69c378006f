"""drive_node as a child process: the one place that builds its command line, starts and stops it.

Used by live evaluation (and so the demo), the simulator's ROS controller, the node benchmark
and the tests. The child's environment is `node_environment()`: this process's, so both talk
DDS the same way (ROS_DOMAIN_ID, discovery range, transports); this module never changes its
own (a command line does, with `use_loopback_dds`). stderr (where ROS logs) goes to a file
whose tail explains a node that died.
"""

import os
from pathlib import Path
import signal
import subprocess
import sys
import tempfile

from signattn_driver.errors import RosError

NODE_MODULE = 'signattn_driver.ros.drive_node'
# Fast DDS's TCP + shared-memory transport: a 640x480 raw frame (900 KiB) over the default UDP
# transport arrives rarely or never (docs/node.md).
DDS_TRANSPORTS = 'LARGE_DATA'


class NodeProcessError(RosError):
    """The node process exited while it was needed (message: exit code and its last lines)."""


class NothingHeardError(RosError):
    """A DDS exchange in which nothing arrived (message: `nothing_heard_hint`)."""


def nothing_heard_hint(environ=None) -> str:
    """Return the likely causes of hearing nothing over DDS, with this process's settings.

    Every command that talks over DDS ends its "nothing arrived" error with this sentence.
    """
    env = os.environ if environ is None else environ
    domain = env.get('ROS_DOMAIN_ID') or '0 (unset)'
    scope = env.get('ROS_AUTOMATIC_DISCOVERY_RANGE') or 'unset, i.e. SUBNET, which needs multicast'
    return ('is the other side running, and does it use the same ROS_DOMAIN_ID (here '
            f'{domain}) and a ROS_AUTOMATIC_DISCOVERY_RANGE that reaches this process (here '
            f'{scope}; LOCALHOST keeps discovery on this machine)?')


def node_environment(base=None) -> dict:
    """Return the environment of a child that talks DDS with this process (e.g. drive_node).

    A copy of `base` (default: this process's environment), so the child uses the same
    ROS_DOMAIN_ID, discovery range and transports, with `DDS_TRANSPORTS` unless one is chosen,
    and without a PYTHONUTF8 value Python refuses at start-up (Panda3D sets 'on').
    """
    env = dict(os.environ if base is None else base)
    env.setdefault('FASTDDS_BUILTIN_TRANSPORTS', DDS_TRANSPORTS)
    if env.get('PYTHONUTF8') not in (None, '0', '1'):
        env.pop('PYTHONUTF8')
    return env


def use_loopback_dds(environ, default_domain_id: str):
    """Keep DDS in `environ` on this machine, in `default_domain_id` unless a domain is set.

    For commands that start their own DDS graph (benchmarks): call it on os.environ before
    rclpy starts, so this process and its children discover each other over loopback, also on
    machines without multicast.
    """
    environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    environ.setdefault('ROS_DOMAIN_ID', str(default_domain_id))
    environ.setdefault('FASTDDS_BUILTIN_TRANSPORTS', DDS_TRANSPORTS)


def _ros_value(value) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def node_command(parameters: dict | None = None, remaps: dict | None = None,
                 extra_ros_args=(), module: str = NODE_MODULE) -> list:
    """Build `python -m signattn_driver.ros.drive_node --ros-args -r a:=b ... -p k:=v ...`.

    Args:
        parameters: node parameters (bools become true/false).
        remaps: name -> new name, e.g. {'image/compressed': '/cam', '__node': 'drive'}.
        extra_ros_args: further --ros-args arguments, as given.
        module: the module to run (a stand-in node of the same interface).
    """
    cmd = [sys.executable, '-m', module, '--ros-args']
    for name, target in (remaps or {}).items():
        cmd += ['-r', f'{name}:={target}']
    for name, value in (parameters or {}).items():
        cmd += ['-p', f'{name}:={_ros_value(value)}']
    return cmd + list(extra_ros_args)


class NodeProcess:
    """A running drive_node; `stop()` ends it with SIGINT (then SIGKILL) and returns its code.

    Args:
        parameters, remaps, extra_ros_args: see `node_command`.
        env: the child's environment (default: `node_environment()`).
        log_path: file for the node's stderr (default: a temporary file).
        command: a full command line instead of `node_command(...)`.
    """

    def __init__(self, parameters: dict | None = None, remaps: dict | None = None,
                 env: dict | None = None, log_path=None, extra_ros_args=(), command=None):
        self.command = list(command) if command else node_command(parameters, remaps,
                                                                  extra_ros_args)
        self._tmp = None
        if log_path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix='drive_node_')
            log_path = Path(self._tmp.name) / 'stderr.log'
        self.log_path = Path(log_path)
        with open(self.log_path, 'w') as log:
            self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=log,
                                            env=node_environment() if env is None else env)

    @property
    def pid(self) -> int:
        """Return the child's process id."""
        return self.process.pid

    @property
    def returncode(self):
        """Return the exit code, None while running."""
        return self.process.poll()

    def alive(self) -> bool:
        """Whether the node still runs."""
        return self.process.poll() is None

    def stderr_text(self) -> str:
        """Return everything the node wrote to stderr so far."""
        try:
            return self.log_path.read_text(errors='replace')
        except OSError:
            return ''

    def stderr_tail(self, lines: int = 3) -> str:
        """Return the last non-empty stderr lines, joined with ' | '."""
        text = [line for line in self.stderr_text().splitlines() if line.strip()]
        return ' | '.join(text[-lines:])

    def check_alive(self):
        """Raise NodeProcessError with the exit code and stderr tail if the node has exited."""
        if not self.alive():
            raise NodeProcessError(f'drive_node exited ({self.process.returncode}): '
                                   f'{self.stderr_tail() or "no output"}')

    def wait(self, timeout_s: float | None = None) -> int:
        """Wait for the node to exit by itself; return its exit code."""
        return self.process.wait(timeout=timeout_s)

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGINT (a clean rclpy shutdown), SIGKILL after `timeout_s`; return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def close(self):
        """Stop the node and remove the temporary log."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self):
        """Return the running node."""
        return self

    def __exit__(self, *exc):
        """Stop the node."""
        self.close()
