"""Animations of the two maps side by side: where the network looked, what pushed the wheel.

Each frame of the animation is one camera frame drawn twice: left the attention overlay
(alpha, attention_overlay.py), right the contribution overlay (phi, contribution_overlay.py),
with a caption strip under each that says what the colours mean and the scale of phi. One
animation rather than two GIFs: the viewer compares the maps of the same instant without
synchronising two players. Pure numpy/OpenCV (+ Pillow to write the GIF): live evaluation and
the demo use it, the simulator's animation can.
"""

from pathlib import Path

import cv2
import numpy as np

from signattn_driver.contribution_overlay import LEFT_BGR, RIGHT_BGR

PANEL_WIDTH_PX = 320            # each map's width in the animation (GIFs stay small)
CAPTION_HEIGHT_PX = 34          # two lines of text under each panel
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE = 0.38
_TEXT_BGR = (255, 255, 255)


def scale_caption(scale_per_m: float | None, per_frame: bool | None) -> str:
    """Return the caption line that states the contribution overlay's colour scale.

    Args:
        scale_per_m: the scale the node reported (its /diagnostics `contribution_scale_per_m`),
            1/m; None or <= 0 when none was heard.
        per_frame: True when the node scales each frame to its own max |phi| (the default),
            False for a fixed scale, None when unknown.
    """
    if scale_per_m is None or not scale_per_m > 0:
        return 'scale +-each frame\'s max |phi|' if per_frame else 'scale: not reported'
    if per_frame is False:
        return f'scale +-{scale_per_m:.3g} 1/m (fixed)'
    # The node reports the scale of its latest overlay once a second: near, not this frame's.
    return f'scale ~+-{scale_per_m:.3g} 1/m (each frame to its max)'


def _panel(image_bgr: np.ndarray, width_px: int) -> np.ndarray:
    scale = width_px / image_bgr.shape[1]
    height_px = max(1, round(image_bgr.shape[0] * scale))
    return cv2.resize(image_bgr, (width_px, height_px), interpolation=cv2.INTER_AREA)


def _caption(width_px: int, lines: list) -> np.ndarray:
    """Draw a black strip with lines of (text, swatch BGR or None) items, left to right."""
    strip = np.zeros((CAPTION_HEIGHT_PX, width_px, 3), np.uint8)
    for row, items in enumerate(lines):
        x, y = 4, 13 + 16 * row
        for text, swatch in items:
            if swatch is not None:
                cv2.rectangle(strip, (x, y - 8), (x + 8, y), swatch, thickness=-1)
                x += 11
            cv2.putText(strip, text, (x, y), _FONT, _FONT_SCALE, _TEXT_BGR, 1, cv2.LINE_AA)
            x += cv2.getTextSize(text, _FONT, _FONT_SCALE, 1)[0][0] + 6
    return strip


def side_by_side(attention_bgr: np.ndarray, contribution_bgr: np.ndarray, scale_text: str,
                 panel_width_px: int = PANEL_WIDTH_PX) -> np.ndarray:
    """Put an attention overlay and a contribution overlay of one frame side by side.

    Args:
        attention_bgr: (H, W, 3) uint8 attention overlay (the node's `attention` image).
        contribution_bgr: (H', W', 3) uint8 contribution overlay (`attention/contribution`).
        scale_text: the phi scale line (scale_caption).
        panel_width_px: width of each panel; heights follow the images' aspect ratio.

    Returns:
        (h + CAPTION_HEIGHT_PX, 2 * panel_width_px, 3) uint8 BGR frame.
    """
    left, right = _panel(attention_bgr, panel_width_px), _panel(contribution_bgr, panel_width_px)
    height = max(left.shape[0], right.shape[0])
    pad = [np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0))) for p in (left, right)]
    captions = [
        _caption(panel_width_px, [[('attention alpha: where the network looked', None)],
                                  [('red = most weight (each frame to its peak)', None)]]),
        _caption(panel_width_px, [[('phi:', None), ('blue = left,', LEFT_BGR),
                                   ('orange = right', RIGHT_BGR)], [(scale_text, None)]]),
    ]
    return np.concatenate([np.concatenate([p, c], 0) for p, c in zip(pad, captions)], 1)


def write_gif(path: Path, frames_bgr: list, fps: float = 10.0, max_width_px: int = 640) -> Path:
    """Write BGR uint8 frames as an animated GIF (Pillow), downscaled to `max_width_px`."""
    from PIL import Image as PILImage
    if not frames_bgr:
        raise ValueError('no frames to write')
    images = []
    for frame in frames_bgr:
        scale = min(1.0, max_width_px / frame.shape[1])
        small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        images.append(PILImage.fromarray(cv2.cvtColor(small, cv2.COLOR_BGR2RGB)))
    images[0].save(path, save_all=True, append_images=images[1:], loop=0,
                   duration=int(1000 / fps))
    return Path(path)
