"""An animated closed-loop episode: where the model looks, beside where the car went.

Each frame of the animation has two panels, three when the controller keeps its contribution
map:
- left: the camera frame the model saw with its attention map blended over it
  (`attention_overlay`, as the drive node publishes it), and below it a strip with the time,
  who is driving, the model's and the expert's steering commands as bars, the out-of-road
  events so far, the route completion and the navigator's route command;
- middle (with a contribution map): the same frame with phi, the exact share of each cell in
  the command (`contribution_overlay`, as the node's `attention/contribution`: blue pushes the
  wheel left, orange right, scaled to the frame's largest |phi|), and its scale below;
- right: the map from above (lanes grey, the route's lanes lighter), the car's trace so far
  (green while the controller drives, orange while the expert has taken over), a red ring at
  each out-of-road event, the car as a triangle, and in its top-left corner the route command
  as a sign: an arrow to the left, ahead or to the right (yellow) before and through a
  junction, two lane lines for follow-lane.

The map comes from the simulator's lane geometry (`MetaDriveSim.lane_outlines`), the trace from
the recorded positions; nothing here imports MetaDrive. Frames are written as a GIF (Pillow).
"""

import math
from pathlib import Path

import cv2
import numpy as np

from signattn_driver.attention_overlay import attention_overlay
from signattn_driver.contribution_overlay import (contribution_overlay,
                                                  contribution_scale_per_m, LEFT_BGR,
                                                  RIGHT_BGR)
from signattn_driver.route_command import (FOLLOW_LANE, LEFT, RIGHT, route_command_name,
                                           STRAIGHT)

# BGR colours
LANE, ROUTE_LANE, BACKGROUND = (90, 90, 90), (150, 140, 120), (30, 30, 30)
TRACE_CONTROLLER, TRACE_TAKEOVER = (80, 200, 80), (0, 160, 255)
EVENT, CAR, TEXT = (40, 40, 230), (255, 255, 255), (235, 235, 235)
COMMAND = (0, 215, 255)        # a turn command's sign (yellow)
MAP_MARGIN_M = 30.0            # room for a car that leaves the map
CAR_LENGTH_PX = 9.0             # the car marker's size, whatever the map's scale


class MapView:
    """World (x, y) in m -> pixels of a square top-down panel, north (y) up."""

    def __init__(self, outlines: list, size_px: int):
        points = np.concatenate([xy for xy, _ in outlines]) if outlines else np.zeros((1, 2))
        low = points.min(axis=0) - MAP_MARGIN_M
        high = points.max(axis=0) + MAP_MARGIN_M
        self.size_px = int(size_px)
        self.scale = (size_px - 1) / float(max(high - low))        # px per m, same both axes
        self.origin = (low + high) / 2.0
        self.base = np.full((size_px, size_px, 3), BACKGROUND, np.uint8)
        for on_route in (False, True):      # the route on top
            polygons = [self.pixels(xy) for xy, route in outlines if route == on_route]
            if polygons:
                cv2.fillPoly(self.base, polygons, ROUTE_LANE if on_route else LANE)

    def pixels(self, xy) -> np.ndarray:
        """(N, 2) world points -> (N, 2) int32 pixel coordinates."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        u = (xy[:, 0] - self.origin[0]) * self.scale + self.size_px / 2.0
        v = self.size_px / 2.0 - (xy[:, 1] - self.origin[1]) * self.scale
        return np.round(np.column_stack([u, v])).astype(np.int32)


class EpisodeAnimation:
    """Collect frames of one episode; pass it to `drive_episode` as `observer`.

    Args:
        sim: the simulator (its `lane_outlines()` is read at the first frame, after reset).
        attention_source: callable returning the controller's last (10, 20) attention map
            or None (e.g. `lambda: controller.attention`).
        contribution_source: callable returning its last (10, 20) contribution map phi in
            1/m, or None (e.g. `lambda: controller.contribution`): adds the middle panel.
        stride: keep every stride-th frame (2 at 20 Hz: 10 frames/s, played in real time).
        panel_px: height of the animation; it is twice as wide.
        rate_hz: simulation frame rate (sets the GIF's frame duration).
    """

    def __init__(self, sim, attention_source=None, stride: int = 2, panel_px: int = 256,
                 rate_hz: float = 20.0, contribution_source=None):
        if stride < 1 or panel_px < 64:
            raise ValueError(f'stride must be >= 1 and panel_px >= 64, got {stride}, '
                             f'{panel_px}')
        self.sim, self.attention_source = sim, attention_source
        self.contribution_source = contribution_source
        self.stride, self.panel_px, self.rate_hz = int(stride), int(panel_px), float(rate_hz)
        self.frames = []            # Pillow palette images (1 byte per pixel)
        self._view = None
        self._trace = None          # the map with the trace drawn so far
        self._previous = None
        self._count = 0
        self.events = 0
        self._was_off, self._in_charge = False, True

    def __call__(self, state, command: float, expert_steering: float, in_charge: bool):
        """Record one frame (the `drive_episode` observer signature)."""
        if self._view is None:
            self._view = MapView(self.sim.lane_outlines(), self.panel_px)
            self._trace = self._view.base.copy()
        here = self._view.pixels(state.position_m)[0]
        if self._previous is not None:
            cv2.line(self._trace, tuple(self._previous), tuple(here),
                     TRACE_CONTROLLER if in_charge else TRACE_TAKEOVER, 2, cv2.LINE_AA)
        # an event as drive_episode counts it: leaving the road while the controller drove
        if state.out_of_road and not self._was_off and self._in_charge:
            self.events += 1
            cv2.circle(self._trace, tuple(here), 5, EVENT, 2, cv2.LINE_AA)
        self._was_off, self._in_charge = state.out_of_road, in_charge
        self._previous = here
        self._count += 1
        if (self._count - 1) % self.stride == 0:
            attention = self.attention_source() if self.attention_source else None
            phi = self.contribution_source() if self.contribution_source else None
            self.frames.append(_to_palette(self._compose(state, command, expert_steering,
                                                         in_charge, attention, phi)))

    def _compose(self, state, command, expert_steering, in_charge, attention,
                 phi=None) -> np.ndarray:
        size = self.panel_px
        camera = state.image_bgr
        if attention is not None:
            camera = attention_overlay(camera, attention)
        camera = cv2.resize(camera, (size, size // 2), interpolation=cv2.INTER_AREA)
        strip = np.full((size - size // 2, size, 3), BACKGROUND, np.uint8)
        _status_strip(strip, state, command, expert_steering, in_charge, self.events)
        top_down = self._trace.copy()
        _draw_car(top_down, self._view, state)
        _draw_command(top_down, state.route_command)
        left = np.vstack([camera, strip])
        if phi is None:
            return np.hstack([left, top_down])
        return np.hstack([left, _contribution_panel(state.image_bgr, phi, size), top_down])

    def save(self, path) -> Path:
        """Write the frames as a looping GIF; return the path."""
        if not self.frames:
            raise ValueError('no frames recorded')
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        duration_ms = int(round(1000.0 * self.stride / self.rate_hz))
        self.frames[0].save(path, save_all=True, append_images=self.frames[1:],
                            duration=duration_ms, loop=0, optimize=False)
        return path


def _contribution_panel(image_bgr: np.ndarray, phi: np.ndarray, size: int) -> np.ndarray:
    """Draw the frame with phi over it (size x size/2) above its legend and scale."""
    scale = contribution_scale_per_m(phi)
    camera = cv2.resize(contribution_overlay(image_bgr, phi, scale), (size, size // 2),
                        interpolation=cv2.INTER_AREA)
    legend = np.full((size - size // 2, size, 3), BACKGROUND, np.uint8)
    rows = (('phi: share of each cell in u', TEXT), ('blue: pushes the wheel left', LEFT_BGR),
            ('orange: pushes it right', RIGHT_BGR), (f'scale +-{scale:.2g} 1/m', TEXT))
    for i, (words, color) in enumerate(rows):
        cv2.putText(legend, words, (6, 18 + 20 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.42, color, 1,
                    cv2.LINE_AA)
    return np.vstack([camera, legend])


def _to_palette(image_bgr: np.ndarray):
    """BGR array -> Pillow palette image (its own 256 colours; 1 byte per pixel in memory)."""
    from PIL import Image
    rgb = Image.fromarray(np.ascontiguousarray(image_bgr[:, :, ::-1]))
    return rgb.quantize(colors=256, method=Image.Quantize.FASTOCTREE)


def _draw_car(image: np.ndarray, view: MapView, state):
    """Draw the car as a triangle at its position, pointing along its heading."""
    length_m = CAR_LENGTH_PX / view.scale
    h = state.heading_rad
    x, y = state.position_m
    nose = (x + length_m * math.cos(h), y + length_m * math.sin(h))
    half = length_m * 0.45
    back_left = (x - half * math.cos(h) - half * math.sin(h),
                 y - half * math.sin(h) + half * math.cos(h))
    back_right = (x - half * math.cos(h) + half * math.sin(h),
                  y - half * math.sin(h) - half * math.cos(h))
    cv2.fillConvexPoly(image, view.pixels([nose, back_left, back_right]), CAR, cv2.LINE_AA)


def _status_strip(strip: np.ndarray, state, command, expert_steering, in_charge, events):
    """Time, who drives, steering bars (model and expert), events, route completion."""
    height, width = strip.shape[:2]
    scale = width / 512.0
    font = cv2.FONT_HERSHEY_SIMPLEX
    line = max(12, int(height / 6))

    def text(row, words, color=TEXT):
        cv2.putText(strip, words, (int(6 * scale) + 2, line * row), font, 0.9 * scale + 0.1,
                    color, 1, cv2.LINE_AA)

    who = 'controller drives' if in_charge else 'EXPERT TAKEOVER'
    text(1, f't {state.time_s:5.1f} s  {who}', TEXT if in_charge else TRACE_TAKEOVER)
    text(2, f'route {state.route_completion:4.0%}  out-of-road events {events}')
    centre, half = width // 2, int(width * 0.4)
    for row, (name, value, color) in enumerate((('steer', command, TRACE_CONTROLLER),
                                                ('expert', expert_steering, (200, 200, 200)))):
        top = line * (3 + row) + 4
        cv2.rectangle(strip, (centre - half, top), (centre + half, top + line // 2), LANE, 1)
        # + = left: a left command draws a bar to the left of the centre
        end = int(round(centre - np.clip(value, -1.0, 1.0) * half))
        cv2.rectangle(strip, (min(centre, end), top), (max(centre, end), top + line // 2),
                      color, -1)
        cv2.putText(strip, name, (2, top + line // 2), font, 0.7 * scale + 0.1, TEXT, 1,
                    cv2.LINE_AA)
    route = route_command_name(state.route_command).replace('_', ' ')
    cv2.putText(strip, f'route command: {route}', (int(6 * scale) + 2, height - 4), font,
                0.9 * scale + 0.1, TEXT if state.route_command == FOLLOW_LANE else COMMAND, 1,
                cv2.LINE_AA)


def _draw_command(image: np.ndarray, command: int):
    """Draw the route command as a sign in the top-left corner of a top-down panel."""
    size = max(24, image.shape[0] // 6)
    cv2.rectangle(image, (2, 2), (size + 2, size + 2), BACKGROUND, -1)
    cv2.rectangle(image, (2, 2), (size + 2, size + 2), LANE, 1)
    c, r = size // 2 + 2, size // 2 - 2
    if command == FOLLOW_LANE:
        for x in (c - r // 2, c + r // 2):
            cv2.line(image, (x, c + r), (x, c - r), TEXT, 2, cv2.LINE_AA)
        return
    # the stem comes up from the bottom; the arrow head points where the route goes
    cv2.line(image, (c, c + r), (c, c), COMMAND, 3, cv2.LINE_AA)
    tip = {LEFT: (c - r, c), STRAIGHT: (c, c - r), RIGHT: (c + r, c)}[command]
    cv2.arrowedLine(image, (c, c), tip, COMMAND, 3, cv2.LINE_AA, tipLength=0.5)


def animate_episode(controller, seed: int, config, path, stride: int = 2,
                    panel_px: int = 256) -> dict:
    """Drive map `seed` once with `controller` and write the episode's animation to `path`.

    Args:
        controller: a closed_loop `Controller`; if it has `attention` and `contribution`
            attributes (a `ModelController` with keep_attention=True) both maps are shown.
        seed: map seed.
        config: `ClosedLoopConfig` (limits, takeover, simulator settings).
        path: GIF to write.
        stride: keep every stride-th frame.
        panel_px: animation height in pixels (width is twice that).

    Returns:
        The episode's measurements (as `drive_episode`) plus 'animation' (path) and
        'animation_frames'.
    """
    from signattn_driver.sim.closed_loop import drive_episode, PER_FRAME_KEYS
    from signattn_driver.sim.metadrive_adapter import MetaDriveSim

    with MetaDriveSim(config.sim) as sim:
        animation = EpisodeAnimation(sim, lambda: getattr(controller, 'attention', None),
                                     stride=stride, panel_px=panel_px,
                                     rate_hz=config.sim.rate_hz,
                                     contribution_source=lambda: getattr(controller,
                                                                         'contribution', None))
        episode = drive_episode(sim, controller, seed, config, observer=animation)
    episode = {k: v for k, v in episode.items() if k not in PER_FRAME_KEYS}
    episode.update(animation=str(animation.save(path)), animation_frames=len(animation.frames))
    return episode
