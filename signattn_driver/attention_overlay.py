"""Attention heat maps over camera images, as drawn in the paper (Fig. 6, Sec. IV-C).

The 10x20 map has one eighth of the input resolution; it is up-sampled to the image size and
Gaussian-blurred to soften the cell edges, coloured with a jet palette and blended over the
camera image. Pure numpy/OpenCV: the node, the demo and the evaluation share it.
"""

import cv2
import numpy as np

# Blur sigma in cells of the 10x20 map: half a cell hides the grid without moving the peaks.
BLUR_SIGMA_CELLS = 0.5
DEFAULT_ALPHA = 0.5


def attention_heatmap(attention: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Up-sample and blur an attention map, scaled so that its peak is 1.

    Args:
        attention: (10, 20) non-negative weights (a softmax over locations).
        size_hw: output (height, width) in pixels.

    Returns:
        (height, width) float32 in [0, 1].
    """
    attention = np.asarray(attention, np.float32)
    if attention.ndim != 2:
        raise ValueError(f'expected a 2-D attention map, got shape {attention.shape}')
    height, width = int(size_hw[0]), int(size_hw[1])
    up = cv2.resize(attention, (width, height), interpolation=cv2.INTER_LINEAR)
    sigma = BLUR_SIGMA_CELLS * width / attention.shape[1]
    up = cv2.GaussianBlur(up, (0, 0), sigmaX=sigma, sigmaY=sigma)
    peak = float(up.max())
    if not np.isfinite(peak) or peak <= 0:
        return np.zeros((height, width), np.float32)
    return np.clip(up / peak, 0.0, 1.0)


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
    heat = attention_heatmap(attention, image_bgr.shape[:2])
    colored = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(np.ascontiguousarray(image_bgr), 1.0 - alpha, colored, alpha, 0.0)
