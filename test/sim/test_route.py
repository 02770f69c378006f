"""Route commands: from MetaDrive's route, --blocks maps, datasets, bags and training."""

import csv
import math

import cv2
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import Reader
import torch

from conftest import tiny_config, tiny_settings
from signattn_driver import checkpoint
from signattn_driver.data.bag_dataset import dataset_from_bags
from signattn_driver.data.bag_layout import (DriveBagWriter, read_ground_truth,
                                             ROUTE_COMMAND_TOPIC, route_commands_at)
from signattn_driver.data.dataset import Dataset, DatasetWriter, open_datasets
from signattn_driver.data.labels import stamp_ns_of
from signattn_driver.data.sequences import DriveSequences, make_episodes, SequenceIndex
from signattn_driver.model import SteeringNet
from signattn_driver.preprocessing import hsv_u8_to_input, to_hsv_u8
from signattn_driver.route_command import FOLLOW_LANE, LEFT, RIGHT, STRAIGHT
from signattn_driver.sim.maps import map_config, MapSpecError, parse_blocks, PG_BLOCKS
from signattn_driver.sim.metadrive_adapter import is_available, SimConfig
from signattn_driver.sim.route import (heading_change_rad, Junction, RouteCommands, RouteConfig,
                                       turn_command)
from signattn_driver.errors import ConfigError
from signattn_driver.training.augment import drop_route_commands, mirror_route_commands
from signattn_driver.training.config import TrainConfig
from signattn_driver.training.data import prepare_data
from signattn_driver.training.losses import steering_l1
from signattn_driver.vehicle import load_vehicle

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


def test_roundabout_per_exit_says_right_only_at_the_taken_exit():
    # second exit: entry at 100 m, the ring road to the taken exit's fork from 160 m, exit
    # road at 190 m
    second = Junction('roundabout', entry_m=100.0, exit_m=190.0, heading_change_rad=0.0,
                      exit_number=2, exit_from_m=160.0)
    per_exit = RouteCommands([second], RouteConfig(announce_m=30.0))
    assert [per_exit.at(m) for m in (69.9, 70.0, 100.0, 159.9, 160.0, 189.9, 190.0)] == [
        FOLLOW_LANE, FOLLOW_LANE, FOLLOW_LANE, FOLLOW_LANE, RIGHT, RIGHT, FOLLOW_LANE]
    # the junction is in force (for per-place counts) from the announcement on, in both spans
    assert [per_exit.place(m) for m in (69.9, 70.0, 160.0)] == ['road', 'roundabout',
                                                                'roundabout']
    [row] = per_exit.summary()
    assert (row['turn'], row['command'], row['command_from_m'], row['exit']) == (
        'straight', 'right', 160.0, 2)
    whole = RouteCommands([second], RouteConfig(announce_m=30.0, roundabout_commands='whole'))
    assert [whole.at(m) for m in (69.9, 70.0, 160.0, 190.0)] == [
        FOLLOW_LANE, STRAIGHT, STRAIGHT, FOLLOW_LANE]
    assert whole.summary()[0]['command'] == 'straight'
    # the first exit is RIGHT from the announcement in both schemes
    first = Junction('roundabout', entry_m=100.0, exit_m=140.0,
                     heading_change_rad=math.radians(-90), exit_number=1, exit_from_m=100.0)
    for scheme in ('per_exit', 'whole'):
        commands = RouteCommands([first], RouteConfig(roundabout_commands=scheme))
        assert [commands.at(m) for m in (69.9, 70.0, 139.9)] == [FOLLOW_LANE, RIGHT, RIGHT]


def test_roundabout_exit_is_counted_at_the_forks_of_the_ring():
    from signattn_driver.sim.route import _roundabout_exit
    # MetaDrive's roundabout: entry road, ring roads; nodes 'k1' fork (exit or ring)
    graph = {'in': {'a0': 0}, 'a0': {'a1': 0}, 'a1': {'a2': 0, 'b0': 0}, 'b0': {'b1': 0},
             'b1': {'b2': 0, 'c0': 0}}
    second = [('in', 'a0'), ('a0', 'a1'), ('a1', 'b0'), ('b0', 'b1'), ('b1', 'b2')]
    lengths = [19.0, 26.7, 22.7, 26.7, 19.0]
    assert _roundabout_exit(second, lengths, graph, 50.0) == (2, pytest.approx(50 + 68.4))
    first = [('in', 'a0'), ('a0', 'a1'), ('a1', 'a2')]
    assert _roundabout_exit(first, lengths[:3], graph, 50.0) == (1, 50.0)
    assert _roundabout_exit([('in', 'a0')], [19.0], graph, 50.0) == (0, None)


def test_route_config_rejects_nonsense():
    with pytest.raises(ValueError, match='announce_m'):
        RouteConfig(announce_m=-1.0)
    with pytest.raises(ValueError, match='straight_tolerance_deg'):
        RouteConfig(straight_tolerance_deg=95.0)
    with pytest.raises(ValueError, match='roundabout_commands'):
        RouteConfig(roundabout_commands='each')


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
    """Check SimState's commands against the turns the expert drives on map 'XTO' seed 0.

    The expert's own heading change through each junction has the command's direction, and
    the command follows the announce/hold rule.
    """
    from signattn_driver.sim.metadrive_adapter import MetaDriveSim
    config = RouteConfig(announce_m=25.0)
    sim_config = SimConfig(width_px=160, height_px=80, traffic_density=0.0, map_blocks='XTO',
                           route=config)
    with MetaDriveSim(sim_config) as sim:
        state = sim.reset(seed=0)
        commands = sim.route_commands
        assert [kind for kind, _ in sim.route_junctions()] == ['intersection', 't_junction',
                                                               'roundabout']
        assert [j.kind for j in commands.junctions] == ['intersection', 't_junction',
                                                        'roundabout']
        progress, headings, issued = [], [], []
        for _ in range(2000):
            progress.append(state.route_progress_m)
            headings.append(state.heading_rad)
            issued.append(state.route_command)
            if state.arrived or state.crashed:   # the expert leaves the road in places
                break
            state = sim.step(*sim.expert_action())
        assert state.arrived, 'the expert should drive this map to its end'
    for junction, turn in zip(commands.junctions, commands.turns):
        inside = [i for i, m in enumerate(progress) if junction.entry_m <= m < junction.exit_m]
        driven = heading_change_rad(headings[inside[0]:inside[-1] + 2])
        assert turn_command(driven) == turn, (junction, math.degrees(driven))
        assert driven == pytest.approx(junction.heading_change_rad, abs=math.radians(25))
        announced = [c for m, c in zip(progress, issued)
                     if junction.entry_m - config.announce_m <= m < junction.exit_m]
        if junction.kind == 'roundabout' and junction.exit_number > 1:   # per exit
            ring = [c for m, c in zip(progress, issued)
                    if junction.entry_m - config.announce_m <= m < junction.exit_from_m]
            assert set(ring) == {FOLLOW_LANE} and announced[-1] == RIGHT
        else:
            assert set(announced) == {turn}
    first = commands.junctions[0]
    assert {c for m, c in zip(progress, issued) if m < first.entry_m - 26} == {FOLLOW_LANE}
    assert issued[-1] == FOLLOW_LANE          # past the last junction's turning lanes
    assert len(set(commands.turns)) > 1       # this map has more than one kind of exit


@needs_sim
def test_per_exit_roundabout_command_comes_after_the_passed_exit():
    """On map 'O' seed 3 the route leaves its first roundabout by the second exit.

    RIGHT is in force only on the ring road to that exit and its exit lane, after the first
    exit's fork is behind the car; before it, from the announcement on, follow-lane.
    """
    from signattn_driver.sim.metadrive_adapter import MetaDriveSim
    with MetaDriveSim(SimConfig(width_px=160, height_px=80, traffic_density=0.0,
                                map_blocks='O')) as sim:
        state = sim.reset(seed=3)
        [roundabout] = sim.route_commands.junctions
        assert roundabout.exit_number == 2 and sim.route_commands.turns == [STRAIGHT]
        assert roundabout.entry_m < roundabout.exit_from_m < roundabout.exit_m
        told = []
        while not (state.arrived or state.crashed) and len(told) < 1500:
            told.append((state.route_progress_m, state.route_command))
            state = sim.step(*sim.expert_action())
        assert state.arrived
    right = [m for m, c in told if c == RIGHT]
    assert right and min(right) >= roundabout.exit_from_m - 1.0
    assert max(right) < roundabout.exit_m
    assert {c for m, c in told if m < roundabout.exit_from_m - 1.0} == {FOLLOW_LANE}


@needs_sim
def test_straights_and_curves_have_no_junctions():
    from signattn_driver.sim.metadrive_adapter import MetaDriveSim
    from signattn_driver.sim.route import junctions_of_route
    with MetaDriveSim(SimConfig(width_px=160, height_px=80, traffic_density=0.0,
                                map_blocks='CSC')) as sim:
        sim.reset(seed=1)
        assert [b.ID for b in sim.vehicle.navigation.map.blocks] == ['I', 'C', 'S', 'C']
        assert junctions_of_route(sim.vehicle.navigation) == []


# -- the command in datasets, bags and training ---------------------------------------------

def _road(rng) -> np.ndarray:
    img = np.full((80, 160, 3), (70, 75, 70), np.uint8)
    img[:30] = (200, 160, 120)
    noise = rng.integers(-10, 11, img.shape)
    return to_hsv_u8(np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8))


def _command_set(root, commands_per_drive, steering_of=(0.0, 1.0, 0.0, -1.0), seed=0,
                 **manifest):
    """Drives of look-alike road frames whose steering is set by the command alone."""
    rng = np.random.default_rng(seed)
    writer = DatasetWriter(root, vehicle=load_vehicle('mkz'), smoothing_alpha=1.0,
                           chunk_frames=64)
    for d, commands in enumerate(commands_per_drive):
        drive = writer.drive(f'drive{d}')
        for i, c in enumerate(commands):
            drive.append(_road(rng), 10**9 + i * 50_000_000, steering_of[c], 10.0,
                         route_command=int(c))
        writer.close_drive(drive)
    return writer.finalize(**manifest)


def test_dataset_round_trips_commands_and_old_sets_read_as_follow_lane(tmp_path):
    commands = [FOLLOW_LANE, LEFT, LEFT, STRAIGHT, RIGHT, FOLLOW_LANE]
    root = _command_set(tmp_path / 'set', [commands])
    drive = Dataset(root).drive('drive0')
    assert drive.labels['route_command'].dtype == np.uint8
    assert drive.labels['route_command'].tolist() == commands
    # a set written before the column existed: same labels, follow-lane everywhere
    labels = root / 'drive0' / 'labels.csv'
    with open(labels, newline='') as f:
        rows = [r[:-1] for r in csv.reader(f)]
    assert rows[0][-1] == 'inverse_radius_per_m'
    with open(labels, 'w', newline='') as f:
        csv.writer(f).writerows(rows)
    old = Dataset(root).drive('drive0')
    assert old.labels['route_command'].tolist() == [FOLLOW_LANE] * len(commands)
    np.testing.assert_array_equal(old.labels['inverse_radius_per_m'],
                                  drive.labels['inverse_radius_per_m'])
    writer = DatasetWriter(tmp_path / 'bad', vehicle=load_vehicle('mkz'), smoothing_alpha=1.0)
    with pytest.raises(ValueError, match='route command'):
        writer.drive('d').append(np.zeros((80, 160, 3), np.uint8), 0, 0.0, 0.0, route_command=4)
    writer.abort()


def test_commands_are_held_from_their_stamp():
    stamps = np.array([100, 200, 300], np.int64)
    values = np.array([LEFT, FOLLOW_LANE, RIGHT], np.uint8)
    held = route_commands_at(stamps, values, [50, 100, 150, 299, 300, 10**6])
    assert held.tolist() == [FOLLOW_LANE, LEFT, LEFT, FOLLOW_LANE, RIGHT, RIGHT]
    assert route_commands_at(stamps[:0], values[:0], [1, 2]).tolist() == [FOLLOW_LANE] * 2


def test_bags_carry_the_command_per_frame_and_bags_without_it_read_as_follow_lane(tmp_path):
    commands = [FOLLOW_LANE, LEFT, LEFT, RIGHT, STRAIGHT]
    jpeg = cv2.imencode('.jpg', np.full((80, 160, 3), 90, np.uint8))[1].tobytes()
    for name, with_commands in (('nav', True), ('plain', False)):
        with DriveBagWriter(tmp_path / name) as bag:
            for i, c in enumerate(commands):
                stamp = 10**9 + i * 50_000_000
                bag.write_image(stamp, jpeg)
                bag.write_ground_truth(stamp, 0.1, 10.0, 0.01)
                if with_commands:
                    bag.write_route_command(stamp, c)
    with AnyReader([tmp_path / 'nav']) as reader:
        conn = next(c for c in reader.connections if c.topic == ROUTE_COMMAND_TOPIC)
        assert conn.msgtype == 'sensor_msgs/msg/Joy' and conn.msgcount == len(commands)
        msgs = [reader.deserialize(raw, conn.msgtype)
                for _, _, raw in reader.messages(connections=[conn])]
    assert [int(m.buttons[0]) for m in msgs] == commands
    assert [stamp_ns_of(m.header) for m in msgs] == [10**9 + i * 50_000_000 for i in range(5)]
    assert read_ground_truth(tmp_path / 'nav')['route_command'].tolist() == commands
    assert read_ground_truth(tmp_path / 'plain')['route_command'].tolist() == [FOLLOW_LANE] * 5
    with Reader(tmp_path / 'plain') as reader:      # no navigator, no topic
        assert ROUTE_COMMAND_TOPIC not in {c.topic for c in reader.connections}
    out = dataset_from_bags([tmp_path / 'nav'], tmp_path / 'set', load_vehicle('mkz'))
    assert Dataset(out).drive('nav').labels['route_command'].tolist() == commands


def test_training_windows_carry_commands_and_mirroring_swaps_left_and_right(tmp_path):
    root = _command_set(tmp_path / 'set', [[LEFT] * 5 + [RIGHT] * 3])
    index = SequenceIndex(open_datasets([root]))
    episodes = make_episodes(index.segments, sequence_length=6)
    windows = DriveSequences(index, index.segments, episodes)
    assert windows[0]['route_command'].tolist() == [LEFT] * 5 + [RIGHT]
    assert windows[1]['route_command'].tolist() == [RIGHT] * 2 + [FOLLOW_LANE] * 4  # padding
    commands = torch.tensor([[FOLLOW_LANE, LEFT, STRAIGHT, RIGHT]] * 2, dtype=torch.uint8)
    mirrored = mirror_route_commands(commands, torch.tensor([True, False]))
    assert mirrored.tolist() == [[FOLLOW_LANE, RIGHT, STRAIGHT, LEFT],
                                 [FOLLOW_LANE, LEFT, STRAIGHT, RIGHT]]


@pytest.mark.slow
def test_a_camera_only_checkpoint_starts_a_command_model_that_learns_the_commands(
        tmp_path, tiny_checkpoint):
    """Start a command model from a camera-only checkpoint (--init-checkpoint), then train.

    The command model first steers as the checkpoint did for every command; a short training
    on frames that look alike then tells the commands apart.
    """
    from signattn_driver.training.loop import load_run_config, train
    base = checkpoint.load(tiny_checkpoint)
    model = SteeringNet(tiny_config(num_commands=4)).eval()
    model.load_state_dict(checkpoint.initial_weights(base, model))
    camera_only = base.build_model().eval()
    x = torch.rand(1, 5, 3, 80, 160) * 2 - 1
    with torch.no_grad():
        expected = camera_only(x)[0]
        for c in range(4):
            assert torch.allclose(model(x, commands=torch.full((1, 5), c))[0], expected,
                                  atol=1e-6)
    blocks = [LEFT, FOLLOW_LANE, RIGHT, STRAIGHT, RIGHT, LEFT]
    per_exit = {'sim': {'route': {'announce_m': 30.0, 'roundabout_commands': 'per_exit'}}}
    data = _command_set(tmp_path / 'set', [np.repeat(blocks, 20), np.repeat(blocks[::-1], 20)],
                        simulation=per_exit)
    torch.manual_seed(0)
    model_config, config = load_run_config(None, tiny_settings(
        num_commands=4, dropout=0.0, lr=3e-3, max_steps=40, val_every=40, log_every=10,
        sequence_length=10, block_s=2.0, guard_s=0.5, val_fraction=0.2, num_workers=0,
        device='cpu', flip=True, init_checkpoint=str(tiny_checkpoint)))
    result = train(model_config, config, [data], tmp_path / 'run', progress=False)
    saved = checkpoint.load(result['last_checkpoint'])
    # the navigator it was trained with, for drive-sim to speak
    assert saved.metadata['route_commands'] == {'roundabout_commands': 'per_exit'}
    trained = saved.build_model().eval()
    frames = hsv_u8_to_input(torch.from_numpy(
        np.stack([_road(np.random.default_rng(9)) for _ in range(10)])))[None]
    with torch.no_grad():
        u = {c: float(trained(frames, commands=torch.full((1, 10), c))[0][0, -1])
             for c in (LEFT, FOLLOW_LANE, RIGHT)}
    label = float(Dataset(data).drive('drive0').labels['inverse_radius_per_m'][0])  # LEFT's u
    # a few steps only: the branches have moved apart in the labels' order (mirrored frames
    # train LEFT with RIGHT's labels unless the commands are mirrored too)
    assert u[LEFT] > u[FOLLOW_LANE] > u[RIGHT], (u, label)
    assert u[LEFT] - u[RIGHT] > 0.25 * (2 * label), (u, label)


def test_command_dropout_tells_whole_lanes_follow_lane_reproducibly():
    commands = torch.tensor([[LEFT, LEFT, RIGHT, STRAIGHT]] * 2000)
    assert torch.equal(drop_route_commands(commands, 0.0, seed=3), commands)
    heard = drop_route_commands(commands, 0.3, seed=3)
    dropped = (heard == FOLLOW_LANE).all(1)
    # a lane hears follow-lane on every frame or keeps its commands on every frame
    assert torch.equal(heard[~dropped], commands[~dropped])
    assert abs(float(dropped.float().mean()) - 0.3) < 0.04
    # the draw is the seed's alone: one episode's windows (same seed) draw alike
    assert torch.equal(drop_route_commands(commands, 0.3, seed=3), heard)
    assert not torch.equal(drop_route_commands(commands, 0.3, seed=4), heard)
    for bad in (-0.1, 1.0, float('nan')):
        with pytest.raises(ConfigError, match='command_dropout'):
            TrainConfig(command_dropout=bad)


def test_training_with_command_dropout_tells_the_model_not_the_loss(tmp_path, monkeypatch):
    """The model hears follow-lane on dropped episodes; the loss weights keep the commands."""
    from signattn_driver.training import loop
    told, weighed = [], []
    forward = SteeringNet.forward

    def spy_forward(self, frames, state=None, *args, commands=None, **kwargs):
        told.append(commands.clone())
        return forward(self, frames, state, *args, commands=commands, **kwargs)

    def spy_l1(pred, u, weight, commands=None, turn_weight=1.0):
        weighed.append(commands.clone())
        return steering_l1(pred, u, weight, commands, turn_weight)
    monkeypatch.setattr(SteeringNet, 'forward', spy_forward)
    monkeypatch.setattr(loop, 'steering_l1', spy_l1)
    data = _command_set(tmp_path / 'set', [[LEFT] * 40, [RIGHT] * 40, [STRAIGHT] * 40,
                                           [LEFT] * 40])
    model_config, config = loop.load_run_config(None, tiny_settings(
        num_commands=4, lr=1e-3, max_steps=8, val_every=100, log_every=4, batch_size=4,
        sequence_length=10, episode_windows=2, val_fraction=0.0, num_workers=0,
        device='cpu', command_dropout=0.5, seed=1))
    loop.train(model_config, config, [data], tmp_path / 'run', progress=False)
    assert len(told) == len(weighed) == 8
    # no command was ever follow-lane in the data: the loss always sees the recorded ones
    assert all(bool((w != FOLLOW_LANE).all()) for w in weighed)
    silenced = [(t == FOLLOW_LANE).all(1) for t in told]          # (lanes,) per step
    everything = torch.cat(silenced)
    assert 0 < int(everything.sum()) < len(everything)
    for t, w, s in zip(told, weighed, silenced):
        assert torch.equal(t[~s], w[~s])
    # both windows of an episode (steps 2k, 2k+1: same lanes) are silenced alike
    for k in range(0, 8, 2):
        assert torch.equal(silenced[k], silenced[k + 1])


def test_sets_that_tell_roundabouts_differently_are_not_mixed():
    from signattn_driver.training.config import TrainingError
    from signattn_driver.training.data import roundabout_scheme

    def simulated(**route):
        return {'simulation': {'sim': {'route': {'announce_m': 30.0, **route}}}}
    converted = {'source': 'udacity'}
    assert roundabout_scheme([converted]) is None
    assert roundabout_scheme([simulated(), converted]) == 'whole'     # recorded before the field
    assert roundabout_scheme([simulated(roundabout_commands='per_exit')] * 2) == 'per_exit'
    with pytest.raises(TrainingError, match='tell roundabouts differently.*per_exit_subset'):
        roundabout_scheme([simulated(), simulated(roundabout_commands='per_exit')])


def test_drive_sim_speaks_the_roundabout_scheme_the_checkpoint_was_trained_with(tmp_path):
    from signattn_driver.cli.drive_sim import roundabout_scheme
    model = SteeringNet(tiny_config(num_commands=4))
    whole = checkpoint.save(tmp_path / 'whole.pt', model,
                            route_commands={'roundabout_commands': 'whole'})
    unknown = checkpoint.save(tmp_path / 'older.pt', model)
    assert roundabout_scheme(whole, None) == ('whole', None)
    assert roundabout_scheme(unknown, None) == (None, None)     # RouteConfig's default
    assert roundabout_scheme(None, 'whole') == ('whole', None)
    assert roundabout_scheme(whole, 'whole') == ('whole', None)
    scheme, warning = roundabout_scheme(whole, 'per_exit')     # as given, with a warning
    assert scheme == 'per_exit' and 'trained with roundabouts told whole' in warning


@needs_sim
@pytest.mark.parametrize('subcommand', ['simulate', 'drive-sim'])
def test_cli_rejects_an_unknown_block_letter_in_one_line(subcommand, capsys, tmp_path):
    from signattn_driver.cli import main
    out = ['--out', str(tmp_path / 'out')] if subcommand == 'simulate' else []
    assert main([subcommand, *out, '--blocks', 'CQ']) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown MetaDrive block letter(s) ['Q']" in err
    assert not (tmp_path / 'out').exists()


def test_the_animation_shows_the_route_command(camera_frames):
    from signattn_driver.sim.animation import COMMAND, EpisodeAnimation
    from signattn_driver.sim.metadrive_adapter import SimState

    class FakeSim:
        def lane_outlines(self):
            return [(np.array([[0, -2], [100, -2], [100, 2], [0, 2]], np.float32), True)]
    animation = EpisodeAnimation(FakeSim(), stride=1, panel_px=128)
    image = cv2.resize(camera_frames[0], (320, 160))
    commands = [FOLLOW_LANE, LEFT, STRAIGHT, RIGHT]
    for i, command in enumerate(commands):
        animation(SimState(image_bgr=image, time_s=i * 0.05, steering=0.0,
                           front_wheel_angle_rad=0.0, speed_mps=8.0, lateral_offset_m=0.0,
                           route_progress_m=2.0 * i, route_length_m=100.0, out_of_road=False,
                           crashed=False, arrived=False, position_m=(50.0, 0.0),
                           heading_rad=0.0, route_command=command), 0.0, 0.0, in_charge=True)
    signs = []
    for frame in animation.frames:
        rgb = np.asarray(frame.convert('RGB'))[:, :, ::-1].astype(int)
        corner = rgb[:30, 128:128 + 30]                   # the top-down panel's corner
        yellow = np.abs(corner - np.array(COMMAND)).sum(axis=2) < 60
        signs.append(yellow)
    assert not signs[0].any()                              # follow-lane: no turn sign
    # the arrow's mass lies to the side (or above) the command names
    ys, xs = np.nonzero(signs[1])
    assert xs.mean() < 13                                  # left
    ys, xs = np.nonzero(signs[3])
    assert xs.mean() > 17                                  # right
    ys, xs = np.nonzero(signs[2])
    assert 12 <= xs.mean() <= 18 and ys.mean() < 14        # ahead


# -- the command in simulated drives and the closed loop ------------------------------------

@pytest.fixture
def command_checkpoint(tmp_path):
    """Save a tiny route-command model whose commands steer differently (non-zero embeddings)."""
    torch.manual_seed(0)
    model = SteeringNet(tiny_config(num_commands=4)).eval()
    torch.nn.init.normal_(model.command_attention.weight)
    torch.nn.init.normal_(model.command_gate.weight)
    return checkpoint.save(tmp_path / 'command.pt', model, vehicle={'name': 'metadrive'})


def test_model_controller_steers_with_the_route_command(command_checkpoint, camera_frames):
    from signattn_driver.predictor import Predictor
    from signattn_driver.sim.closed_loop import ModelController
    jpeg = cv2.imencode('.jpg', camera_frames[0])[1].tobytes()
    steer = {}
    for command in (FOLLOW_LANE, LEFT, RIGHT):
        controller = ModelController(command_checkpoint)
        steer[command] = controller.steer(jpeg, 10**18, 8.0, None, route_command=command)
        predictor = Predictor(command_checkpoint)
        u, _ = predictor.step(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR),
                              'bgr', command=command)
        assert steer[command] == pytest.approx(controller.command(u, 8.0), abs=1e-9)
    assert len({round(v, 6) for v in steer.values()}) == 3    # each command its own answer
    # without the navigator the same model steers follow-lane whatever it is told
    blind = ModelController(command_checkpoint, route_commands=False)
    assert blind.steer(jpeg, 10**18, 8.0, None, route_command=LEFT) == steer[FOLLOW_LANE]


@needs_sim
def test_closed_loop_controllers_get_the_route_command_of_each_frame():
    from signattn_driver.sim.closed_loop import (ClosedLoopConfig, drive_episode,
                                                 ExpertController, summarize, ZeroController)
    from signattn_driver.sim.metadrive_adapter import MetaDriveSim
    told, states = [], []

    class Listening(ExpertController):
        def steer(self, jpeg, stamp_ns, speed_mps, sim, route_command=FOLLOW_LANE):
            told.append(route_command)
            return super().steer(jpeg, stamp_ns, speed_mps, sim, route_command)
    config = ClosedLoopConfig(seeds=(0,), max_seconds=12.0, sim=SimConfig(
        width_px=160, height_px=80, traffic_density=0.0, map_blocks='XTO'))
    with MetaDriveSim(config.sim) as sim:
        episode = drive_episode(sim, Listening(), 0, config,
                                observer=lambda state, *_: states.append(state.route_command))
        config.max_seconds = 20.0
        zero = summarize([drive_episode(sim, ZeroController(), 0, config)])
    assert told == states and len(told) == 240
    assert told[0] == FOLLOW_LANE and LEFT in told          # map XTO seed 0 turns left first
    assert [j['command'] for j in episode['route_commands']] == ['left', 'straight', 'right']
    # every offset frame is placed: on the road and, while the left turn is in force, at the X
    assert len(episode['offset_places']) == len(episode['offsets_m']) == 240
    assert {'road', 'intersection'} <= set(episode['offset_places'])
    # the floor drives straight on where the route turns left, to the end of that exit road:
    # its event is placed at the intersection
    places = zero['out_of_road_events_by_place']
    assert sum(places.values()) == zero['out_of_road_events'] >= 1
    assert places['intersection'] >= 1
    first = zero['per_episode'][0]['out_of_road_places'][0]
    assert first['place'] == 'intersection' and first['route_command'] == 'left'
    # 12 s (~100 m) of the route end in the T-junction's announce range, past the X
    assert episode['end'] == 'timeout' and episode['end_place'] == 't_junction'


@needs_sim
def test_simulated_drives_record_the_command_and_dagger_policies_get_it(
        tmp_path, command_checkpoint, monkeypatch):
    from signattn_driver.sim import closed_loop
    from signattn_driver.sim.recording import NoiseConfig, simulate, SimulationConfig
    told = []

    class Listening(closed_loop.ModelController):
        def steer(self, jpeg, stamp_ns, speed_mps, sim, route_command=FOLLOW_LANE):
            told.append(route_command)
            return super().steer(jpeg, stamp_ns, speed_mps, sim, route_command)
    monkeypatch.setattr(closed_loop, 'ModelController', Listening)
    # beta 1: the expert alone steers (the route is driven as in the test above), the policy
    # still sees every frame with its command
    config = SimulationConfig(minutes=12 / 60, seed=0, val_every=0, beta=1.0,
                              policy=str(command_checkpoint), noise=NoiseConfig(amplitude=0.0),
                              sim=SimConfig(width_px=160, height_px=80, traffic_density=0.0,
                                            map_blocks='XTO'))
    result = simulate(tmp_path / 'sim', config)
    drive = result['drives'][0]
    labels = Dataset(tmp_path / 'sim' / 'dataset').drive(drive['name']).labels
    recorded = labels['route_command'].tolist()
    assert recorded == told and len(recorded) == 240
    assert recorded[0] == FOLLOW_LANE and recorded.count(LEFT) > 60
    truth = read_ground_truth(tmp_path / 'sim' / 'bags' / drive['name'])
    assert truth['route_command'].tolist() == recorded          # bag and dataset agree
    assert drive['route_command_frames']['left'] == recorded.count(LEFT)
    assert [j['command'] for j in drive['route_commands']] == ['left', 'straight', 'right']


def test_the_node_gets_the_route_command_through_ros(command_checkpoint, camera_frames,
                                                     ros_domain_id):
    pytest.importorskip('rclpy', reason='--through-ros needs rclpy')
    from signattn_driver.ros.sim_controller import RosController
    from signattn_driver.sim.closed_loop import ModelController
    model = ModelController(command_checkpoint)
    ros = RosController(command_checkpoint)
    jpegs = [cv2.imencode('.jpg', frame)[1].tobytes() for frame in camera_frames]
    commands = [FOLLOW_LANE, LEFT, LEFT, RIGHT, STRAIGHT, RIGHT, LEFT, FOLLOW_LANE]
    try:
        steered = []
        for i, (jpeg, command) in enumerate(zip(jpegs, commands)):
            stamp_ns = 10**18 + i * 50_000_000
            through_node = ros.steer(jpeg, stamp_ns, 8.0, None, route_command=command)
            in_process = model.steer(jpeg, stamp_ns, 8.0, None, route_command=command)
            assert through_node == pytest.approx(in_process, abs=1e-4), (i, command)
            steered.append(in_process)
    finally:
        ros.close()
    # the commands mattered: the same frames steer otherwise without them
    blind = ModelController(command_checkpoint, route_commands=False)
    without = [blind.steer(j, 10**18 + i * 50_000_000, 8.0, None) for i, j in enumerate(jpegs)]
    assert np.max(np.abs(np.subtract(steered, without))) > 1e-3


def test_command_repeat_lists_turn_episodes_more_often(tmp_path):
    # drive0: follow-lane only; drive1: a left turn in its second half
    commands = [[FOLLOW_LANE] * 40, [FOLLOW_LANE] * 20 + [LEFT] * 20]
    root = _command_set(tmp_path / 'set', commands)
    base = dict(sequence_length=10, episode_windows=2, val_fraction=0.0, num_workers=0)
    plain = prepare_data([root], TrainConfig(**base))
    repeated = prepare_data([root], TrainConfig(**base, command_repeat=3))
    assert len(plain.episodes.episodes) == 4           # 2 drives x 40 frames / (2 x 10)
    turn = [e for e in plain.episodes.episodes
            if any(plain.episodes.windows[w][0] == 1 and plain.episodes.windows[w][1] >= 20
                   for w in e)]
    assert len(turn) == 1
    # the one turn episode appears 3 times, every other once; windows and frames unchanged
    assert sorted(map(tuple, repeated.episodes.episodes)) == sorted(
        [tuple(e) for e in plain.episodes.episodes] + [tuple(turn[0])] * 2)
    assert repeated.episodes.windows == plain.episodes.windows
    with pytest.raises(ConfigError, match='command_repeat'):
        TrainConfig(command_repeat=0)


def test_turn_weight_weighs_the_frames_under_a_turn_command():
    # 2 lanes x 4 frames; the error is 1 on the two LEFT frames, 0 elsewhere; one padding frame
    pred = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 5.0]])
    u = torch.zeros(2, 4)
    valid = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0]])
    commands = torch.tensor([[LEFT, LEFT, FOLLOW_LANE, FOLLOW_LANE], [FOLLOW_LANE] * 4])
    # weight 1 is the plain mean over the 7 valid frames, whatever the commands
    assert float(steering_l1(pred, u, valid)) == pytest.approx(2 / 7)
    assert float(steering_l1(pred, u, valid, commands, 1.0)) == pytest.approx(2 / 7)
    # weight 3: the two turn frames count 3 times each, padding still not at all
    assert float(steering_l1(pred, u, valid, commands, 3.0)) == pytest.approx(6 / (6 + 5))
    with pytest.raises(ConfigError, match='turn_weight'):
        TrainConfig(turn_weight=0)
