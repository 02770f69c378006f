"""The simulator episode loop shared by recording and closed loop, on a scripted stand-in sim."""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from signattn_driver.sim.episode import (EpisodeDriver, EpisodeLimits, frame_stamp_ns,
                                         run_episode, STAMP_ORIGIN_NS)
from signattn_driver.sim.metadrive_adapter import SimState


class ScriptedSim:
    """Drives a straight road at 10 m/s; off the road on the frames in `off_road`."""

    def __init__(self, off_road=(), crash_at=None, progress=True, rate_hz=20.0):
        self.config = SimpleNamespace(rate_hz=rate_hz)
        self.off_road, self.crash_at, self.progress = set(off_road), crash_at, progress
        self.applied = []
        self.step_index = 0

    def _state(self):
        image = np.full((8, 16, 3), 10 * (self.step_index % 20), np.uint8)
        return SimState(image_bgr=image, time_s=self.step_index / 20, steering=0.0,
                        front_wheel_angle_rad=0.0, speed_mps=10.0, lateral_offset_m=-0.25,
                        route_progress_m=0.5 * self.step_index if self.progress else 0.0,
                        route_length_m=1000.0, out_of_road=self.step_index in self.off_road,
                        crashed=self.step_index == self.crash_at, arrived=False,
                        position_m=(0.0, 0.0), heading_rad=0.0)

    def reset(self, seed):
        self.step_index = 0
        return self._state()

    def expert_action(self):
        return 0.1, 0.5

    def step(self, steering, throttle):
        self.applied.append(steering)
        self.step_index += 1
        return self._state()


class ConstantDriver(EpisodeDriver):
    def __init__(self, command=-0.3, noise=0.0):
        self.command, self.noise = command, noise
        self.seen, self.observed = [], []

    def steer(self, frame, sim):
        self.seen.append(frame)
        return self.command

    def observe(self, frame, command, in_charge):
        self.observed.append((command, in_charge))

    def perturbation(self):
        return self.noise


def test_frames_are_stamped_from_one_origin_an_hour_apart_per_episode():
    assert frame_stamp_ns(0, 0, 20.0) == STAMP_ORIGIN_NS
    assert frame_stamp_ns(0, 3, 20.0) - frame_stamp_ns(0, 2, 20.0) == 50_000_000
    assert frame_stamp_ns(2, 0, 20.0) - frame_stamp_ns(1, 0, 20.0) == 3600 * 10**9
    driver, sim = ConstantDriver(), ScriptedSim()
    run_episode(sim, driver, seed=1, episode_index=2, limits=EpisodeLimits(max_frames=3),
                jpeg_quality=75)
    assert [f.stamp_ns for f in driver.seen] == [frame_stamp_ns(2, k, 20.0) for k in range(3)]
    # the driver sees the JPEG of the frame's own image
    decoded = cv2.imdecode(np.frombuffer(driver.seen[1].jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert np.abs(decoded.astype(int) - driver.seen[1].state.image_bgr).max() <= 2


def test_an_event_hands_the_wheel_to_the_expert_for_the_takeover():
    # off the road after steps 3-4 and again after step 6 (during the takeover): one event
    sim = ScriptedSim(off_road={3, 4, 6})
    driver = ConstantDriver(command=-0.3, noise=0.01)
    episode = run_episode(sim, driver, seed=0, episode_index=0,
                          limits=EpisodeLimits(max_frames=12, takeover_frames=5),
                          jpeg_quality=75)
    in_charge = [c for _, c in driver.observed]
    assert in_charge == [True] * 3 + [False] * 5 + [True] * 4
    assert episode.out_of_road_events == 1 and episode.frames_in_charge == 7
    # the driver saw every frame; the expert's command (+ noise) was applied in the takeover
    assert len(driver.seen) == 12 and episode.end == 'timeout' and episode.frames == 12
    np.testing.assert_allclose(sim.applied, [-0.29] * 3 + [0.11] * 5 + [-0.29] * 4)
    # in-charge frames off the road count, their offsets do not
    assert episode.frames_off_road == 0 and len(episode.offsets_m) == 7
    # with their sign (+ = left) and where on the route they were (frames 0-2 and 8-11)
    assert episode.signed_offsets_m == [-0.25] * 7
    assert episode.offset_route_m == [0.5 * k for k in (0, 1, 2, 8, 9, 10, 11)]
    assert episode.km == pytest.approx(12 * 10 / 20 / 1000)
    assert episode.km_in_charge == pytest.approx(7 * 10 / 20 / 1000)
    assert episode.autonomous_completion == pytest.approx(3 * 0.5 / 1000)


def test_episode_ends_off_road_stalled_or_crashed():
    limits = EpisodeLimits(max_frames=100, max_off_road_frames=4, timeout_end='max_frames')
    off = run_episode(ScriptedSim(off_road=range(10, 100)), ConstantDriver(), 0, 0, limits, 75)
    assert off.end == 'off_road' and off.frames == 14
    stalled = run_episode(ScriptedSim(progress=False), ConstantDriver(), 0, 0,
                          EpisodeLimits(max_frames=100, stall_frames=20), 75)
    assert stalled.end == 'stalled' and stalled.frames == 21
    assert stalled.autonomous_completion == 0.0
    crashed = run_episode(ScriptedSim(crash_at=7), ConstantDriver(), 0, 0, limits, 75)
    assert crashed.end == 'crashed' and crashed.frames == 7
    assert run_episode(ScriptedSim(), ConstantDriver(), 0, 0, limits, 75).end == 'max_frames'


def test_summary_splits_the_offsets_by_place_and_keeps_their_side():
    from signattn_driver.sim.closed_loop import summarize

    def episode(seed, signed, places):
        return {'seed': seed, 'end': 'arrived', 'frames': len(signed), 'wall_s': 1.0,
                'route_completion': 1.0, 'autonomous_completion': 1.0,
                'out_of_road_events': 0, 'km_in_charge': 0.1, 'frames_in_charge': len(signed),
                'frames_off_road': 0, 'out_of_road_places': [],
                'offsets_m': [abs(x) for x in signed], 'signed_offsets_m': signed,
                'offset_places': places}
    summary = summarize([episode(1, [0.1, 0.3, -0.2], ['road', 'road', 'roundabout']),
                         episode(2, [0.2], ['road'])])
    assert summary['lateral_offset_mean_m'] == pytest.approx(0.2)
    assert summary['lateral_offset_signed_mean_m'] == pytest.approx(0.1)      # 0.4 / 4
    assert summary['lateral_offset_by_place'] == {
        'road': {'frames': 3, 'mean_m': pytest.approx(0.2)},
        'roundabout': {'frames': 1, 'mean_m': pytest.approx(0.2)}}
    first = summary['per_episode'][0]
    assert first['lateral_offset_by_place']['road'] == {'frames': 2, 'mean_m': pytest.approx(0.2)}
    assert first['lateral_offset_signed_mean_m'] == pytest.approx(0.2 / 3)
    assert not {'offsets_m', 'signed_offsets_m', 'offset_places'} & set(first)
