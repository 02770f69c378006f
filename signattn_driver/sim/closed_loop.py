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
  lateral_offset_signed_mean_m: the signed mean over the same frames (+ = left of the centre),
  a steady bias to one side; lateral_offset_by_place: {place: {frames, mean_m}}, the mean
  |offset| where a junction's command is in force (its kind) and elsewhere ('road'), to tell
  lane keeping from the approach and turn at junctions.
- out_of_road_per_km: events per km driven (km while the controller was in charge).
Per episode also `route_junctions`: the junctions on the route (kind, route fraction where
the junction starts), to see whether a controller fails where the route turns off, and
`route_commands`: each junction's extent in metres and the navigator's command for it, and
`out_of_road_places`: where each event happened (route metres, the command in force, and the
place: the junction kind while its command is in force, else 'road'); the summary counts them
per place in `out_of_road_events_by_place`, so failures at route choices and at lane keeping
are told apart. `end_place` says the same of where an episode that did not arrive ended (a car
that takes the wrong exit stays on the road but makes no more route progress: 'stalled').

Every frame a controller also gets the navigator's route command (`SimState.route_command`,
sim/route.py): a command model steers with it, in process (`ModelController`) or through the
node's `route/command` topic (`RosController`); `route_commands=False` withholds it (always
follow-lane), to measure the same model without the navigator.

Controllers share the small `Controller` interface: `ExpertController` (MetaDrive's IDM, the
ceiling), `ZeroController` (wheel held straight, the floor), `ModelController` (a checkpoint
through `Predictor`, in-process) and `signattn_driver.ros.sim_controller.RosController` (the
real drive node over DDS). The model controllers start an LSTM sequence where
`signattn_driver.data.sequence_rule` says: at each episode start (explicit reset) and at a stamp
gap or backward jump, as in training and in the node.

`relative_to_expert` puts each controller next to the expert as ratios (model / expert).
"""

from dataclasses import asdict, dataclass, field
import logging
import math

import numpy as np

from signattn_driver.data.sequence_rule import SequenceTracker
from signattn_driver.errors import SimulationError
from signattn_driver.route_command import FOLLOW_LANE, route_command_name
from signattn_driver.sim.episode import EpisodeDriver, EpisodeLimits, run_episode
from signattn_driver.sim.metadrive_adapter import (CAMERA_JPEG_QUALITY,
                                                   front_wheel_rad_to_steering, MetaDriveSim,
                                                   SimConfig)
from signattn_driver.sim.route import JUNCTION_KINDS
from signattn_driver.vehicle import front_wheel_angle_rad, load_vehicle

# Maps no training run has visited: `signattn simulate` drives maps --seed, --seed + 1, ...;
# the shipped model was trained on maps 100-111, the experiment models on maps 1000-1020.
HELD_OUT_SEEDS = tuple(range(5001, 5011))

log = logging.getLogger(__name__)


class ClosedLoopError(SimulationError):
    """A controller that cannot start or stopped answering."""


@dataclass
class ClosedLoopConfig:
    """Which maps, for how long, and how interventions work."""

    seeds: tuple = HELD_OUT_SEEDS
    max_seconds: float = 150.0    # per episode; MetaDrive's 7-block routes take ~65 s
    takeover_s: float = 2.0       # expert drives this long after an out-of-road event
    stall_s: float = 20.0         # end an episode that makes no route progress this long
    sim: SimConfig = field(default_factory=SimConfig)
    jpeg_quality: int = CAMERA_JPEG_QUALITY

    def to_dict(self) -> dict:
        """Plain dict for reports."""
        return asdict(self)


class Controller:
    """What drives the car in `drive_episode`: a steering command per camera frame."""

    name = 'controller'

    def reset(self):
        """Start a new episode (a new map); the next frame begins a new sequence."""

    def steer(self, jpeg: bytes, stamp_ns: int, speed_mps: float, sim: MetaDriveSim,
              route_command: int = FOLLOW_LANE) -> float:
        """Return the steering command in [-1, 1] (+ = left) for this frame.

        `route_command` is the navigator's command for the frame (route_command.py).
        """
        raise NotImplementedError


class ExpertController(Controller):
    """MetaDrive's IDM expert (the ceiling); it sees the map, not the camera."""

    name = 'expert'

    def steer(self, jpeg, stamp_ns, speed_mps, sim, route_command=FOLLOW_LANE) -> float:
        """Return the expert's steering command (it follows the route itself)."""
        return sim.expert_action()[0]


class ZeroController(Controller):
    """Wheel held straight (the floor)."""

    name = 'zero'

    def steer(self, jpeg, stamp_ns, speed_mps, sim, route_command=FOLLOW_LANE) -> float:
        """Return 0."""
        return 0.0


class InverseRadiusController(Controller):
    """Shared: turn the model's u (1/m) into a MetaDrive command for the simulated car."""

    def __init__(self, vehicle='metadrive'):
        self.profile = load_vehicle(vehicle)

    def command(self, u_per_m: float, speed_mps: float) -> float:
        """Eq. 3 inverted for the simulated car, then its 40 deg lock."""
        if not math.isfinite(u_per_m):
            return 0.0
        return front_wheel_rad_to_steering(
            float(front_wheel_angle_rad(u_per_m, speed_mps, self.profile)))


class ModelController(InverseRadiusController):
    """A checkpoint driving in-process through `Predictor` (same preprocessing as the node).

    The LSTM state restarts where the sequence rule says (`SequenceTracker`): at the first
    frame after `reset()` and at a stamp gap or backward jump. With `keep_attention` the
    attention map of the last frame is kept in `attention` and its contribution map phi (1/m)
    in `contribution` (for animations). A route-command
    checkpoint steers with each frame's command unless `route_commands` is False (then
    follow-lane throughout); a camera-only one ignores it.
    """

    name = 'model'

    def __init__(self, checkpoint_path, device='cpu', vehicle='metadrive',
                 keep_attention: bool = False, route_commands: bool = True):
        super().__init__(vehicle)
        self.route_commands = route_commands
        from signattn_driver.predictor import Predictor
        from signattn_driver.preprocessing import decode_image
        self._decode = decode_image
        self.predictor = Predictor(checkpoint_path, device=device)
        self.tracker = SequenceTracker()
        self.keep_attention = keep_attention
        self.attention = self.contribution = None
        self.sequence_starts = 0

    def reset(self):
        """Start a new sequence at the next frame (a new map)."""
        self.tracker.request_reset()

    def steer(self, jpeg, stamp_ns, speed_mps, sim, route_command=FOLLOW_LANE) -> float:
        """Run the network on the decoded frame with the route command."""
        if self.tracker.observe(stamp_ns):
            self.predictor.reset()
            self.sequence_starts += 1
        command = route_command if self.route_commands else FOLLOW_LANE
        out = self.predictor.step_full(self._decode(jpeg), 'bgr',
                                       want_attention=self.keep_attention,
                                       want_contribution=self.keep_attention, command=command)
        self.attention, self.contribution = out.attention, out.contribution_per_m
        return self.command(out.u_per_m, speed_mps)


class _ControllerDriver(EpisodeDriver):
    """A `Controller` in the episode loop, with the optional per-frame observer."""

    def __init__(self, controller: Controller, observer=None):
        self.controller, self.observer = controller, observer
        self.junctions, self.route_commands, self.places = [], [], []
        self._commands, self._was_off, self._in_charge = None, False, True

    def start(self, sim, state):
        """Note the route's junctions and start the controller's new episode."""
        self.junctions = sim.route_junctions()
        self.route_commands = sim.route_commands.summary()
        self._commands = sim.route_commands
        self._was_off, self._in_charge = state.out_of_road, True
        self.controller.reset()

    def note_state(self, state, in_charge: bool):
        """Place an out-of-road event as `run_episode` counts it (left the road in charge)."""
        if state.out_of_road and not self._was_off and self._in_charge:
            self.places.append({'route_m': round(state.route_progress_m, 1),
                                'route_command': route_command_name(state.route_command),
                                'place': self._commands.place(state.route_progress_m)})
        self._was_off, self._in_charge = state.out_of_road, in_charge

    def steer(self, frame, sim) -> float:
        """Return the controller's command for the frame, given the route's command."""
        return self.controller.steer(frame.jpeg, frame.stamp_ns, frame.state.speed_mps, sim,
                                     route_command=frame.state.route_command)

    def observe(self, frame, command, in_charge):
        """Place an event the last step caused; pass the frame on to the observer."""
        self.note_state(frame.state, in_charge)
        if self.observer is not None:
            self.observer(frame.state, command, frame.expert_steering, in_charge)


def drive_episode(sim: MetaDriveSim, controller: Controller, seed: int,
                  config: ClosedLoopConfig, episode_index: int = 0, observer=None) -> dict:
    """Drive one map with `controller`; return the episode's raw measurements.

    Args:
        sim: the simulator (reset to map `seed` here).
        controller: what steers while it is in charge.
        seed: map seed.
        config: limits and takeover.
        episode_index: sets the frames' stamps (`episode.frame_stamp_ns`).
        observer: optional callable(state, command, expert_steering, in_charge) called each
            frame after the controller answered, with the state whose image it saw.
    """
    rate = config.sim.rate_hz
    limits = EpisodeLimits(max_frames=int(config.max_seconds * rate),
                           takeover_frames=int(round(config.takeover_s * rate)),
                           stall_frames=math.floor(config.stall_s * rate))
    driver = _ControllerDriver(controller, observer)
    episode = run_episode(sim, driver, seed, episode_index, limits, config.jpeg_quality)
    driver.note_state(episode.state, False)      # the last step's state is seen by no frame
    return {'seed': seed, 'end': episode.end, 'frames': episode.frames,
            'wall_s': episode.wall_s, 'route_completion': episode.state.route_completion,
            'autonomous_completion': episode.autonomous_completion,
            'out_of_road_events': episode.out_of_road_events,
            'km_in_charge': episode.km_in_charge, 'frames_in_charge': episode.frames_in_charge,
            'frames_off_road': episode.frames_off_road, 'route_junctions': driver.junctions,
            'route_commands': driver.route_commands, 'out_of_road_places': driver.places,
            'end_place': (None if episode.end == 'arrived' else
                          sim.route_commands.place(episode.state.route_progress_m)),
            'offsets_m': episode.offsets_m, 'signed_offsets_m': episode.signed_offsets_m,
            'offset_places': [sim.route_commands.place(m) for m in episode.offset_route_m]}


# the per-frame lists of an episode, summarized by `summarize` and left out of its report
PER_FRAME_KEYS = ('offsets_m', 'signed_offsets_m', 'offset_places')


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
        'out_of_road_events_by_place': _count_places(episodes),
        **_offset_side_and_places(episodes),
        'steps_per_s': frames / wall if wall > 0 else float('nan'),
        'per_episode': [_episode_report(e) for e in episodes],
    }


def _count_places(episodes: list) -> dict:
    """Count out-of-road events per place: 'road' and each junction kind."""
    counts = {'road': 0, **{kind: 0 for kind in JUNCTION_KINDS.values()}}
    for episode in episodes:
        for event in episode.get('out_of_road_places', ()):
            counts[event['place']] += 1
    return counts


def _offset_side_and_places(episodes: list) -> dict:
    """Return the signed mean offset and the mean |offset| per place, where recorded."""
    if not all('signed_offsets_m' in e and 'offset_places' in e for e in episodes):
        return {}
    signed = np.concatenate([np.asarray(e['signed_offsets_m'], np.float64)
                             for e in episodes]) if episodes else np.zeros(0)
    places = np.array([p for e in episodes for p in e['offset_places']], dtype=object)
    by_place = {}
    for place in dict.fromkeys(places):
        mask = places == place
        by_place[place] = {'frames': int(mask.sum()),
                           'mean_m': float(np.abs(signed[mask]).mean())}
    return {'lateral_offset_signed_mean_m': float(signed.mean()) if len(signed)
            else float('nan'), 'lateral_offset_by_place': by_place}


def _episode_report(episode: dict) -> dict:
    """Return an episode's measurements with its lateral offsets as mean, p95 and by place."""
    report = {k: v for k, v in episode.items() if k not in PER_FRAME_KEYS}
    report.update(_offset_side_and_places([episode]))
    offsets = np.asarray(episode.get('offsets_m', ()), np.float64)
    report['lateral_offset_mean_m'] = float(offsets.mean()) if len(offsets) else float('nan')
    report['lateral_offset_p95_m'] = (float(np.percentile(offsets, 95)) if len(offsets)
                                      else float('nan'))
    return report


# The goal a model is held to next to the expert on held-out maps (issue 13).
GOAL = {'autonomous_completion_ratio_min': 0.9, 'out_of_road_per_km_ratio_max': 1.2,
        'lateral_offset_p95_m_max': 0.5}


def _ratio(value: float, reference: float):
    """Return value / reference; None where undefined (0 / 0 gives 1: both perfect)."""
    if not (math.isfinite(value) and math.isfinite(reference)):
        return None
    if reference == 0:
        return 1.0 if value == 0 else None
    return value / reference


def relative_to_expert(controllers: dict) -> dict:
    """Each controller's metrics as ratios to the expert's, and whether it meets `GOAL`.

    Args:
        controllers: {name: summarize() output}, with an 'expert' entry.

    Returns:
        {name: {'autonomous_completion_ratio', 'route_completion_ratio',
        'out_of_road_per_km_ratio' (None where the expert had no event and the controller
        had some), 'lateral_offset_p95_m', 'meets_goal'}}; {} without an expert.
    """
    expert = controllers.get('expert')
    if expert is None:
        return {}
    out = {}
    for name, m in controllers.items():
        auto = _ratio(m['autonomous_completion'], expert['autonomous_completion'])
        per_km = _ratio(m['out_of_road_per_km'], expert['out_of_road_per_km'])
        p95 = m['lateral_offset_p95_m']
        out[name] = {
            'autonomous_completion_ratio': auto,
            'route_completion_ratio': _ratio(m['route_completion'], expert['route_completion']),
            'out_of_road_per_km_ratio': per_km, 'lateral_offset_p95_m': p95,
            'meets_goal': bool(auto is not None and auto >= GOAL['autonomous_completion_ratio_min']
                               and per_km is not None
                               and per_km <= GOAL['out_of_road_per_km_ratio_max']
                               and math.isfinite(p95) and p95 <= GOAL['lateral_offset_p95_m_max'])}
    return out


def evaluate_controllers(controllers: list, config: ClosedLoopConfig, progress=None) -> dict:
    """Drive every controller over the same maps; return {controller name: metrics}.

    Args:
        controllers: `Controller`s (.name, .reset(), .steer(jpeg, stamp_ns, speed_mps, sim)).
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
    return {'config': config.to_dict(), 'controllers': results,
            'relative_to_expert': relative_to_expert(results), 'goal': GOAL}
