"""Simulated drives and closed-loop driving (MetaDrive; skipped where it is not installed)."""

import math
import subprocess
import sys

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from signattn_driver.data import bag_layout
from signattn_driver.data.dataset import Dataset
from signattn_driver.sim.metadrive_adapter import is_available, MetaDriveSim, SimConfig
from signattn_driver.errors import SimulationError
from signattn_driver.sim.recording import (_Recorder, MIN_DRIVE_FRAMES, NoiseConfig, simulate,
                                           SimulationConfig, steering_wheel_rad, SteeringNoise)
from signattn_driver.vehicle import load_vehicle

needs_sim = pytest.mark.skipif(
    not is_available(), reason='MetaDrive not installed (pip install .[sim], '
    'requirements-sim.txt) or no EGL (apt libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri)')
# Small and traffic-free: deterministic, and fast on a 2-core CI machine.
SMALL = dict(width_px=160, height_px=80, traffic_density=0.0)


def _jpegs(frames, width=320):
    return [cv2.imencode('.jpg', cv2.resize(f, (width, width // 2)))[1].tobytes()
            for f in frames]


def test_controllers_share_a_small_interface_not_the_expert():
    from signattn_driver.sim.closed_loop import (Controller, ExpertController,
                                                 InverseRadiusController, ModelController,
                                                 ZeroController)
    for cls in (ExpertController, ZeroController, InverseRadiusController, ModelController):
        assert issubclass(cls, Controller)
    # the floor is not a kind of expert, and a model is not either
    assert not issubclass(ZeroController, ExpertController)
    assert not issubclass(ModelController, ExpertController)
    assert ZeroController().steer(b'', 0, 5.0, sim=None) == 0.0
    with pytest.raises(NotImplementedError):
        Controller().steer(b'', 0, 5.0, sim=None)


def test_model_controller_starts_sequences_by_the_sequence_rule(tiny_checkpoint, camera_frames):
    from signattn_driver.sim.closed_loop import ModelController
    jpegs = _jpegs(camera_frames[:5])
    controller = ModelController(tiny_checkpoint, keep_attention=True)
    period_ns, t0 = 50_000_000, 10**18

    def run(start_ns):
        return [controller.steer(j, start_ns + i * period_ns, 8.0, None)
                for i, j in enumerate(jpegs)]
    first = run(t0)
    assert controller.sequence_starts == 1
    assert controller.attention.shape == (10, 20)
    assert controller.attention.sum() == pytest.approx(1.0, abs=1e-4)
    # stamps go on at 20 Hz: the LSTM state is kept, so the same frames steer differently
    later = t0 + len(jpegs) * period_ns
    kept = run(later)
    assert controller.sequence_starts == 1
    assert np.max(np.abs(np.subtract(kept, first))) > 1e-6
    # an explicit reset (a new episode) starts again, even with contiguous stamps
    controller.reset()
    assert run(later + len(jpegs) * period_ns) == pytest.approx(first, abs=1e-6)
    # a gap longer than the rule's, and a backward jump, start again too
    assert run(t0 + 10**10) == pytest.approx(first, abs=1e-6)
    assert run(t0) == pytest.approx(first, abs=1e-6)
    assert controller.sequence_starts == 4


def test_relative_to_expert_ratios_and_goal():
    from signattn_driver.sim.closed_loop import relative_to_expert

    def metrics(auto, route, per_km, p95):
        return {'autonomous_completion': auto, 'route_completion': route,
                'out_of_road_per_km': per_km, 'lateral_offset_p95_m': p95}
    rel = relative_to_expert({'expert': metrics(0.8, 1.0, 2.0, 0.3),
                              'model': metrics(0.4, 0.5, 4.0, 0.6),
                              'good': metrics(0.76, 0.9, 2.2, 0.45),
                              'zero': metrics(0.1, 0.5, float('nan'), float('nan'))})
    assert rel['expert']['autonomous_completion_ratio'] == 1.0 and rel['expert']['meets_goal']
    assert rel['model']['autonomous_completion_ratio'] == pytest.approx(0.5)
    assert rel['model']['out_of_road_per_km_ratio'] == pytest.approx(2.0)
    assert not rel['model']['meets_goal']
    assert rel['good']['meets_goal']          # 0.95 x, 1.1 x, 0.45 m
    assert rel['zero']['out_of_road_per_km_ratio'] is None and not rel['zero']['meets_goal']
    # an expert without events: any event makes the ratio undefined, none makes it 1
    rel = relative_to_expert({'expert': metrics(1.0, 1.0, 0.0, 0.3),
                              'a': metrics(1.0, 1.0, 1.5, 0.3), 'b': metrics(1.0, 1.0, 0.0, 0.3)})
    assert rel['a']['out_of_road_per_km_ratio'] is None and not rel['a']['meets_goal']
    assert rel['b']['out_of_road_per_km_ratio'] == 1.0 and rel['b']['meets_goal']
    assert relative_to_expert({'model': metrics(1, 1, 0, 0)}) == {}


def test_episode_animation_draws_attention_and_trace(tmp_path, camera_frames):
    from PIL import Image

    from signattn_driver.sim.animation import EpisodeAnimation, TRACE_CONTROLLER, TRACE_TAKEOVER
    from signattn_driver.sim.metadrive_adapter import SimState

    class FakeSim:
        def lane_outlines(self):
            road = np.array([[0, -2], [100, -2], [100, 2], [0, 2]], np.float32)
            side = np.array([[50, 0], [54, 0], [54, 60], [50, 60]], np.float32)
            return [(road, True), (side, False)]
    attention = np.zeros((10, 20), np.float32)
    attention[6:9, 14:17] = 1.0 / 9           # the model looks low on the right
    animation = EpisodeAnimation(FakeSim(), lambda: attention, stride=2, panel_px=128)
    image = cv2.resize(camera_frames[0], (320, 160))
    for i in range(40):
        state = SimState(image_bgr=image, time_s=i * 0.05, steering=0.0,
                         front_wheel_angle_rad=0.0, speed_mps=8.0, lateral_offset_m=0.0,
                         route_progress_m=2.0 * i, route_length_m=100.0,
                         out_of_road=20 <= i < 25, crashed=False, arrived=False,
                         position_m=(2.0 * i, 0.0), heading_rad=0.0)
        animation(state, 0.2, 0.1, in_charge=not 20 < i < 30)
    assert len(animation.frames) == 20 and animation.events == 1
    path = animation.save(tmp_path / 'episode.gif')
    with Image.open(path) as gif:
        assert gif.n_frames == 20 and gif.size == (256, 128)
        assert gif.info['duration'] == 100        # 2 frames at 20 Hz: played in real time
        gif.seek(19)
        last = np.asarray(gif.convert('RGB'))[:, :, ::-1].astype(int)
    camera, top_down = last[:64, :128], last[:, 128:]

    def near(panel, bgr):
        return int((np.abs(panel - np.array(bgr)).sum(axis=2) < 60).sum())
    # the trace shows who drove: green while the controller had the wheel, orange after
    assert near(top_down, TRACE_CONTROLLER) > 10 and near(top_down, TRACE_TAKEOVER) > 10
    # the attention overlay is hot (red) where the model looked, cold (blue) on the left
    redness = camera[:, :, 2] - camera[:, :, 0]
    assert redness[36:54, 88:106].mean() > redness[:, :40].mean() + 80
    with pytest.raises(ValueError):
        EpisodeAnimation(FakeSim()).save(tmp_path / 'empty.gif')

    # with the contribution map: a middle panel, blue where cells push the wheel left
    phi = np.zeros((10, 20), np.float32)
    phi[6:9, 2:5] = 0.01                     # pushes left, low on the left
    phi[6:9, 14:17] = -0.002                 # pushes right, weaker
    both = EpisodeAnimation(FakeSim(), lambda: attention, stride=2, panel_px=128,
                            contribution_source=lambda: phi)
    both(state, 0.2, 0.1, in_charge=True)
    frame = np.asarray(both.frames[0].convert('RGB'))[:, :, ::-1].astype(int)
    assert frame.shape == (128, 384, 3)
    middle = frame[:64, 128:256]
    blueness = middle[:, :, 0] - middle[:, :, 2]
    # rows 40:56 are road in the camera picture; cells (6..8, 2..4) at x 13..32, none at 48..80
    assert blueness[40:56, 15:30].mean() > blueness[40:56, 48:80].mean() + 60


def test_adapter_reports_the_missing_extra():
    code = ("import sys\n"
            "sys.modules['metadrive'] = None\nsys.modules['panda3d'] = None\n"
            "from signattn_driver.sim import metadrive_adapter as m\n"
            "assert not m.is_available()\n"
            "try:\n    m.MetaDriveSim()\nexcept m.MetaDriveError as e:\n    print(e)\n")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert 'pip install .[sim]' in result.stdout


class _FakeDrives(_Recorder):
    """Drives that last `frames_per_drive` frames (at most what is left); short ones dropped."""

    def __init__(self, frames_per_drive: int):
        super().__init__(SimulationConfig(seed=100), None, None, None, None, None)
        self.frames_per_drive, self.asked = frames_per_drive, []

    def record_drive(self, sim, index, frames_done, frames_left):
        self.asked.append((index, frames_done, frames_left))
        frames = min(frames_left, self.frames_per_drive)
        return None if frames < MIN_DRIVE_FRAMES else {'frames': frames, 'index': index}


def test_recording_stops_when_the_rest_is_too_short_for_a_drive():
    # 2 x 491 frames leave 18 of 1000: one more drive would be dropped, again and again
    # (the loop that kept a DAgger simulation running after its last drive)
    recorder = _FakeDrives(491)
    drives = recorder.record(None, 1000)
    assert [d['frames'] for d in drives] == [491, 491]
    assert recorder.asked == [(0, 0, 1000), (1, 491, 509)]
    # an exact fit still fills the target, the last drive cut to what is left
    assert [d['frames'] for d in _FakeDrives(300).record(None, 1000)] == [300, 300, 300, 100]


def test_recording_gives_up_when_every_drive_is_dropped():
    recorder = _FakeDrives(MIN_DRIVE_FRAMES - 1)
    with pytest.raises(SimulationError, match='maps 100-124'):
        recorder.record(None, 1000)
    assert len(recorder.asked) == 25


def test_steering_noise_is_bounded_triangular_pulses():
    config = NoiseConfig(amplitude=0.2, interval_s=2.0, duration_s=1.0)
    noise = SteeringNoise(config, np.random.default_rng(0), dt_s=0.05)
    values = np.array([noise() for _ in range(20 * 600)])
    assert np.abs(values).max() <= 0.2 + 1e-12
    active = values != 0
    starts = np.flatnonzero(active[1:] & ~active[:-1])
    # Poisson starts every interval_s on average, after each 1 s pulse: ~ 600 / 3 pulses
    assert 120 < len(starts) < 300
    pulse = values[starts[0] + 1:starts[0] + 21]
    peak = int(np.argmax(np.abs(pulse)))
    assert 8 <= peak <= 11                                 # peak in the middle of the pulse
    assert np.all(np.diff(np.abs(pulse[:peak + 1])) > 0)   # ramps up, then down
    assert NoiseConfig(amplitude=0.0) and not np.any([SteeringNoise(
        NoiseConfig(amplitude=0.0), np.random.default_rng(0), 0.05)() for _ in range(400)])


@needs_sim
@pytest.mark.slow
def test_simulated_drive_bag_labels_and_masks(tmp_path):
    config = SimulationConfig(minutes=8 / 60, seed=3, sim=SimConfig(**SMALL),
                              noise=NoiseConfig(amplitude=0.2, interval_s=2.0), val_every=0)
    result = simulate(tmp_path / 'sim', config)
    assert result['frames'] == 160 and len(result['drives']) == 1
    name = result['drives'][0]['name']
    profile = load_vehicle('metadrive')

    # The bag reads back in the converter's layout, one ground-truth triple per frame.
    with Reader(tmp_path / 'sim' / 'bags' / name) as reader:
        topics = {c.topic: c.msgcount for c in reader.connections}
        assert topics[bag_layout.camera_topic('center')] == 160
        assert topics[bag_layout.STEERING_TOPIC] == topics[bag_layout.TWIST_TOPIC] == 160
        theta, jpeg_shapes = [], set()
        for conn, _, raw in reader.messages():
            msg = bag_layout.TYPESTORE.deserialize_cdr(raw, conn.msgtype)
            if conn.topic == bag_layout.STEERING_TOPIC:
                theta.append(msg.position[0])
            elif conn.topic == bag_layout.camera_topic('center'):
                jpeg_shapes.add(cv2.imdecode(msg.data, cv2.IMREAD_COLOR).shape)
    assert jpeg_shapes == {(80, 160, 3)}

    # Replaying the map with the expert and the same noise gives the same commands: the
    # labels are the expert's steering (not expert + noise) through the vehicle profile.
    with MetaDriveSim(config.sim) as sim:
        sim.reset(3)
        noise = SteeringNoise(config.noise, np.random.default_rng([3, 3]), sim.dt_s)
        expert, applied = [], []
        for _ in range(160):
            steering, throttle = sim.expert_action()
            expert.append(steering)
            applied.append(steering + noise())
            sim.step(applied[-1], throttle)
    expected = [steering_wheel_rad(s, profile) for s in expert]
    np.testing.assert_allclose(theta, expected, atol=1e-9)
    assert np.max(np.abs(np.subtract(applied, expert))) > 0.05   # the noise was applied
    # a left command is a positive angle: 16 x 40 deg at full lock
    assert math.isclose(steering_wheel_rad(1.0, profile), 16 * math.radians(40))

    # The dataset has the same frames, eq. 3 labels, and masks over the painted lines.
    drive = Dataset(tmp_path / 'sim' / 'dataset').drive(name)
    assert len(drive) == 160
    np.testing.assert_allclose(drive.labels['steering_wheel_rad'], theta, atol=1e-12)
    frames, masks = drive.frames(0, 160), drive.masks(0, 160)
    h, s, v = (frames[..., i].astype(int) for i in range(3))
    paint = ((v > 170) & (s < 60)) | ((h > 15) & (h < 35) & (s > 100) & (v > 120))
    paint[:, :45] = False                     # the road below the horizon, not clouds
    near = np.stack([cv2.dilate((m > 0).astype(np.uint8), np.ones((3, 3), np.uint8))
                     for m in masks]) > 0
    recall = (paint & near).sum() / paint.sum()
    shifted = (paint & np.roll(near, 20, axis=2)).sum() / paint.sum()
    assert paint.sum() > 20 * 160             # the frames do show markings
    assert recall > 0.8 and shifted < 0.5 * recall, (recall, shifted)
    assert set(np.unique(masks)) <= {0, 1, 2} and 0.01 < (masks > 0).mean() < 0.3


@needs_sim
@pytest.mark.slow
def test_closed_loop_metrics_of_expert_and_floor(tiny_checkpoint):
    from signattn_driver.sim.closed_loop import (ClosedLoopConfig, drive_episode, ExpertController,
                                                 ModelController, summarize, ZeroController)
    # Map 5001 turns at a T junction 55 m in: the zero-steering floor goes straight on and
    # leaves the road about 16 s after the start.
    config = ClosedLoopConfig(seeds=(5001,), max_seconds=20.0, sim=SimConfig(**SMALL))
    with MetaDriveSim(config.sim) as sim:
        expert = summarize([drive_episode(sim, ExpertController(), 5001, config)])
        zero = summarize([drive_episode(sim, ZeroController(), 5001, config)])
        config.max_seconds = 2.0
        tiny = summarize([drive_episode(sim, ModelController(tiny_checkpoint), 5001, config)])
    assert expert['out_of_road_events'] == 0 and expert['crashes'] == 0
    assert expert['lateral_offset_p95_m'] < 0.6
    # the route turns at the T junction about a tenth of the way in
    kind, fraction = expert['per_episode'][0]['route_junctions'][0]
    assert kind == 't_junction' and 0.05 < fraction < 0.15
    # one episode: its own offsets are the summary's
    assert expert['per_episode'][0]['lateral_offset_p95_m'] == expert['lateral_offset_p95_m']
    assert 0.25 < expert['autonomous_completion'] < 0.5      # 20 s of a ~520 m route
    assert zero['autonomous_completion'] < 0.6 * expert['autonomous_completion']
    assert zero['out_of_road_events'] >= 1 and zero['out_of_road_per_km'] > 1.0
    # an untrained model drives too: every frame went through it, the metrics are finite
    assert tiny['per_episode'][0]['frames'] == 40 and math.isfinite(tiny['route_completion'])


@needs_sim
@pytest.mark.slow
def test_drive_sim_cli_reports_ratios_and_writes_the_animation(tmp_path, tiny_checkpoint,
                                                               capsys):
    import hashlib
    import json

    from PIL import Image

    from signattn_driver.cli import main
    out, gif = tmp_path / 'drive.json', tmp_path / 'episode.gif'
    rc = main(['drive-sim', '--checkpoint', str(tiny_checkpoint), '--seeds', '5001',
               '--max-seconds', '1.5', '--traffic', '0', '--out', str(out),
               '--animation', str(gif), '--animation-stride', '3'])
    assert rc == 0
    results = json.loads(out.read_text())
    assert set(results['controllers']) == {'expert', 'zero', 'model'}
    assert results['checkpoint']['path'] == str(tiny_checkpoint)
    assert results['checkpoint']['sha256'] == hashlib.sha256(
        tiny_checkpoint.read_bytes()).hexdigest()
    assert results['config']['sim']['route']['roundabout_commands'] == 'per_exit'
    rel = results['relative_to_expert']
    expert, model = results['controllers']['expert'], results['controllers']['model']
    assert rel['expert']['autonomous_completion_ratio'] == 1.0
    assert rel['model']['autonomous_completion_ratio'] == pytest.approx(
        model['autonomous_completion'] / expert['autonomous_completion'])
    assert 'auto/exp' in capsys.readouterr().out
    # 30 frames of the animated episode, every 3rd kept: alpha + strip | phi + scale | map
    assert results['animation']['frames'] == 30 and results['animation']['animation_frames'] == 10
    with Image.open(gif) as image:
        assert image.n_frames == 10 and image.size == (768, 256)


@needs_sim
@pytest.mark.slow
def test_dagger_drive_is_labelled_by_the_expert(tmp_path, tiny_checkpoint, monkeypatch):
    from signattn_driver.sim import closed_loop, recording
    log = {'expert': [], 'model': [], 'applied': []}

    class LoggedSim(MetaDriveSim):
        def expert_action(self):
            action = super().expert_action()
            log['expert'].append(action[0])
            return action

        def step(self, steering, throttle):
            log['applied'].append(steering)
            return super().step(steering, throttle)

    class LoggedModel(closed_loop.ModelController):
        def steer(self, jpeg, stamp_ns, speed_mps, sim, route_command=0):
            log['model'].append(super().steer(jpeg, stamp_ns, speed_mps, sim, route_command))
            return log['model'][-1]
    monkeypatch.setattr(recording, 'MetaDriveSim', LoggedSim)
    monkeypatch.setattr(closed_loop, 'ModelController', LoggedModel)
    config = SimulationConfig(minutes=3 / 60, seed=3, sim=SimConfig(**SMALL),
                              noise=NoiseConfig(amplitude=0.0), val_every=0, write_bags=False,
                              policy=str(tiny_checkpoint), beta=0.25)
    result = simulate(tmp_path / 'dagger', config)
    drive_summary = result['drives'][0]
    assert result['frames'] == 60 and drive_summary['policy_frames'] == 60
    expert, model = np.array(log['expert']), np.array(log['model'])
    assert len(expert) == len(model) == len(log['applied']) == 60
    # the model steered: 3/4 of its command and 1/4 of the expert's were applied ...
    np.testing.assert_allclose(log['applied'], 0.25 * expert + 0.75 * model, atol=1e-12)
    assert drive_summary['policy_expert_mae'] == pytest.approx(np.mean(np.abs(model - expert)))
    assert drive_summary['policy_expert_mae'] > 0.005
    # ... and every visited frame is labelled with the expert's command, not the blend
    labels = Dataset(tmp_path / 'dagger' / 'dataset').drive(drive_summary['name']).labels
    profile = load_vehicle('metadrive')
    np.testing.assert_allclose(labels['steering_wheel_rad'],
                               [steering_wheel_rad(s, profile) for s in expert], atol=1e-9)
    with pytest.raises(ValueError):
        SimulationConfig(beta=1.5)


def test_ros_controller_steers_like_the_in_process_model(tiny_checkpoint, camera_frames,
                                                         ros_domain_id):
    pytest.importorskip('rclpy', reason='--through-ros needs rclpy')
    from signattn_driver.sim.closed_loop import ModelController
    from signattn_driver.ros.sim_controller import RosController
    model = ModelController(tiny_checkpoint, vehicle='metadrive')
    ros = RosController(tiny_checkpoint, vehicle='metadrive')
    jpegs = [cv2.imencode('.jpg', frame)[1].tobytes() for frame in camera_frames]
    try:
        ros.reset()
        model.reset()          # a new episode before the node has seen a frame: nothing to do
        first = []
        for i, jpeg in enumerate(jpegs):
            stamp_ns = 10**18 + i * 50_000_000
            through_node = ros.steer(jpeg, stamp_ns, 8.0, sim=None)
            in_process = model.steer(jpeg, stamp_ns, 8.0, sim=None)
            # same checkpoint, same JPEG, same preprocessing on the CPU: same command
            assert through_node == pytest.approx(in_process, abs=1e-4)
            assert in_process != 0.0
            first.append(in_process)
        # a new episode with contiguous stamps: both restart their LSTM (the node through
        # its ~/reset_state service) and steer as at the first frames
        ros.reset()
        model.reset()
        assert ros.resets == 1
        for i, jpeg in enumerate(jpegs[:3]):
            stamp_ns = 10**18 + (len(jpegs) + i) * 50_000_000
            through_node = ros.steer(jpeg, stamp_ns, 8.0, sim=None)
            assert through_node == pytest.approx(model.steer(jpeg, stamp_ns, 8.0, sim=None),
                                                 abs=1e-4)
            assert through_node == pytest.approx(first[i], abs=1e-4)
    finally:
        ros.close()
    assert ros.process.returncode is not None      # the node subprocess was stopped
