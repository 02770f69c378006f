"""High-level route commands from a navigator (conditional imitation learning, Codevilla 2018).

The values are what the drive node's `route/command` topic (std_msgs/UInt8) carries, what
simulated bags record per frame and what the dataset's `route_command` column holds. A model
with `ModelConfig.num_commands == len(ROUTE_COMMANDS)` has one output branch per command.
"""

# The drive node's input (std_msgs/UInt8), relative: resolved in the node's namespace and
# remapped like any topic (launch argument route_command_topic).
NODE_ROUTE_COMMAND_TOPIC = 'route/command'

FOLLOW_LANE = 0   # keep the lane (and the ring of a roundabout); also: no command or a stale one
LEFT = 1          # take the left exit at the next junction
STRAIGHT = 2      # go straight through the next junction
RIGHT = 3         # take the right exit at the next junction; at a roundabout: take this exit
ROUTE_COMMANDS = ('follow_lane', 'left', 'straight', 'right')  # index = value
# index = value; the command of the mirror image (left-right flip augmentation)
MIRRORED = (FOLLOW_LANE, RIGHT, STRAIGHT, LEFT)


def route_command_name(value: int) -> str:
    """Name of a command value, e.g. 1 -> 'left'; raises ValueError for unknown values."""
    if not 0 <= int(value) < len(ROUTE_COMMANDS):
        raise ValueError(f'route command must be 0..{len(ROUTE_COMMANDS) - 1} '
                         f'({", ".join(ROUTE_COMMANDS)}), got {value!r}')
    return ROUTE_COMMANDS[int(value)]


def roundabout_metadata(scheme: str) -> dict:
    """Return the checkpoint metadata entry recording how a command model's sets told roundabouts.

    `scheme` is sim/route.py's RouteConfig.roundabout_commands ('per_exit' or 'whole');
    training writes it (training/loop.py), drive-sim and the drive node read it back with
    `trained_roundabout_scheme`.
    """
    return {'route_commands': {'roundabout_commands': scheme}}


def trained_roundabout_scheme(metadata: dict) -> str | None:
    """Return the roundabout scheme a checkpoint's metadata records, or None (not recorded)."""
    return (metadata.get('route_commands') or {}).get('roundabout_commands')
