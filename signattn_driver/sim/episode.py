"""One simulator episode, frame by frame: the loop that recording and closed-loop driving share.

Every frame the loop stamps the camera image, encodes it as JPEG (as the bags store it and the
node receives it), asks the driver for a steering command and applies it with the IDM expert's
throttle. When the car leaves the road while the driver is in charge, that is an out-of-road
event and the expert alone steers for `takeover_frames` (a safety driver's intervention); the
driver keeps seeing every frame, so a model's LSTM state stays current. The episode ends on
arrival, a crash, `max_off_road_frames` off the road in a row, `stall_frames` without route
progress, or after `max_frames`.

Frame k of episode i is stamped STAMP_ORIGIN_NS + i hours + k / rate_hz: episodes never overlap
in time, and a stamp gap marks each new one.

`signattn_driver.sim.recording` (expert or DAgger drives written to bags and datasets) and
`signattn_driver.sim.closed_loop` (controllers scored on held-out maps) are its two users; each
passes an `EpisodeDriver` for what differs.
"""

from dataclasses import dataclass, field
import time

import cv2

from signattn_driver.sim.metadrive_adapter import MetaDriveSim, SimState

STAMP_ORIGIN_NS = 1_600_000_000 * 10**9   # episode i starts at this stamp + i hours
EPISODE_SPACING_NS = 3600 * 10**9


def frame_stamp_ns(episode_index: int, frame_index: int, rate_hz: float) -> int:
    """Return the header stamp (ns) of frame `frame_index` (0-based) of episode `episode_index`."""
    return (STAMP_ORIGIN_NS + episode_index * EPISODE_SPACING_NS
            + int(round(frame_index * 1e9 / rate_hz)))


def encode_jpeg(image_bgr, quality: int) -> bytes:
    """Encode a (H, W, 3) uint8 BGR camera image as JPEG bytes at `quality` (0-100)."""
    ok, jpeg = cv2.imencode('.jpg', image_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:      # a rendered frame always encodes: this is a bug, not a user's mistake
        raise RuntimeError(f'JPEG encoding of a {image_bgr.shape} camera frame failed')
    return jpeg.tobytes()


@dataclass
class Frame:
    """One frame as the driver sees it, before the command is applied."""

    index: int                  # 0-based in the episode
    stamp_ns: int
    state: SimState             # the state whose camera image this is
    jpeg: bytes                 # state.image_bgr as JPEG
    expert_steering: float      # the IDM expert's command in [-1, 1], + = left
    throttle: float             # the expert's throttle, applied whoever steers


class EpisodeDriver:
    """What differs between the loop's users: who steers and what is kept of each frame."""

    def start(self, sim: MetaDriveSim, state: SimState):
        """Begin an episode on the map `sim` was just reset to (first frame: `state`)."""

    def steer(self, frame: Frame, sim: MetaDriveSim) -> float:
        """Return the command in [-1, 1] while in charge; called every frame, takeovers too."""
        raise NotImplementedError

    def observe(self, frame: Frame, command: float, in_charge: bool):
        """See the frame with the command about to be applied (the expert's in a takeover)."""

    def perturbation(self) -> float:
        """Return what is added to this frame's command (steering noise; 0 by default)."""
        return 0.0


@dataclass
class EpisodeLimits:
    """When an episode ends and how long a takeover lasts, in frames."""

    max_frames: int
    takeover_frames: int = 0
    max_off_road_frames: int | None = None   # end after more than this many in a row
    stall_frames: int | None = None          # end after more than this many without progress
    timeout_end: str = 'timeout'             # the end's name when max_frames runs out


@dataclass
class Episode:
    """What one episode measured (the loop's result)."""

    seed: int
    end: str = 'timeout'          # arrived, crashed, off_road, stalled or limits.timeout_end
    frames: int = 0
    frames_in_charge: int = 0
    frames_off_road: int = 0      # in charge and off the road
    out_of_road_events: int = 0   # left the road while the driver was in charge
    km: float = 0.0
    km_in_charge: float = 0.0
    first_event_completion: float | None = None   # route completion at the first event/crash
    signed_offsets_m: list = field(default_factory=list)  # m, + = left; in charge, on road
    offset_route_m: list = field(default_factory=list)    # route progress there (m)
    wall_s: float = 0.0
    state: SimState | None = None   # the last state

    @property
    def offsets_m(self) -> list:
        """Return |lateral offset| (m) of the frames in `signed_offsets_m`."""
        return [abs(x) for x in self.signed_offsets_m]

    @property
    def autonomous_completion(self) -> float:
        """Return the route completion up to the first event or crash (all of it without)."""
        if self.first_event_completion is not None:
            return self.first_event_completion
        return self.state.route_completion


def run_episode(sim: MetaDriveSim, driver: EpisodeDriver, seed: int, episode_index: int,
                limits: EpisodeLimits, jpeg_quality: int) -> Episode:
    """Drive map `seed` from its start with `driver` until the episode ends.

    Args:
        sim: the simulator (reset to map `seed` here).
        driver: who steers and what is kept of each frame.
        seed: map seed.
        episode_index: sets the stamps (`frame_stamp_ns`).
        limits: when the episode ends, how long a takeover lasts.
        jpeg_quality: JPEG quality of the frames the driver sees.
    """
    state = sim.reset(seed)
    driver.start(sim, state)
    episode = Episode(seed=seed, end=limits.timeout_end, state=state)
    rate_hz = sim.config.rate_hz
    takeover_left, was_off, off_road_run = 0, False, 0
    best_progress_m, best_frame = state.route_progress_m, 0
    started = time.perf_counter()
    while episode.frames < limits.max_frames:
        stamp_ns = frame_stamp_ns(episode_index, episode.frames, rate_hz)
        expert_steering, throttle = sim.expert_action()
        frame = Frame(episode.frames, stamp_ns, state, encode_jpeg(state.image_bgr, jpeg_quality),
                      expert_steering, throttle)
        command = driver.steer(frame, sim)
        in_charge = takeover_left == 0
        if in_charge:
            _count_in_charge(episode, state)
        else:
            takeover_left -= 1
            command = expert_steering
        driver.observe(frame, command, in_charge)
        state = sim.step(command + driver.perturbation(), throttle)
        episode.frames += 1
        episode.state = state
        km = state.speed_mps / rate_hz / 1000.0
        episode.km += km
        if in_charge:
            episode.km_in_charge += km
        if state.out_of_road and not was_off and in_charge:
            episode.out_of_road_events += 1
            takeover_left = limits.takeover_frames
            _first_event(episode)
        was_off = state.out_of_road
        off_road_run = off_road_run + 1 if state.out_of_road else 0
        if state.route_progress_m > best_progress_m + 1.0:
            best_progress_m, best_frame = state.route_progress_m, episode.frames
        end = _end(state, limits, off_road_run, episode.frames - best_frame)
        if end is not None:
            episode.end = end
            if end != 'arrived':
                _first_event(episode)
            break
    episode.wall_s = time.perf_counter() - started
    return episode


def _count_in_charge(episode: Episode, state: SimState):
    """Count a frame the driver is in charge of, with the state its image shows."""
    episode.frames_in_charge += 1
    if state.out_of_road:
        # off every lane MetaDrive's localization keeps the last lane: no offset
        episode.frames_off_road += 1
    else:
        episode.signed_offsets_m.append(state.lateral_offset_m)
        episode.offset_route_m.append(state.route_progress_m)


def _first_event(episode: Episode):
    if episode.first_event_completion is None:
        episode.first_event_completion = episode.state.route_completion


def _end(state: SimState, limits: EpisodeLimits, off_road_run: int,
         frames_without_progress: int) -> str | None:
    """Return why the episode ends after this step, None while it goes on."""
    if state.arrived:
        return 'arrived'
    if state.crashed:
        return 'crashed'
    if limits.max_off_road_frames is not None and off_road_run > limits.max_off_road_frames:
        return 'off_road'
    if limits.stall_frames is not None and frames_without_progress > limits.stall_frames:
        return 'stalled'
    return None
