"""The route command the drive node steers with: the last one received, while it is fresh.

A navigator publishes `route/command` (std_msgs/UInt8, values in signattn_driver/
route_command.py). The node steers with the last valid value for `timeout_s` after its arrival;
no command, an expired one or an invalid one means follow-lane, and /diagnostics says which.
No rclpy import: test/ros/test_route_input.py drives it with a fake clock.
"""

from dataclasses import dataclass

from signattn_driver.route_command import (FOLLOW_LANE, route_command_name,
                                           trained_roundabout_scheme)


@dataclass(frozen=True)
class RouteState:
    """The command in effect and why: `source` is 'topic', 'none', 'expired' or 'ignored'."""

    command: int
    source: str
    age_s: float | None = None   # since the command arrived (None: none arrived)

    def describe(self) -> str:
        """One line for /diagnostics, e.g. 'left (topic, 0.4 s old)'."""
        name = route_command_name(self.command)
        if self.source == 'topic':
            return f'{name} (topic, {self.age_s:.1f} s old)'
        if self.source == 'expired':
            return f'{name} (the last command is {self.age_s:.1f} s old: expired)'
        if self.source == 'ignored':
            return f'{name} (the checkpoint takes no route command)'
        return f'{name} (no command received)'


def expected_commands(num_commands: int, metadata: dict) -> str:
    """Say what a checkpoint expects on `route/command`, for the node's startup line.

    Args:
        num_commands: ModelConfig.num_commands (0: camera only).
        metadata: the checkpoint's metadata; `route_commands` records how its training sets
            told roundabouts (training/data.py), absent in checkpoints trained before.
    """
    if not num_commands:
        return 'route/command ignored (camera-only checkpoint)'
    scheme = trained_roundabout_scheme(metadata)
    told = f'roundabouts told {scheme}' if scheme else 'roundabout scheme not recorded'
    return f'route/command used ({told}; docs/simulation.md)'


class RouteInput:
    """Hold the newest route command and judge its freshness.

    Args:
        timeout_s: how long a command holds after it arrived, s (> 0).
        used: False for a checkpoint without commands: every state is follow-lane, 'ignored'.
    """

    def __init__(self, timeout_s: float, used: bool = True):
        self.timeout_s = timeout_s
        self.used = used
        self.invalid = 0   # messages refused (values outside route_command.ROUTE_COMMANDS)
        self._last = None  # (command, arrival s)
        self._ignored_said = False

    def receive(self, value: int, now_s: float) -> str | None:
        """Take a message's value at monotonic time `now_s`; return a note to log, or None.

        An invalid value is counted and forgets the previous command (follow-lane): steering
        on with an old turn after the navigator sent garbage would be a guess. A checkpoint
        without commands says once that it ignores them.
        """
        try:
            route_command_name(value)
        except ValueError as err:
            self.invalid += 1
            self._last = None
            return f'route/command refused (follow-lane until a valid one): {err}'
        self._last = (int(value), now_s)
        if not self.used and not self._ignored_said:
            self._ignored_said = True
            return ('route/command ignored: the checkpoint takes no route command '
                    '(ModelConfig.num_commands 0); steering follows the lane (said once)')
        return None

    def state(self, now_s: float) -> RouteState:
        """Return the command to steer with at monotonic time `now_s`."""
        if not self.used:
            return RouteState(FOLLOW_LANE, 'ignored')
        if self._last is None:
            return RouteState(FOLLOW_LANE, 'none')
        command, arrived_s = self._last
        age_s = now_s - arrived_s
        if age_s > self.timeout_s:
            return RouteState(FOLLOW_LANE, 'expired', age_s)
        return RouteState(command, 'topic', age_s)
