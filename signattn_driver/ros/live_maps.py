"""The node's maps as live evaluation hears them: `attention`, `attention/contribution`, scale.

`MapRecorder` keeps the first `limit` bgr8 overlays of each map by header stamp, counts every
one received, and notes the contribution scale the node reports on /diagnostics
(`contribution_scale_per_m`, 1/m, the scale of its latest overlay, once a second). `write`
turns the frames that have both maps into one side-by-side GIF (map_animation). The callbacks
only store; nothing here creates ROS entities.
"""

import logging
from pathlib import Path
import threading
import time

import numpy as np

from signattn_driver.data.labels import stamp_ns_of
from signattn_driver.map_animation import (PANEL_WIDTH_PX, scale_caption, side_by_side,
                                           write_gif)

log = logging.getLogger(__name__)
SCALE_KEY = 'contribution_scale_per_m'


class MapRecorder:
    """Overlays of the node's two maps, by camera stamp.

    Args:
        limit: overlays of each map kept as images (the rest are only counted).
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.per_frame_scale = None    # True: each frame's max |phi|; False: fixed; None: unknown
        self._lock = threading.Lock()
        self.clear()

    def clear(self):
        """Forget everything heard so far (after the warm-up)."""
        with self._lock:
            self.attention, self.contribution = {}, {}   # stamp ns -> (H, W, 3) uint8 BGR
            self.contribution_received_s = {}             # stamp ns -> perf_counter()
            self.received = {'attention': 0, 'contribution': 0}
            self.scales = []                              # (perf_counter(), scale 1/m)

    def on_attention(self, msg):
        """Keep or count an `attention` overlay."""
        self._keep(self.attention, 'attention', msg)

    def on_contribution(self, msg):
        """Keep or count an `attention/contribution` overlay (and when it came)."""
        if self._keep(self.contribution, 'contribution', msg):
            self.contribution_received_s[stamp_ns_of(msg.header)] = time.perf_counter()

    def on_diagnostics(self, msg):
        """Note the contribution scale the node reports on /diagnostics (> 0 only)."""
        for status in msg.status:
            for pair in status.values:
                if pair.key == SCALE_KEY:
                    try:
                        value = float(pair.value)
                    except ValueError:
                        continue
                    if np.isfinite(value) and value > 0:
                        with self._lock:
                            self.scales.append((time.perf_counter(), value))

    def _keep(self, images: dict, kind: str, msg) -> bool:
        from signattn_driver.ros.image_conversion import image_msg_to_array
        with self._lock:
            self.received[kind] += 1
            if len(images) >= self.limit or msg.encoding != 'bgr8':
                return False
        image, _ = image_msg_to_array(msg)
        with self._lock:
            images[stamp_ns_of(msg.header)] = image.copy()
        return True

    def caught_up(self) -> bool:
        """Return whether as many contribution overlays as attention overlays have arrived."""
        with self._lock:
            return self.received['contribution'] >= self.received['attention']

    def scale_near(self, when_s: float) -> float | None:
        """Return the reported scale (1/m) heard closest to perf_counter() `when_s`, or None."""
        if not self.scales:
            return None
        return min(self.scales, key=lambda pair: abs(pair[0] - when_s))[1]

    def summary(self) -> dict:
        """Return the counts and scales for the report."""
        values = [v for _, v in self.scales]
        return {
            'attention_frames_received': self.received['attention'],
            'contribution_frames_received': self.received['contribution'],
            'contribution_scale': ('per frame (max abs(phi))' if self.per_frame_scale else
                                   'fixed' if self.per_frame_scale is False else 'unknown'),
            'contribution_scale_reported_per_m': {
                'min': min(values), 'median': float(np.median(values)), 'max': max(values)}
            if values else None,
        }

    def write(self, path: Path) -> dict:
        """Write the GIF: both maps side by side where both were heard, else attention alone.

        Returns:
            attention_gif (its path, None when no overlay was heard), gif_frames (its frame
            count) and gif_layout (what a frame shows).
        """
        both = sorted(set(self.attention) & set(self.contribution))
        if both:
            frames = [side_by_side(self.attention[s], self.contribution[s], scale_caption(
                self.scale_near(self.contribution_received_s[s]), self.per_frame_scale))
                for s in both]
        else:
            if self.attention:
                log.warning('no attention/contribution overlay heard (a node without it?): '
                            'the GIF shows the attention map alone')
            frames = [self.attention[s] for s in sorted(self.attention)]
        if not frames:
            return {'attention_gif': None, 'gif_frames': 0, 'gif_layout': None}
        width = 2 * PANEL_WIDTH_PX if both else PANEL_WIDTH_PX
        return {'attention_gif': str(write_gif(path, frames, max_width_px=width)),
                'gif_frames': len(frames),
                'gif_layout': ('attention alpha left, contribution phi right' if both
                               else 'attention alpha alone')}
