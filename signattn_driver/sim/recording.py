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

Every frame also records the navigator's route command (sim/route.py: the exit the route takes
at the next junction, announced before it; follow-lane elsewhere) on /vehicle/route_command
and in the dataset's `route_command` column; a DAgger policy that takes commands steers with
it, as in `drive-sim`.
"""

import contextlib
from dataclasses import asdict, dataclass, field
import json
import logging
import math
from pathlib import Path
import shutil
import time

import numpy as np

from signattn_driver.data.bag_layout import DriveBagWriter
from signattn_driver.data.dataset import DatasetWriter
from signattn_driver.data.labels import DEFAULT_SMOOTHING, Smoother
from signattn_driver.errors import ConfigError, SimulationError
from signattn_driver.preprocessing import compressed_to_hsv_u8
from signattn_driver.route_command import ROUTE_COMMANDS
from signattn_driver.sim.episode import EpisodeDriver, EpisodeLimits, run_episode
from signattn_driver.sim.metadrive_adapter import (CAMERA_JPEG_QUALITY, MetaDriveSim, SimConfig,
                                                   steering_to_front_wheel_rad)
from signattn_driver.vehicle import inverse_radius_from_steering, load_vehicle

MIN_DRIVE_FRAMES = 40                    # shorter drives (a crash at the start) are dropped
MAX_DROPPED_IN_A_ROW = 25                # then the maps or the policy are broken: stop

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
    target = _check_request(out, config, overwrite)
    profile = load_vehicle(config.vehicle)
    out.mkdir(parents=True, exist_ok=True)
    if config.write_bags and (out / 'bags').exists():
        shutil.rmtree(out / 'bags')
    policy = None
    if config.policy is not None:
        from signattn_driver.sim.closed_loop import ModelController
        policy = ModelController(config.policy, device=config.policy_device,
                                 vehicle=config.vehicle)
    dataset = (DatasetWriter(out / 'dataset', profile, config.smoothing_alpha,
                             overwrite=overwrite) if config.write_dataset else None)
    recorder = _Recorder(config, profile, out, dataset, policy, progress)
    started = time.perf_counter()
    try:
        with MetaDriveSim(config.sim) as sim:
            drives = recorder.record(sim, target)
        result = _result(config, profile, drives, time.perf_counter() - started)
        if dataset is not None:
            dataset.finalize(source='metadrive', simulation=config.to_dict())
            result['dataset'] = str(out / 'dataset')
    except BaseException:
        if dataset is not None:
            dataset.abort()
        raise
    (out / 'simulation.json').write_text(json.dumps(result, indent=2, sort_keys=True) + '\n')
    return result


def _check_request(out: Path, config: SimulationConfig, overwrite: bool) -> int:
    """Reject a request that writes nothing, replaces bags unasked or is too short.

    Returns:
        The frames to record.
    """
    if not (config.write_bags or config.write_dataset):
        raise SimulationError('nothing to write: enable bags or the dataset')
    bags = out / 'bags'
    if bags.exists() and any(bags.iterdir()) and config.write_bags and not overwrite:
        raise SimulationError(f'{bags} exists; pass --force to replace it')
    target = int(round(config.minutes * 60.0 * config.sim.rate_hz))
    if target < MIN_DRIVE_FRAMES:
        raise SimulationError(f'{config.minutes} min is under {MIN_DRIVE_FRAMES} frames')
    return target


def _result(config: SimulationConfig, profile, drives: list, wall_s: float) -> dict:
    """Return simulation.json's summary of the recorded drives."""
    frames = sum(d['frames'] for d in drives)
    seconds = frames / config.sim.rate_hz
    return {'config': config.to_dict(), 'vehicle': profile.to_dict(), 'drives': drives,
            'frames': frames, 'seconds_driven': seconds, 'wall_s': wall_s,
            'wall_s_per_minute_driven': wall_s / max(seconds / 60.0, 1e-9)}


class _Recorder:
    """Records drives one map after another: what stays the same for every drive."""

    def __init__(self, config: SimulationConfig, profile, out: Path, dataset, policy,
                 progress):
        self.config, self.profile, self.out = config, profile, out
        self.dataset, self.policy, self.progress = dataset, policy, progress

    def record(self, sim: MetaDriveSim, target: int) -> list:
        """Drive map seed, seed + 1, ... until `target` frames are kept; return the summaries.

        Recording stops short of `target` when fewer than MIN_DRIVE_FRAMES frames are left:
        a drive that short would be dropped, and the next one too, for ever.

        Raises:
            SimulationError: MAX_DROPPED_IN_A_ROW drives in a row were too short to keep.
        """
        drives, frames_done, index, dropped = [], 0, 0, 0
        while target - frames_done >= MIN_DRIVE_FRAMES:
            summary = self.record_drive(sim, index, frames_done, target - frames_done)
            index += 1
            if summary is None:
                dropped += 1
                if dropped >= MAX_DROPPED_IN_A_ROW:
                    last = self.config.seed + index - 1
                    raise SimulationError(
                        f'{dropped} drives in a row ended within {MIN_DRIVE_FRAMES} frames '
                        f'(maps {last - dropped + 1}-{last})')
                continue
            dropped = 0
            drives.append(summary)
            frames_done += summary['frames']
        if frames_done < target:
            log.info('stopped %d frames short of %d: too few for one more drive',
                     target - frames_done, target)
        return drives

    def _split(self, index: int) -> str:
        every = self.config.val_every
        return 'val' if every and index % every == every - 1 else 'train'

    def record_drive(self, sim: MetaDriveSim, index: int, frames_done: int,
                     frames_left: int) -> dict | None:
        """Drive map `config.seed + index`; write its bag and dataset drive.

        Args:
            sim: the simulator.
            index: the drive's number (its map, split and stamps).
            frames_done: frames kept before it (for the progress callback).
            frames_left: at most this many frames are recorded.

        Returns:
            The drive's summary, or None when it was too short to keep (and removed).
        """
        config, seed = self.config, self.config.seed + index
        name, split = f'sim_{seed:05d}', self._split(index)
        drive = self.dataset.drive(name, split) if self.dataset is not None else None
        rate = config.sim.rate_hz
        # without a policy the expert drives anyway: nothing to take over from
        takeover_s = config.takeover_s if self.policy is not None else 0.0
        limits = EpisodeLimits(
            max_frames=min(frames_left, int(config.max_drive_s * rate)),
            takeover_frames=int(round(takeover_s * rate)),
            max_off_road_frames=math.floor(config.max_off_road_s * rate),
            timeout_end='max_frames')
        with contextlib.ExitStack() as stack:
            bag = (stack.enter_context(DriveBagWriter(self.out / 'bags' / name,
                                                      storage=config.storage))
                   if config.write_bags else None)
            writer = _DriveWriter(self, seed, bag, drive, frames_done, sim.dt_s)
            episode = run_episode(sim, writer, seed, index, limits, config.jpeg_quality)
        if episode.frames < MIN_DRIVE_FRAMES:
            log.warning('%s: only %d frames (%s), dropped', name, episode.frames, episode.end)
            if bag is not None:
                shutil.rmtree(self.out / 'bags' / name, ignore_errors=True)
            if drive is not None:
                shutil.rmtree(drive.folder, ignore_errors=True)
            return None
        summary = writer.summary(name, split, episode)
        if drive is not None:
            self.dataset.close_drive(drive, seed=seed, end=episode.end, source='metadrive')
        log.info('%s: %d frames, %.2f km, %s, %.1f steps/s', name, episode.frames, episode.km,
                 episode.end, summary['steps_per_s'])
        return summary


class _DriveWriter(EpisodeDriver):
    """One recorded drive in the episode loop: the applied command and the written frames.

    The expert steers, or with a policy the DAgger blend beta * expert + (1 - beta) * model;
    steering noise is added to whatever is applied; every frame goes to the bag and the
    dataset labelled with the expert's command.
    """

    def __init__(self, recorder: _Recorder, seed: int, bag, drive, frames_done: int,
                 dt_s: float):
        config = recorder.config
        self.config, self.profile, self.policy = config, recorder.profile, recorder.policy
        self.progress, self.frames_done = recorder.progress, frames_done
        self.bag, self.drive = bag, drive
        self.noise = SteeringNoise(config.noise, np.random.default_rng([config.seed, seed]),
                                   dt_s)
        self.smoother = Smoother(config.smoothing_alpha)
        self.expert_log = []        # the expert's command, every frame
        self.abs_error = []         # |model - expert| command, every frame
        self.jpeg_bytes = 0
        self.command_frames = [0] * len(ROUTE_COMMANDS)   # frames per route command
        self.sim = None
        self.route_commands = []

    def start(self, sim, state):
        """Keep the simulator (for the lane masks); start the policy's new sequence."""
        self.sim = sim
        self.route_commands = sim.route_commands.summary()
        if self.policy is not None:
            self.policy.reset()

    def steer(self, frame, sim) -> float:
        """Return the expert's command, or the DAgger blend with the policy's."""
        if self.policy is None:
            return frame.expert_steering
        # the model sees every frame, takeovers included, so its LSTM state stays current
        model = self.policy.steer(frame.jpeg, frame.stamp_ns, frame.state.speed_mps, sim,
                                  route_command=frame.state.route_command)
        self.abs_error.append(abs(model - frame.expert_steering))
        beta = self.config.beta
        return beta * frame.expert_steering + (1.0 - beta) * model

    def perturbation(self) -> float:
        """Return this frame's steering noise."""
        return self.noise()

    def observe(self, frame, command, in_charge):
        """Write the frame with the expert's command as its label and the route's command."""
        state, stamp_ns = frame.state, frame.stamp_ns
        self.command_frames[state.route_command] += 1
        theta = steering_wheel_rad(frame.expert_steering, self.profile)
        # eq. 2 is causal, so the bag's u can be written as frames come.
        theta_s, speed_s = self.smoother.update([theta, state.speed_mps])
        self.jpeg_bytes += len(frame.jpeg)
        if self.bag is not None:
            self.bag.write_image(stamp_ns, frame.jpeg)
            self.bag.write_ground_truth(stamp_ns, theta, state.speed_mps, float(
                inverse_radius_from_steering(theta_s, speed_s, self.profile)))
            self.bag.write_route_command(stamp_ns, state.route_command)
        if self.drive is not None:
            self.drive.append(compressed_to_hsv_u8(frame.jpeg), stamp_ns, theta,
                              state.speed_mps, mask_u8=self.sim.marking_mask(),
                              route_command=state.route_command)
        self.expert_log.append(frame.expert_steering)
        if self.progress is not None:
            self.progress(self.frames_done + frame.index + 1)

    def summary(self, name: str, split: str, episode) -> dict:
        """Return the drive's entry of simulation.json."""
        n, state = episode.frames, episode.state
        rms = math.sqrt(float(np.mean(np.square(self.expert_log))))
        summary = {'name': name, 'seed': episode.seed, 'split': split, 'frames': n,
                   'seconds': n / self.config.sim.rate_hz, 'km': episode.km, 'end': episode.end,
                   'route_completion': state.route_completion,
                   'route_length_m': state.route_length_m,
                   'out_of_road_events': episode.out_of_road_events,
                   'jpeg_kb_per_frame': self.jpeg_bytes / n / 1024.0, 'wall_s': episode.wall_s,
                   'steps_per_s': n / episode.wall_s,
                   'expert_front_wheel_rms_deg': math.degrees(steering_to_front_wheel_rad(rms)),
                   'route_commands': self.route_commands,
                   'route_command_frames': dict(zip(ROUTE_COMMANDS, self.command_frames))}
        if self.policy is not None:
            # frames the model had a share of the wheel
            summary['policy_frames'] = episode.frames_in_charge * int(self.config.beta < 1.0)
            summary['policy_expert_mae'] = (float(np.mean(self.abs_error)) if self.abs_error
                                            else 0.0)
        return summary
