"""The navigator's route command, derived from a MetaDrive route (conditional imitation).

A route is a chain of roads. Where it crosses a junction (MetaDrive PG blocks 'X'
intersection, 'T' T-junction, 'O' roundabout) the car has a choice, and the command says
which exit the route takes: LEFT, STRAIGHT or RIGHT by the route's heading change through the
junction. The command is issued `announce_m` before the junction's entry and held until the
route leaves the junction's turning lanes (its exit road, a block socket, is already plain
lane keeping); FOLLOW_LANE elsewhere. Ramps ('r', 'R') have one socket, so MetaDrive routes
never leave by them, and curves and straights offer no choice: both are FOLLOW_LANE.

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


@dataclass(frozen=True)
class RouteConfig:
    """When a junction's command is issued and how a heading change becomes a command."""

    announce_m: float = 30.0            # route distance before the junction entry to issue it
    straight_tolerance_deg: float = 30.0  # |heading change| below this is STRAIGHT

    def __post_init__(self):
        """Reject a negative distance or a tolerance that leaves no turn."""
        if self.announce_m < 0 or not 0 < self.straight_tolerance_deg < 90:
            raise ConfigError(f'invalid route config {self} (announce_m >= 0, '
                              f'0 < straight_tolerance_deg < 90)')


@dataclass(frozen=True)
class Junction:
    """A junction the route crosses, in route coordinates (metres along the route).

    Attributes:
        kind: 'intersection', 't_junction' or 'roundabout'.
        entry_m: where the route enters the junction block.
        exit_m: where the route leaves the junction's turning lanes (its exit road begins).
        heading_change_rad: the route's summed turn from entry to exit, + = left (REP-103).
    """

    kind: str
    entry_m: float
    exit_m: float
    heading_change_rad: float


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
        self.commands = [turn_command(j.heading_change_rad, self.config.straight_tolerance_deg)
                         for j in self.junctions]

    def _index(self, route_m: float) -> int | None:
        """Index of the junction whose command is in force at `route_m`, or None."""
        for i, junction in enumerate(self.junctions):
            if junction.entry_m - self.config.announce_m <= route_m < junction.exit_m:
                return i
        return None

    def at(self, route_m: float) -> int:
        """Command at `route_m` metres along the route (route_command.py values)."""
        i = self._index(route_m)
        return FOLLOW_LANE if i is None else self.commands[i]

    def place(self, route_m: float) -> str:
        """Where `route_m` lies: the kind of the junction whose command is in force, or 'road'."""
        i = self._index(route_m)
        return 'road' if i is None else self.junctions[i].kind

    def summary(self) -> list:
        """[{'kind', 'entry_m', 'exit_m', 'heading_change_deg', 'command'}] for manifests."""
        from signattn_driver.route_command import route_command_name
        return [{'kind': j.kind, 'entry_m': round(j.entry_m, 2), 'exit_m': round(j.exit_m, 2),
                 'heading_change_deg': round(math.degrees(j.heading_change_rad), 1) + 0.0,
                 'command': route_command_name(c)}
                for j, c in zip(self.junctions, self.commands)]


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
        # MetaDrive's 2-D frame has y to the right: its headings grow clockwise.
        junctions.append(Junction(JUNCTION_KINDS[block.ID], route_m, route_m + span_m,
                                  -heading_change_rad(chain)))
        route_m += span_m
    return junctions
