"""Route commands from MetaDrive's route, and the --blocks map choice."""

import math

import pytest

from signattn_driver.route_command import FOLLOW_LANE, LEFT, RIGHT, STRAIGHT
from signattn_driver.sim.maps import map_config, MapSpecError, parse_blocks, PG_BLOCKS
from signattn_driver.sim.metadrive_adapter import is_available, SimConfig
from signattn_driver.sim.route import (heading_change_rad, Junction, RouteCommands, RouteConfig,
                                       turn_command)

needs_sim = pytest.mark.skipif(
    not is_available(), reason='MetaDrive not installed (pip install .[sim], '
    'requirements-sim.txt) or no EGL (apt libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri)')


def test_heading_change_sums_the_turn_across_the_wrap():
    deg = math.radians
    # 350 -> 10 deg is a 20 deg left turn, not -340
    assert heading_change_rad([deg(350), deg(10)]) == pytest.approx(deg(20))
    # a roundabout's last exit: right onto the ring, 270 deg round it, right off: a U-turn
    # (+180), which end-minus-start headings could not tell from a right turn
    chain = [0, -60, -60, 30, 120, 210, 210, 180]
    assert heading_change_rad([deg(h) for h in chain]) == pytest.approx(deg(180))
    assert heading_change_rad([deg(5)]) == 0.0


def test_turn_command_by_heading_change():
    deg = math.radians
    assert turn_command(deg(90)) == LEFT
    assert turn_command(deg(-90)) == RIGHT
    assert turn_command(deg(10)) == STRAIGHT and turn_command(deg(-29)) == STRAIGHT
    assert turn_command(deg(180)) == LEFT           # U-turn in right-hand traffic
    assert turn_command(deg(-20), straight_tolerance_deg=15) == RIGHT


def test_command_is_issued_before_the_junction_and_held_through_it():
    left = Junction('intersection', entry_m=100.0, exit_m=127.0,
                    heading_change_rad=math.radians(90))
    right = Junction('roundabout', entry_m=150.0, exit_m=190.0,
                     heading_change_rad=math.radians(-90))
    commands = RouteCommands([right, left], RouteConfig(announce_m=30.0))
    assert [commands.at(m) for m in (0.0, 69.9, 70.0, 100.0, 126.9)] == [
        FOLLOW_LANE, FOLLOW_LANE, LEFT, LEFT, LEFT]
    # the next junction is announced once the car has left the first one's turning lanes
    assert commands.at(127.0) == RIGHT and commands.at(189.9) == RIGHT
    assert commands.at(190.0) == FOLLOW_LANE
    at_entry = RouteCommands([left], RouteConfig(announce_m=0.0))
    assert at_entry.at(99.9) == FOLLOW_LANE and at_entry.at(100.0) == LEFT
    assert [j['command'] for j in commands.summary()] == ['left', 'right']
    assert RouteCommands([]).at(50.0) == FOLLOW_LANE


def test_route_config_rejects_nonsense():
    with pytest.raises(ValueError, match='announce_m'):
        RouteConfig(announce_m=-1.0)
    with pytest.raises(ValueError, match='straight_tolerance_deg'):
        RouteConfig(straight_tolerance_deg=95.0)


def test_blocks_are_a_count_or_a_pg_block_sequence():
    assert parse_blocks('7') == 7 and parse_blocks(3) == 3
    assert parse_blocks('CSCCSCC') == 'CSCCSCC'
    assert map_config('CSCCSCC', 3.5, 2) == {'type': 'block_sequence', 'config': 'CSCCSCC',
                                             'lane_width': 3.5, 'lane_num': 2}
    assert map_config('5', 3.5, 2)['type'] == 'block_num'
    with pytest.raises(MapSpecError, match=r"\['Q'\].*known: S straight"):
        parse_blocks('CSQ')
    with pytest.raises(MapSpecError, match='spawn block I'):
        parse_blocks('ICS')
    for bad in (0, '0', '', True, 2.5):
        with pytest.raises(MapSpecError):
            parse_blocks(bad)
    assert SimConfig(map_blocks='XTO').map_blocks == 'XTO'
    assert SimConfig(map_blocks='4').map_blocks == 4
    with pytest.raises(ValueError, match='block letter'):
        SimConfig(map_blocks='CQ')


@needs_sim
def test_our_block_letters_and_map_keys_are_metadrives():
    from metadrive.component.algorithm.blocks_prob_dist import PGBlockDistConfig
    from metadrive.component.map.pg_map import MapGenerateMethod
    assert set(PG_BLOCKS) == {b.ID for b in PGBlockDistConfig.all_blocks()}
    assert map_config(3, 3.5, 2)['type'] == MapGenerateMethod.BIG_BLOCK_NUM
    assert map_config('CS', 3.5, 2)['type'] == MapGenerateMethod.BIG_BLOCK_SEQUENCE


@needs_sim
def test_commands_of_a_real_route_match_the_turns_the_expert_drives():
    """On map 'XTO' seed 0 the expert's own heading change through each junction has the
    command's direction, and the command follows the announce/hold rule along the drive."""
    from signattn_driver.sim.metadrive_adapter import MetaDriveSim
    from signattn_driver.sim.route import junctions_of_route
    config = RouteConfig(announce_m=30.0)
    sim_config = SimConfig(width_px=160, height_px=80, traffic_density=0.0, map_blocks='XTO')
    with MetaDriveSim(sim_config) as sim:
        state = sim.reset(seed=0)
        commands = RouteCommands(junctions_of_route(sim.vehicle.navigation), config)
        assert [j.kind for j in commands.junctions] == ['intersection', 't_junction',
                                                        'roundabout']
        progress, headings, issued = [], [], []
        for _ in range(2000):
            progress.append(state.route_progress_m)
            headings.append(state.heading_rad)
            issued.append(commands.at(state.route_progress_m))
            if state.arrived or state.crashed:   # the expert leaves the road in places
                break
            state = sim.step(*sim.expert_action())
        assert state.arrived, 'the expert should drive this map to its end'
    for junction, command in zip(commands.junctions, commands.commands):
        inside = [i for i, m in enumerate(progress) if junction.entry_m <= m < junction.exit_m]
        driven = heading_change_rad(headings[inside[0]:inside[-1] + 2])
        assert turn_command(driven) == command, (junction, math.degrees(driven))
        assert driven == pytest.approx(junction.heading_change_rad, abs=math.radians(25))
        announced = [c for m, c in zip(progress, issued)
                     if junction.entry_m - config.announce_m <= m < junction.exit_m]
        assert set(announced) == {command}
    first = commands.junctions[0]
    assert {c for m, c in zip(progress, issued) if m < first.entry_m - 31} == {FOLLOW_LANE}
    assert issued[-1] == FOLLOW_LANE          # past the last junction's turning lanes
    assert len(set(commands.commands)) > 1    # this map has more than one kind of exit


@needs_sim
def test_straights_and_curves_have_no_junctions():
    from signattn_driver.sim.metadrive_adapter import MetaDriveSim
    from signattn_driver.sim.route import junctions_of_route
    with MetaDriveSim(SimConfig(width_px=160, height_px=80, traffic_density=0.0,
                                map_blocks='CSC')) as sim:
        sim.reset(seed=1)
        assert [b.ID for b in sim.vehicle.navigation.map.blocks] == ['I', 'C', 'S', 'C']
        assert junctions_of_route(sim.vehicle.navigation) == []
