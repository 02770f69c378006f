"""Simulated drives: MetaDrive's IDM expert drives, we perturb its steering, and record.

Each drive is one procedural map (one seed) from its start to its destination. Every frame
(20 Hz) the expert sees the car's state and commands steering s_e; we apply s_e + n, where n is
an occasional triangular steering pulse (`NoiseConfig`), so the car drifts and the expert's
next commands steer it back: recovery is in the data, as in the camera-offset augmentation of
end-to-end driving. The label of a frame is the expert's command for that frame, never the
noise, so a model learns to recover, not to swerve. This is DART-style noise injection
(Laskey et al. 2017: perturb the supervisor while it drives, label with its intended action).

With a `policy` checkpoint the drives are DAgger-style aggregation (Ross et al. 2011): the
model steers, blended with the expert as beta * s_e + (1 - beta) * s_model, so the car visits
the states the model's own mistakes lead to, and every visited frame is still labelled with
the expert's command s_e. After an out-of-road event the expert alone drives for `takeover_s`,
so a drive goes on instead of ending off the road. Train on the new dataset together with the
earlier ones (`signattn train --data OLD NEW ...`) and repeat with the new model.

    OUT/
      simulation.json               config, per-drive summary, wall time
      bags/<drive>/                 ROS 2 bag (bag_layout): JPEG camera + ground truth
      dataset/                      training set (dataset.py) with lane/edge masks

Labels follow the converter's conventions: steering-wheel angle theta = K_s * s_e * 40 deg
with the profile config/vehicles/metadrive.yaml (+ = left), speed in m/s, u from eq. 3 of the
eq. 2-smoothed values. Dataset frames are the decoded JPEG of the bag, i.e. exactly what the
node sees when the bag is replayed.
"""

from dataclasses import asdict, dataclass, field
import json
import logging
import math
from pathlib import Path
import shutil
import time

import cv2
import numpy as np

from signattn_driver.data.bag_layout import DriveBagWriter
from signattn_driver.data.dataset import DatasetWriter
from signattn_driver.data.labels import DEFAULT_SMOOTHING, Smoother
from signattn_driver.errors import ConfigError, SimulationError
from signattn_driver.preprocessing import compressed_to_hsv_u8
from signattn_driver.sim.metadrive_adapter import (CAMERA_JPEG_QUALITY, MetaDriveSim, SimConfig,
                                                   steering_to_front_wheel_rad)
from signattn_driver.vehicle import inverse_radius_from_steering, load_vehicle

STAMP_ORIGIN_NS = 1_600_000_000 * 10**9  # drive k starts at this stamp + k hours
MIN_DRIVE_FRAMES = 40                    # shorter drives (a crash at the start) are dropped

log = logging.getLogger(__name__)


@dataclass
class NoiseConfig:
    """Steering perturbations: triangular pulses at random times (Poisson arrivals)."""

    amplitude: float = 0.15    # peak |n| as a fraction of full lock (0.15 = 6 deg front wheel)
    interval_s: float = 6.0    # mean time between pulse starts
    duration_s: float = 1.0    # pulse length: ramps up for half, down for half

    def __post_init__(self):
        """Reject negative or zero timings."""
        if self.amplitude < 0 or self.interval_s <= 0 or self.duration_s <= 0:
            raise ConfigError(f'invalid noise {self}')


class SteeringNoise:
    """Frame-by-frame values of `NoiseConfig` pulses, reproducible from a numpy Generator."""

    def __init__(self, config: NoiseConfig, rng: np.random.Generator, dt_s: float):
        self.config, self.rng, self.dt_s = config, rng, dt_s
        self._t = 0.0
        self._next = self._draw_gap()
        self._start, self._peak = None, 0.0

    def _draw_gap(self) -> float:
        return self.rng.exponential(self.config.interval_s)

    def __call__(self) -> float:
        """Return this frame's perturbation and advance one frame."""
        c = self.config
        value = 0.0
        if self._start is None and self._t >= self._next and c.amplitude > 0:
            self._start = self._t
            self._peak = self.rng.uniform(0.5, 1.0) * c.amplitude * self.rng.choice((-1.0, 1.0))
        if self._start is not None:
            phase = (self._t - self._start) / c.duration_s
            if phase >= 1.0:
                self._start = None
                self._next = self._t + self._draw_gap()
            else:
                value = self._peak * (1.0 - abs(2.0 * phase - 1.0))
        self._t += self.dt_s
        return value


@dataclass
class SimulationConfig:
    """What `simulate` records."""

    minutes: float = 1.0
    seed: int = 0                 # first map; drive k uses map seed + k
    sim: SimConfig = field(default_factory=SimConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    vehicle: str = 'metadrive'    # profile name or YAML path (eq. 3 constants)
    smoothing_alpha: float = DEFAULT_SMOOTHING
    jpeg_quality: int = CAMERA_JPEG_QUALITY
    max_drive_s: float = 180.0
    max_off_road_s: float = 2.0   # a drive ends when the expert cannot get back within this
    write_bags: bool = True
    write_dataset: bool = True
    val_every: int = 5            # every Nth drive goes to the 'val' split (0: all 'train')
    storage: str = 'mcap'
    policy: str | None = None     # DAgger: checkpoint that steers with the expert; None: expert
    beta: float = 0.5             # DAgger: the expert's share of the applied command
    takeover_s: float = 2.0       # DAgger: the expert alone drives this long after an event
    policy_device: str = 'cpu'

    def __post_init__(self):
        """Reject a blend weight outside [0, 1] or a negative takeover."""
        if not 0.0 <= self.beta <= 1.0 or self.takeover_s < 0:
            raise ConfigError(f'beta must be in [0, 1] and takeover_s >= 0, got {self.beta}, '
                              f'{self.takeover_s}')

    def to_dict(self) -> dict:
        """Plain dict for simulation.json and the dataset manifest."""
        return asdict(self)


def steering_wheel_rad(steering: float, profile) -> float:
    """Convert a MetaDrive command in [-1, 1] to the virtual steering-wheel angle in rad."""
    return profile.steering_ratio * steering_to_front_wheel_rad(steering)


def simulate(out_dir, config: SimulationConfig, overwrite: bool = False,
             progress=None) -> dict:
    """Record `config.minutes` of perturbed expert driving into `out_dir`.

    Args:
        out_dir: output folder (layout in the module docstring).
        config: what to record.
        overwrite: replace existing bags and dataset.
        progress: optional callable(frames_done) for a progress bar.

    Returns:
        The summary also written to out_dir/simulation.json.
    """
    out = Path(out_dir)
    if not (config.write_bags or config.write_dataset):
        raise SimulationError('nothing to write: enable bags or the dataset')
    bags = out / 'bags'
    if bags.exists() and any(bags.iterdir()) and config.write_bags and not overwrite:
        raise SimulationError(f'{bags} exists; pass --force to replace it')
    profile = load_vehicle(config.vehicle)
    target = int(round(config.minutes * 60.0 * config.sim.rate_hz))
    if target < MIN_DRIVE_FRAMES:
        raise SimulationError(f'{config.minutes} min is under {MIN_DRIVE_FRAMES} frames')
    out.mkdir(parents=True, exist_ok=True)
    if config.write_bags and bags.exists():
        shutil.rmtree(bags)
    policy = None
    if config.policy is not None:
        from signattn_driver.sim.closed_loop import ModelController
        policy = ModelController(config.policy, device=config.policy_device,
                                 vehicle=config.vehicle)
    dataset = (DatasetWriter(out / 'dataset', profile, config.smoothing_alpha,
                             overwrite=overwrite) if config.write_dataset else None)
    drives, frames_done, started = [], 0, time.perf_counter()
    try:
        with MetaDriveSim(config.sim) as sim:
            k = 0
            while frames_done < target:
                seed = config.seed + k
                split = ('val' if config.val_every and k % config.val_every ==
                         config.val_every - 1 else 'train')
                summary = _record_drive(sim, seed, k, split, config, profile, out, dataset,
                                        limit=target - frames_done, progress=progress,
                                        done_before=frames_done, policy=policy)
                k += 1
                if summary is None:
                    continue
                drives.append(summary)
                frames_done += summary['frames']
        wall_s = time.perf_counter() - started
        result = {'config': config.to_dict(), 'vehicle': profile.to_dict(), 'drives': drives,
                  'frames': frames_done, 'seconds_driven': frames_done / config.sim.rate_hz,
                  'wall_s': wall_s, 'wall_s_per_minute_driven':
                  wall_s / max(frames_done / config.sim.rate_hz / 60.0, 1e-9)}
        if dataset is not None:
            dataset.finalize(source='metadrive', simulation=config.to_dict())
            result['dataset'] = str(out / 'dataset')
    except BaseException:
        if dataset is not None:
            dataset.abort()
        raise
    (out / 'simulation.json').write_text(json.dumps(result, indent=2, sort_keys=True) + '\n')
    return result


def _record_drive(sim, seed, index, split, config, profile, out, dataset, limit, progress,
                  done_before, policy=None):
    """Drive one map; write its bag and dataset drive; return its summary or None.

    `policy` (a closed_loop ModelController or None) steers with the expert (DAgger).
    """
    name = f'sim_{seed:05d}'
    rng = np.random.default_rng([config.seed, seed])
    noise = SteeringNoise(config.noise, rng, sim.dt_s)
    state = sim.reset(seed)
    if policy is not None:
        policy.reset()
    mixing = _PolicyMix(policy, config, sim.dt_s)
    drive = dataset.drive(name, split) if dataset is not None else None
    bag = None
    if config.write_bags:
        bag = DriveBagWriter(out / 'bags' / name, storage=config.storage)
        bag.__enter__()
    encode = [cv2.IMWRITE_JPEG_QUALITY, int(config.jpeg_quality)]
    smoother = Smoother(config.smoothing_alpha)
    n, off_road_frames, out_events, jpeg_bytes, km = 0, 0, 0, 0, 0.0
    max_frames = min(limit, int(config.max_drive_s * config.sim.rate_hz))
    end = 'max_frames'
    started = time.perf_counter()
    expert_log, was_off = [], False
    try:
        while n < max_frames:
            stamp_ns = STAMP_ORIGIN_NS + index * 3600 * 10**9 + int(
                round(n * 1e9 / config.sim.rate_hz))
            expert, throttle = sim.expert_action()
            theta = steering_wheel_rad(expert, profile)
            # eq. 2 is causal, so the bag's u can be written as frames come.
            theta_s, speed_s = smoother.update([theta, state.speed_mps])
            ok, jpeg = cv2.imencode('.jpg', state.image_bgr, encode)
            if not ok:
                raise SimulationError('JPEG encoding failed')
            data = jpeg.tobytes()
            jpeg_bytes += len(data)
            if bag is not None:
                bag.write_image(stamp_ns, data)
                bag.write_ground_truth(stamp_ns, theta, state.speed_mps,
                                       float(inverse_radius_from_steering(theta_s, speed_s,
                                                                          profile)))
            if drive is not None:
                hsv = compressed_to_hsv_u8(data)
                drive.append(hsv, stamp_ns, theta, state.speed_mps, mask_u8=sim.marking_mask())
            expert_log.append(expert)
            n += 1
            if progress is not None:
                progress(done_before + n)
            applied = mixing(expert, data, stamp_ns, state.speed_mps, sim)
            state = sim.step(applied + noise(), throttle)
            km += state.speed_mps * sim.dt_s / 1000.0
            off_road_frames = off_road_frames + 1 if state.out_of_road else 0
            out_events += int(state.out_of_road and not was_off)
            if state.out_of_road and not was_off:
                mixing.take_over()
            was_off = state.out_of_road
            if state.arrived:
                end = 'arrived'
                break
            if state.crashed:
                end = 'crashed'
                break
            if off_road_frames > config.max_off_road_s * config.sim.rate_hz:
                end = 'off_road'
                break
    finally:
        if bag is not None:
            bag.__exit__(None, None, None)
    wall_s = time.perf_counter() - started
    if n < MIN_DRIVE_FRAMES:
        log.warning('%s: only %d frames (%s), dropped', name, n, end)
        if bag is not None:
            shutil.rmtree(out / 'bags' / name, ignore_errors=True)
        if drive is not None:
            shutil.rmtree(drive.folder, ignore_errors=True)
        return None
    summary = {'name': name, 'seed': seed, 'split': split, 'frames': n,
               'seconds': n / config.sim.rate_hz, 'km': km, 'end': end,
               'route_completion': state.route_completion, 'route_length_m':
               state.route_length_m, 'out_of_road_events': out_events,
               'jpeg_kb_per_frame': jpeg_bytes / n / 1024.0, 'wall_s': wall_s,
               'steps_per_s': n / wall_s,
               'expert_front_wheel_rms_deg': math.degrees(steering_to_front_wheel_rad(
                   math.sqrt(float(np.mean(np.square(expert_log))))))}
    summary.update(mixing.summary())
    if drive is not None:
        dataset.close_drive(drive, seed=seed, end=end, source='metadrive')
    log.info('%s: %d frames, %.2f km, %s, %.1f steps/s', name, n, km, end, n / wall_s)
    return summary


class _PolicyMix:
    """The command applied each frame: the expert's, or the DAgger blend with a model's."""

    def __init__(self, policy, config: SimulationConfig, dt_s: float):
        self.policy, self.beta = policy, config.beta
        self.takeover_frames = int(round(config.takeover_s / dt_s))
        self.takeover_left = 0
        self.model_frames = 0       # frames the model had a share of the wheel
        self.abs_error = []         # |model - expert| command, every frame

    def __call__(self, expert, jpeg, stamp_ns, speed_mps, sim) -> float:
        """Return the command to apply for this frame (before noise)."""
        if self.policy is None:
            return expert
        # the model sees every frame, takeovers included, so its LSTM state stays current
        model = self.policy.steer(jpeg, stamp_ns, speed_mps, sim)
        self.abs_error.append(abs(model - expert))
        if self.takeover_left > 0:
            self.takeover_left -= 1
            return expert
        self.model_frames += int(self.beta < 1.0)
        return self.beta * expert + (1.0 - self.beta) * model

    def take_over(self):
        """Hand the wheel to the expert alone for a while (the car left the road)."""
        if self.policy is not None:
            self.takeover_left = self.takeover_frames

    def summary(self) -> dict:
        """Per-drive DAgger figures ({} when the expert drove alone)."""
        if self.policy is None:
            return {}
        return {'policy_frames': self.model_frames,
                'policy_expert_mae': float(np.mean(self.abs_error)) if self.abs_error else 0.0}
