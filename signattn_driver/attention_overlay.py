"""Attention heat maps over camera images, as drawn in the paper (Fig. 6, Sec. IV-C).

The 10x20 map has one eighth of the input resolution; it is up-sampled to the image size and
Gaussian-blurred to soften the cell edges, coloured with a jet palette and blended over the
camera image. Pure numpy/OpenCV: the node, the demo and the evaluation share it.
"""

import cv2
import numpy as np

# Blur sigma in cells of the 10x20 map: half a cell hides the grid without moving the peaks.
BLUR_SIGMA_CELLS = 0.5
WORK_PX_PER_CELL = 8   # resolution of the blur, pixels per map cell
DEFAULT_ALPHA = 0.5


def _blurred_peak_one(attention: np.ndarray) -> np.ndarray:
    """Blur a (rows, cols) map at WORK_PX_PER_CELL pixels per cell, scaled so its peak is 1."""
    attention = np.asarray(attention, np.float32)
    if attention.ndim != 2:
        raise ValueError(f'expected a 2-D attention map, got shape {attention.shape}')
    rows, cols = attention.shape
    work = cv2.resize(attention, (cols * WORK_PX_PER_CELL, rows * WORK_PX_PER_CELL),
                      interpolation=cv2.INTER_LINEAR)
    sigma = BLUR_SIGMA_CELLS * WORK_PX_PER_CELL
    work = cv2.GaussianBlur(work, (0, 0), sigmaX=sigma, sigmaY=sigma)
    peak = float(work.max())
    if not np.isfinite(peak) or peak <= 0:
        return np.zeros_like(work)
    return np.clip(work / peak, 0.0, 1.0)


def attention_heatmap(attention: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Up-sample and blur an attention map, scaled so that its peak is 1.

    The blur runs at WORK_PX_PER_CELL pixels per cell and the result is stretched: the blur
    leaves nothing finer than a cell, so this is the picture a full-size blur gives at a few
    percent of its cost (the node draws it for every watched frame).

    Args:
        attention: (10, 20) non-negative weights (a softmax over locations).
        size_hw: output (height, width) in pixels.

    Returns:
        (height, width) float32 in [0, 1].
    """
    height, width = int(size_hw[0]), int(size_hw[1])
    return cv2.resize(_blurred_peak_one(attention), (width, height),
                      interpolation=cv2.INTER_LINEAR)


def attention_overlay(image_bgr: np.ndarray, attention: np.ndarray,
                      alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """Blend the heat map of `attention` over a camera image.

    Args:
        image_bgr: (H, W, 3) uint8 BGR camera image.
        attention: (10, 20) attention weights.
        alpha: weight of the heat map in the blend (0 = image only, 1 = heat map only).

    Returns:
        (H, W, 3) uint8 BGR image.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f'alpha must be in [0, 1], got {alpha}')
    # Colour at the blur's resolution, then stretch the colours: same picture, less work.
    heat = _blurred_peak_one(attention)
    colored = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
    height, width = image_bgr.shape[:2]
    colored = cv2.resize(colored, (width, height), interpolation=cv2.INTER_LINEAR)
    return cv2.addWeighted(np.ascontiguousarray(image_bgr), 1.0 - alpha, colored, alpha, 0.0)
