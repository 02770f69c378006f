"""Closed-loop driving in MetaDrive: a controller steers, the IDM expert keeps the speed.

Each episode is one held-out map (seed) from start to destination. Every frame the controller
sees the camera image and returns a steering command; MetaDrive's IDM expert supplies the
throttle. When the car leaves the road (off every lane, or on a solid line or the kerb, as
MetaDrive tests them) that is an out-of-road event, and the expert takes over for `takeover_s`
(a safety driver's intervention) before the controller gets the wheel back. The model keeps
seeing frames during a takeover, so its LSTM state stays current.

Metrics per controller (over all episodes):
- route_completion: mean fraction of the route driven when the episode ended (arrival,
  crash, timeout, or `stall_s` without progress: lost off the route);
  autonomous_completion: the same up to the first event or crash.
- lateral_offset_mean_m / _p95_m: |distance to the nearest lane centre| over the frames the
  controller was in charge and on the road; off_road_share: the share of its frames off it.
- out_of_road_per_km: events per km driven (km while the controller was in charge).

Controllers: `ExpertController` (MetaDrive's IDM, the ceiling), `ZeroController` (wheel held
straight, the floor), `ModelController` (a checkpoint through `Predictor`, in-process) and
`signattn_driver.ros.sim_controller.RosController` (the real drive node over DDS).
"""

from dataclasses import asdict, dataclass, field
import logging
import math
import time

import cv2
import numpy as np

from signattn_driver.sim.metadrive_adapter import (front_wheel_rad_to_steering, MetaDriveSim,
                                                   SimConfig)
from signattn_driver.vehicle import load_vehicle, steering_from_inverse_radius

# Maps signattn simulate does not visit by default (its drives start at --seed, 0 or 100).
HELD_OUT_SEEDS = (5001, 5002, 5003)
STAMP_ORIGIN_NS = 1_700_000_000 * 10**9

log = logging.getLogger(__name__)


class ClosedLoopError(RuntimeError):
    """A controller that cannot start or stopped answering."""


@dataclass
class ClosedLoopConfig:
    """Which maps, for how long, and how interventions work."""

    seeds: tuple = HELD_OUT_SEEDS
    max_seconds: float = 150.0    # per episode; MetaDrive's 7-block routes take ~65 s
    takeover_s: float = 2.0       # expert drives this long after an out-of-road event
    stall_s: float = 20.0         # end an episode that makes no route progress this long
    sim: SimConfig = field(default_factory=SimConfig)
    jpeg_quality: int = 75        # frames go through JPEG as in the bags and over ROS

    def to_dict(self) -> dict:
        """Plain dict for reports."""
        return asdict(self)


class ExpertController:
    """MetaDrive's IDM expert (the ceiling)."""

    name = 'expert'

    def reset(self):
        """Nothing to forget."""

    def steer(self, jpeg: bytes, stamp_ns: int, speed_mps: float, sim: MetaDriveSim) -> float:
        """Return the expert's steering command."""
        return sim.expert_action()[0]


class ZeroController(ExpertController):
    """Wheel held straight (the floor)."""

    name = 'zero'

    def steer(self, jpeg, stamp_ns, speed_mps, sim) -> float:
        """Return 0."""
        return 0.0


class InverseRadiusController(ExpertController):
    """Shared: turn the model's u (1/m) into a MetaDrive command for the simulated car."""

    def __init__(self, vehicle='metadrive'):
        self.profile = load_vehicle(vehicle)

    def command(self, u_per_m: float, speed_mps: float) -> float:
        """Eq. 3 inverted for the simulated car, then its 40 deg lock."""
        if not math.isfinite(u_per_m):
            return 0.0
        theta = float(steering_from_inverse_radius(u_per_m, speed_mps, self.profile))
        return front_wheel_rad_to_steering(theta / self.profile.steering_ratio)


class ModelController(InverseRadiusController):
    """A checkpoint driving in-process through `Predictor` (same preprocessing as the node)."""

    name = 'model'

    def __init__(self, checkpoint_path, device='cpu', vehicle='metadrive'):
        super().__init__(vehicle)
        from signattn_driver.predictor import Predictor
        from signattn_driver.preprocessing import decode_image
        self._decode = decode_image
        self.predictor = Predictor(checkpoint_path, device=device)

    def reset(self):
        """Start a new sequence (a new map)."""
        self.predictor.reset()

    def steer(self, jpeg, stamp_ns, speed_mps, sim) -> float:
        """Run the network on the decoded frame."""
        u, _ = self.predictor.step(self._decode(jpeg), 'bgr', want_attention=False)
        return self.command(u, speed_mps)


def drive_episode(sim: MetaDriveSim, controller, seed: int, config: ClosedLoopConfig,
                  episode_index: int = 0) -> dict:
    """Drive one map with `controller`; return the episode's raw measurements."""
    state = sim.reset(seed)
    controller.reset()
    encode = [cv2.IMWRITE_JPEG_QUALITY, int(config.jpeg_quality)]
    rate = config.sim.rate_hz
    takeover_frames = int(round(config.takeover_s * rate))
    offsets, events, km_in_charge = [], 0, 0.0
    first_event_progress = None
    takeover_left, was_off, frames = 0, False, 0
    frames_in_charge = frames_off_road = 0
    best_progress, best_frame = state.route_progress_m, 0
    end = 'timeout'
    started = time.perf_counter()
    for frames in range(1, int(config.max_seconds * rate) + 1):
        stamp_ns = (STAMP_ORIGIN_NS + episode_index * 3600 * 10**9
                    + int(round(frames * 1e9 / rate)))
        _, jpeg = cv2.imencode('.jpg', state.image_bgr, encode)
        expert_steering, throttle = sim.expert_action()
        command = controller.steer(jpeg.tobytes(), stamp_ns, state.speed_mps, sim)
        in_charge = takeover_left == 0
        if in_charge:
            frames_in_charge += 1
            if state.out_of_road:
                # off every lane MetaDrive's localization keeps the last lane: no offset
                frames_off_road += 1
            else:
                offsets.append(abs(state.lateral_offset_m))
        else:
            takeover_left -= 1
            command = expert_steering
        state = sim.step(command, throttle)
        if in_charge:
            km_in_charge += state.speed_mps / rate / 1000.0
        if state.out_of_road and not was_off and in_charge:
            events += 1
            takeover_left = takeover_frames
            if first_event_progress is None:
                first_event_progress = state.route_completion
        was_off = state.out_of_road
        if state.route_progress_m > best_progress + 1.0:
            best_progress, best_frame = state.route_progress_m, frames
        if state.arrived:
            end = 'arrived'
            break
        if state.crashed or frames - best_frame > config.stall_s * rate:
            end = 'crashed' if state.crashed else 'stalled'
            if first_event_progress is None:
                first_event_progress = state.route_completion
            break
    wall_s = time.perf_counter() - started
    return {'seed': seed, 'end': end, 'frames': frames, 'wall_s': wall_s,
            'route_completion': state.route_completion,
            'autonomous_completion': (state.route_completion if first_event_progress is None
                                      else first_event_progress),
            'out_of_road_events': events, 'km_in_charge': km_in_charge,
            'frames_in_charge': frames_in_charge, 'frames_off_road': frames_off_road,
            'offsets_m': offsets}


def summarize(episodes: list) -> dict:
    """Aggregate episodes into the metrics of the module docstring."""
    offsets = np.concatenate([np.asarray(e['offsets_m'], np.float64) for e in episodes]) \
        if episodes else np.zeros(0)
    km = sum(e['km_in_charge'] for e in episodes)
    events = sum(e['out_of_road_events'] for e in episodes)
    frames = sum(e['frames'] for e in episodes)
    wall = sum(e['wall_s'] for e in episodes)
    return {
        'episodes': len(episodes),
        'route_completion': float(np.mean([e['route_completion'] for e in episodes])),
        'autonomous_completion': float(np.mean([e['autonomous_completion']
                                                for e in episodes])),
        'lateral_offset_mean_m': float(offsets.mean()) if len(offsets) else float('nan'),
        'lateral_offset_p95_m': float(np.percentile(offsets, 95)) if len(offsets)
        else float('nan'),
        'out_of_road_events': int(events), 'km_in_charge': float(km),
        'off_road_share': sum(e['frames_off_road'] for e in episodes) / max(
            1, sum(e['frames_in_charge'] for e in episodes)),
        'out_of_road_per_km': float(events / km) if km > 0 else float('nan'),
        'crashes': sum(e['end'] == 'crashed' for e in episodes),
        'steps_per_s': frames / wall if wall > 0 else float('nan'),
        'per_episode': [{k: v for k, v in e.items() if k != 'offsets_m'} for e in episodes],
    }


def evaluate_controllers(controllers: list, config: ClosedLoopConfig, progress=None) -> dict:
    """Drive every controller over the same maps; return {controller name: metrics}.

    Args:
        controllers: objects with .name, .reset() and .steer(jpeg, stamp_ns, speed_mps, sim).
        config: maps, limits, takeover.
        progress: optional callable(controller_name, seed) called before each episode.
    """
    results = {}
    with MetaDriveSim(config.sim) as sim:
        for controller in controllers:
            episodes = []
            for i, seed in enumerate(config.seeds):
                if progress is not None:
                    progress(controller.name, seed)
                episodes.append(drive_episode(sim, controller, seed, config, i))
            results[controller.name] = summarize(episodes)
            log.info('%s: %s', controller.name, {k: v for k, v in results[controller.name]
                                                 .items() if k != 'per_episode'})
    return {'config': config.to_dict(), 'controllers': results}
