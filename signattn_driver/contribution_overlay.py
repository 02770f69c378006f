"""The contribution map phi drawn over the camera image: which cells push the wheel which way.

phi (10x20, signed, 1/m; model.Explained) splits the command exactly, u = bias + sum(phi).
REP-103: positive u turns left, so a cell with phi > 0 pushes the wheel left. The overlay is a
diverging map: LEFT_BGR where phi > 0, RIGHT_BGR where phi < 0, more opaque with |phi|, fully
transparent at zero; each cell is drawn as a block of its own value. The colour scale is
symmetric, +-scale_per_m: by default the frame's own max |phi|, or a fixed value for maps that
compare across frames. Pure numpy/OpenCV, beside
attention_overlay.py; the node, the demo and the evaluation can share it.
"""

import cv2
import numpy as np

LEFT_BGR = (230, 120, 0)    # blue: pushes the wheel left (phi > 0)
RIGHT_BGR = (0, 140, 255)   # orange: pushes the wheel right (phi < 0); a colour-blind-safe pair


def contribution_scale_per_m(contribution_per_m: np.ndarray, fixed_per_m: float = 0.0) -> float:
    """Return the half-width of the symmetric colour scale, 1/m.

    Args:
        contribution_per_m: (10, 20) phi, 1/m.
        fixed_per_m: a fixed scale when > 0; otherwise the map's max |phi| (0 for an all-zero
            or non-finite map).
    """
    if fixed_per_m > 0:
        return float(fixed_per_m)
    peak = float(np.max(np.abs(contribution_per_m))) if np.size(contribution_per_m) else 0.0
    return peak if np.isfinite(peak) else 0.0


def contribution_overlay(image_bgr: np.ndarray, contribution_per_m: np.ndarray,
                         scale_per_m: float, alpha: float = 0.5) -> np.ndarray:
    """Blend the signed contribution map over a camera image.

    Args:
        image_bgr: (H, W, 3) uint8 BGR camera image.
        contribution_per_m: (10, 20) phi, 1/m (+ = pushes the wheel left).
        scale_per_m: |phi| drawn at full strength (contribution_scale_per_m); values beyond it
            are clipped, 0 draws nothing.
        alpha: opacity at full strength (0 = image only, 1 = colour only).

    Returns:
        (H, W, 3) uint8 BGR image; where phi is 0 the camera pixels are unchanged.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f'alpha must be in [0, 1], got {alpha}')
    phi = np.asarray(contribution_per_m, np.float32)
    if phi.ndim != 2:
        raise ValueError(f'expected a 2-D contribution map, got shape {phi.shape}')
    image = np.ascontiguousarray(image_bgr)
    if not (np.isfinite(scale_per_m) and scale_per_m > 0):
        return image.copy()
    height, width = image.shape[:2]
    # Colour and weight per cell (10x20), then each cell a block of them (nearest): a zero cell
    # stays transparent, and the per-pixel work is one blend (22 -> ~2 ms for 640x480).
    phi = np.nan_to_num(phi)
    weight = np.clip(np.abs(phi) / scale_per_m, 0.0, 1.0).astype(np.float32) * alpha
    colour = np.where((phi > 0)[..., None], np.uint8(LEFT_BGR), np.uint8(RIGHT_BGR))
    weight = cv2.resize(weight, (width, height), interpolation=cv2.INTER_NEAREST)
    colour = cv2.resize(colour.astype(np.uint8), (width, height),
                        interpolation=cv2.INTER_NEAREST)
    return cv2.blendLinear(image, colour, 1.0 - weight, weight)
