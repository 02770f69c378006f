"""The navigator's route command, derived from a MetaDrive route (conditional imitation).

A route is a chain of roads. Where it crosses a junction (MetaDrive PG blocks 'X'
intersection, 'T' T-junction, 'O' roundabout) the car has a choice, and the command says
which exit the route takes: LEFT, STRAIGHT or RIGHT by the route's heading change through the
junction. The command is issued `announce_m` before the junction's entry and held until the
route leaves the junction's turning lanes (its exit road, a block socket, is already plain
lane keeping); FOLLOW_LANE elsewhere.

Roundabouts (`RouteConfig.roundabout_commands`): by default ('per_exit') the navigator speaks
as a driver's does at each exit, not once for the whole ring: RIGHT means "take this exit",
FOLLOW_LANE means "stay on the ring". Taking the first exit is RIGHT from `announce_m` before
the entry (as before); taking a later one is FOLLOW_LANE from `announce_m` before the entry
until the ring road that leads to the taken exit begins (the previous exit is then behind the
car), and RIGHT from there until the exit road. 'whole' is the older scheme: one command for
the whole roundabout by its summed turn (second exit STRAIGHT, third LEFT), which left the
model to count exits under a constant command.

Ramps ('r', 'R') have one socket, so MetaDrive routes never leave by them, and curves and
straights offer no choice: both are FOLLOW_LANE.

The geometry (`heading_change_rad`, `turn_command`, `RouteCommands`) is pure; only
`junctions_of_route` reads MetaDrive objects (the vehicle's navigation, its map's blocks).

Heading change sums the turn along the route's lanes (not end minus start), so a roundabout's
ring counts in full: its first exit is a right turn of ~90 deg, the second ~0 deg (straight),
the third ~+90 deg (left) and a U-turn ~+180 deg, which is LEFT in right-hand traffic.
Signs follow REP-103 (+ = left); MetaDrive's 2-D frame flips the y axis, so its lane headings
grow clockwise and are negated here.
"""

from dataclasses import dataclass
import math

from signattn_driver.errors import ConfigError
from signattn_driver.route_command import FOLLOW_LANE, LEFT, RIGHT, STRAIGHT

JUNCTION_KINDS = {'X': 'intersection', 'T': 't_junction', 'O': 'roundabout'}
ROUNDABOUT_SCHEMES = ('per_exit', 'whole')
ROUNDABOUT_HELP = ('how the navigator speaks at roundabouts: per_exit (RIGHT = take this exit, '
                   'follow-lane = stay on the ring) or whole (one command for the roundabout by '
                   'its turn, the scheme of checkpoints trained before per_exit)')


@dataclass(frozen=True)
class RouteConfig:
    """When a junction's command is issued and how a heading change becomes a command."""

    announce_m: float = 30.0            # route distance before the junction entry to issue it
    straight_tolerance_deg: float = 30.0  # |heading change| below this is STRAIGHT
    roundabout_commands: str = 'per_exit'  # 'per_exit' or 'whole' (module docstring)

    def __post_init__(self):
        """Reject a negative distance, a tolerance that leaves no turn or an unknown scheme."""
        if self.announce_m < 0 or not 0 < self.straight_tolerance_deg < 90:
            raise ConfigError(f'invalid route config {self} (announce_m >= 0, '
                              f'0 < straight_tolerance_deg < 90)')
        if self.roundabout_commands not in ROUNDABOUT_SCHEMES:
            raise ConfigError(f'roundabout_commands must be one of {ROUNDABOUT_SCHEMES}, '
                              f'got {self.roundabout_commands!r}')


@dataclass(frozen=True)
class Junction:
    """A junction the route crosses, in route coordinates (metres along the route).

    Attributes:
        kind: 'intersection', 't_junction' or 'roundabout'.
        entry_m: where the route enters the junction block.
        exit_m: where the route leaves the junction's turning lanes (its exit road begins).
        heading_change_rad: the route's summed turn from entry to exit, + = left (REP-103).
        exit_number: roundabouts: the exit the route takes, counted from the entry (1 = first);
            0 elsewhere.
        exit_from_m: roundabouts: where the ring road leading to the taken exit begins (the
            entry for the first exit); per-exit commands say RIGHT from here.
    """

    kind: str
    entry_m: float
    exit_m: float
    heading_change_rad: float
    exit_number: int = 0
    exit_from_m: float | None = None


def wrap_rad(angle_rad: float) -> float:
    """Wrap an angle to [-pi, pi)."""
    return (angle_rad + math.pi) % (2 * math.pi) - math.pi


def heading_change_rad(headings_rad) -> float:
    """Return the summed turn along a chain of headings, each step wrapped to [-pi, pi).

    Args:
        headings_rad: headings in rad along the route in order (e.g. every lane's start and end
            heading); each step between neighbours must be below pi in magnitude.

    Returns:
        The total turn in rad; + = counter-clockwise (left in REP-103).
    """
    headings = [float(h) for h in headings_rad]
    return float(sum(wrap_rad(b - a) for a, b in zip(headings[:-1], headings[1:])))


def turn_command(change_rad: float, straight_tolerance_deg: float = 30.0) -> int:
    """Map a junction's heading change (+ = left) to LEFT, STRAIGHT or RIGHT.

    A turn past 90 deg + tolerance to the left is a U-turn, which in right-hand traffic is a
    left (a roundabout's last exit); RIGHT needs a clockwise turn past the tolerance.
    """
    degrees = math.degrees(change_rad)
    if degrees > straight_tolerance_deg:
        return LEFT
    if degrees < -straight_tolerance_deg:
        return RIGHT
    return STRAIGHT


class RouteCommands:
    """The command along one route: a pure function of route distance.

    Example:
        commands = RouteCommands(junctions_of_route(sim.vehicle.navigation), RouteConfig())
        command = commands.at(state.route_progress_m)
    """

    def __init__(self, junctions, config: RouteConfig | None = None):
        """Hold the route's junctions (any order) and the issue/turn settings."""
        self.config = config or RouteConfig()
        self.junctions = sorted(junctions, key=lambda j: j.entry_m)
        self.turns = [turn_command(j.heading_change_rad, self.config.straight_tolerance_deg)
                      for j in self.junctions]
        # [(from_m, to_m, command, junction index)] in junction order; the first that holds
        # route_m is in force, so a junction keeps its command until its exit road
        self.spans = []
        for i, (junction, turn) in enumerate(zip(self.junctions, self.turns)):
            issue_m = junction.entry_m - self.config.announce_m
            if self._per_exit(junction):
                self.spans += [(issue_m, junction.exit_from_m, FOLLOW_LANE, i),
                               (junction.exit_from_m, junction.exit_m, RIGHT, i)]
            else:
                self.spans.append((issue_m, junction.exit_m, turn, i))
        self.commands = [RIGHT if self._per_exit(j) else t
                         for j, t in zip(self.junctions, self.turns)]

    def _per_exit(self, junction: Junction) -> bool:
        """Tell whether a junction is a roundabout left by a later exit, told exit by exit."""
        return (self.config.roundabout_commands == 'per_exit' and junction.exit_number > 1
                and junction.exit_from_m is not None)

    def _span(self, route_m: float):
        """Return the span in force at `route_m`, or None."""
        for span in self.spans:
            if span[0] <= route_m < span[1]:
                return span
        return None

    def at(self, route_m: float) -> int:
        """Command at `route_m` metres along the route (route_command.py values)."""
        span = self._span(route_m)
        return FOLLOW_LANE if span is None else span[2]

    def place(self, route_m: float) -> str:
        """Where `route_m` lies: the kind of the junction whose command is in force, or 'road'."""
        span = self._span(route_m)
        return 'road' if span is None else self.junctions[span[3]].kind

    def summary(self) -> list:
        """Describe each junction for manifests.

        Returns:
            [{'kind', 'entry_m', 'exit_m', 'heading_change_deg', 'turn' (the junction's turn as
            a whole), 'command' (what the navigator says for the exit the route takes),
            'command_from_m' (where that command begins) and, for roundabouts, 'exit' (the taken
            exit, 1 = first)}] in route order.
        """
        from signattn_driver.route_command import route_command_name
        rows = []
        for i, j in enumerate(self.junctions):
            from_m = next(s[0] for s in self.spans if s[3] == i and s[2] == self.commands[i])
            row = {'kind': j.kind, 'entry_m': round(j.entry_m, 2), 'exit_m': round(j.exit_m, 2),
                   'heading_change_deg': round(math.degrees(j.heading_change_rad), 1) + 0.0,
                   'turn': route_command_name(self.turns[i]),
                   'command': route_command_name(self.commands[i]),
                   'command_from_m': round(from_m, 2)}
            if j.exit_number:
                row['exit'] = j.exit_number
            rows.append(row)
        return rows


def junctions_of_route(navigation) -> list:
    """Read the junctions of a MetaDrive vehicle's route (`vehicle.navigation`).

    Route distance is measured along lane 0 of each route road, as MetaDriveSim's
    `SimState.route_progress_m` is. A junction spans the route's roads inside one X/T/O block
    except the block's sockets (its exit roads, where the next block attaches); its heading
    change runs from the end of the road before it to the start of its exit road.

    Args:
        navigation: MetaDrive's NodeNetworkNavigation (checkpoints: the route's road nodes;
            map.blocks; map.road_network.graph[start][end] -> lanes).

    Returns:
        [Junction] in route order.
    """
    graph = navigation.map.road_network.graph
    nodes = list(navigation.checkpoints)
    roads = list(zip(nodes[:-1], nodes[1:]))
    block_of, sockets = {}, set()
    for block in navigation.map.blocks:
        for start, ends in block.block_network.graph.items():
            for end in ends:
                block_of[(start, end)] = block
        if block.ID in JUNCTION_KINDS:
            for socket in block.get_socket_list():
                for road in (socket.positive_road, socket.negative_road):
                    sockets.add((road.start_node, road.end_node))
    junctions, route_m, i = [], 0.0, 0
    lengths = [float(graph[a][b][0].length) for a, b in roads]
    while i < len(roads):
        block = block_of.get(roads[i])
        if block is None or block.ID not in JUNCTION_KINDS or roads[i] in sockets:
            route_m += lengths[i]
            i += 1
            continue
        first = i
        while (i < len(roads) and block_of.get(roads[i]) is block
               and roads[i] not in sockets):
            i += 1
        lanes = [graph[a][b][0] for a, b in roads[first:i]]
        chain = []
        if first > 0:
            before = graph[roads[first - 1][0]][roads[first - 1][1]][0]
            chain.append(before.heading_theta_at(before.length))
        for lane in lanes:
            chain += [lane.heading_theta_at(0.0), lane.heading_theta_at(lane.length)]
        if i < len(roads):
            chain.append(graph[roads[i][0]][roads[i][1]][0].heading_theta_at(0.0))
        span_m = sum(lengths[first:i])
        exit_number, exit_from_m = 0, None
        if block.ID == 'O':
            exit_number, exit_from_m = _roundabout_exit(
                roads[first:i], lengths[first:i], block.block_network.graph, route_m)
        # MetaDrive's 2-D frame has y to the right: its headings grow clockwise.
        junctions.append(Junction(JUNCTION_KINDS[block.ID], route_m, route_m + span_m,
                                  -heading_change_rad(chain), exit_number, exit_from_m))
        route_m += span_m
    return junctions


def _roundabout_exit(roads, lengths, block_graph, entry_m: float) -> tuple:
    """Which exit a route takes through a roundabout and where its ring road to it begins.

    Args:
        roads: the route's (start, end) roads inside the roundabout block, in order (entry road,
            ring roads, exit lane; not the exit road).
        lengths: their lengths in metres.
        block_graph: the block's road graph, start node -> {end node: lanes}; a node with two
            roads leaving it is an exit fork (leave the ring or stay on it).
        entry_m: route distance where `roads[0]` begins.

    Returns:
        (exit number, 1 = first; route distance where the ring road ending at the taken exit's
        fork begins, or `entry_m` for the first exit). (0, None) if the route takes no fork.
    """
    starts = [entry_m + sum(lengths[:k]) for k in range(len(roads))]
    forks = [k for k, (start, _) in enumerate(roads) if len(block_graph.get(start, ())) > 1]
    if not forks:
        return 0, None
    taken = forks[-1]
    return len(forks), (entry_m if len(forks) == 1 else starts[max(taken - 1, 0)])
