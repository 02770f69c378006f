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
from signattn_driver.sim.recording import (NoiseConfig, simulate, SimulationConfig,
                                           steering_wheel_rad, SteeringNoise)
from signattn_driver.vehicle import load_vehicle

needs_sim = pytest.mark.skipif(
    not is_available(), reason='MetaDrive not installed (pip install .[sim], '
    'requirements-sim.txt) or no EGL (apt libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri)')
# Small and traffic-free: deterministic, and fast on a 2-core CI machine.
SMALL = dict(width_px=160, height_px=80, traffic_density=0.0)


def test_adapter_reports_the_missing_extra():
    code = ("import sys\n"
            "sys.modules['metadrive'] = None\nsys.modules['panda3d'] = None\n"
            "from signattn_driver.sim import metadrive_adapter as m\n"
            "assert not m.is_available()\n"
            "try:\n    m.MetaDriveSim()\nexcept m.SimulatorError as e:\n    print(e)\n")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert 'pip install .[sim]' in result.stdout


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
    assert 0.25 < expert['autonomous_completion'] < 0.5      # 20 s of a ~520 m route
    assert zero['autonomous_completion'] < 0.6 * expert['autonomous_completion']
    assert zero['out_of_road_events'] >= 1 and zero['out_of_road_per_km'] > 1.0
    # an untrained model drives too: every frame went through it, the metrics are finite
    assert tiny['per_episode'][0]['frames'] == 40 and math.isfinite(tiny['route_completion'])


def test_ros_controller_steers_like_the_in_process_model(tiny_checkpoint, camera_frames,
                                                         ros_domain_id):
    pytest.importorskip('rclpy', reason='--through-ros needs rclpy')
    from signattn_driver.sim.closed_loop import ModelController
    from signattn_driver.ros.sim_controller import RosController
    model = ModelController(tiny_checkpoint, vehicle='metadrive')
    ros = RosController(tiny_checkpoint, vehicle='metadrive')
    try:
        for i, frame in enumerate(camera_frames):
            jpeg = cv2.imencode('.jpg', frame)[1].tobytes()
            stamp_ns = 10**18 + i * 50_000_000
            through_node = ros.steer(jpeg, stamp_ns, 8.0, sim=None)
            in_process = model.steer(jpeg, stamp_ns, 8.0, sim=None)
            # same checkpoint, same JPEG, same preprocessing on the CPU: same command
            assert through_node == pytest.approx(in_process, abs=1e-4)
            assert in_process != 0.0
    finally:
        ros.close()
    assert ros.process.returncode is not None      # the node subprocess was stopped
