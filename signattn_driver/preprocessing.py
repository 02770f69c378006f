"""The one path from a camera image to the network input (paper Sec. III-A).

    camera image (H, W, 3) uint8, BGR or RGB, any size
      -> area resize to 80x160 -> OpenCV-convention HSV, uint8 (H 0..179, S and V 0..255)
      -> float input (3, 80, 160) in [-1, 1]

The uint8 HSV frame is what the converter stores on disk and what training reads; the last step
(`hsv_u8_to_input`) runs on the model's device. Two implementations of the first steps exist for
two places that need them: `to_hsv_u8` (numpy/OpenCV: converter, CPU node) and `to_hsv_u8_torch`
(any torch device: the CUDA-resident node). Their resize agrees within 1 level and their
colour conversion within 1 level on identical pixels; end to end, the 99th percentile of the
per-pixel difference is within HSV_TOLERANCE levels. The maximum is not bounded: for dark or grey
pixels S and H are ill-conditioned, so a 1-level rounding difference can move them far
(test/core/test_preprocessing.py).
"""

import functools
import math

import cv2
import numpy as np
import torch

from signattn_driver.errors import SignattnError
from signattn_driver.model import INPUT_HEIGHT, INPUT_WIDTH

PREPROCESSING_VERSION = 1
PREPROCESSING = {
    'version': PREPROCESSING_VERSION,
    'size_hw': [INPUT_HEIGHT, INPUT_WIDTH],
    'resize': 'area',
    'color_space': 'hsv_opencv_u8',
    'input_range': [-1.0, 1.0],
}
COLOR_ORDERS = ('bgr', 'rgb')
# Largest per-pixel difference, in uint8 levels, between the OpenCV and torch paths.
HSV_TOLERANCE = 2
# H spans 0..179 in OpenCV's uint8 HSV, S and V 0..255; each maps to [-1, 1].
_HSV_MAX = (179.0, 255.0, 255.0)


class PreprocessingError(SignattnError, ValueError):
    """An image that cannot become network input (empty, wrong channels, undecodable)."""


def decode_image(data) -> np.ndarray:
    """Decode a compressed image (JPEG/PNG bytes) to a BGR uint8 array (H, W, 3).

    Raises:
        PreprocessingError: the bytes are empty or not a decodable image.
    """
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    if buf.size == 0:
        raise PreprocessingError('empty compressed image')
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if image is None:
        raise PreprocessingError(f'undecodable compressed image ({buf.size} bytes)')
    return image


def compressed_to_hsv_u8(data) -> np.ndarray:
    """Decode a compressed camera frame and convert it: the (80, 160, 3) uint8 HSV on disk.

    Raises:
        PreprocessingError: the bytes are not a decodable color image.
    """
    return to_hsv_u8(decode_image(data), 'bgr')


def _check_image(image_shape, color_order: str):
    if color_order not in COLOR_ORDERS:
        raise PreprocessingError(f'color_order must be one of {COLOR_ORDERS}, got {color_order!r}')
    if len(image_shape) != 3 or image_shape[-1] != 3 or image_shape[0] < 1 or image_shape[1] < 1:
        raise PreprocessingError(
            f'expected an (H, W, 3) color image, got shape {tuple(image_shape)}')


def to_hsv_u8(image: np.ndarray, color_order: str = 'bgr') -> np.ndarray:
    """Resize and convert a camera image with OpenCV.

    Args:
        image: (H, W, 3) uint8 color image.
        color_order: 'bgr' (OpenCV, Udacity JPEG) or 'rgb'.

    Returns:
        (80, 160, 3) uint8 HSV (H 0..179, S 0..255, V 0..255).
    """
    _check_image(image.shape, color_order)
    if image.dtype != np.uint8:
        raise PreprocessingError(f'expected uint8 pixels, got {image.dtype}')
    small = cv2.resize(image, (INPUT_WIDTH, INPUT_HEIGHT), interpolation=cv2.INTER_AREA)
    code = cv2.COLOR_BGR2HSV if color_order == 'bgr' else cv2.COLOR_RGB2HSV
    return cv2.cvtColor(small, code)


@functools.lru_cache(maxsize=16)
def _resize_matrix(src: int, dst: int, area: bool) -> np.ndarray:
    """(dst, src) weights that reproduce cv2.resize(..., INTER_AREA) along one axis.

    Shrinking (area=True): each output pixel averages the input interval it covers, partial
    pixels weighted by overlap. Otherwise OpenCV's INTER_AREA falls back to its linear variant
    with fx = frac((dx + 1) - (sx + 1) / scale), which is reproduced here.
    """
    scale = src / dst
    w = np.zeros((dst, src), np.float64)
    for i in range(dst):
        if area:
            start, end = i * scale, (i + 1) * scale
            for j in range(int(math.floor(start)), min(int(math.ceil(end)), src)):
                overlap = min(end, j + 1) - max(start, j)
                if overlap > 0:
                    w[i, j] = overlap / scale
        else:
            sx = int(math.floor(i * scale))
            fx = (i + 1) - (sx + 1) / scale
            fx = 0.0 if fx <= 0 else fx - math.floor(fx)
            if sx >= src - 1:
                sx, fx = src - 1, 0.0
            w[i, sx] += 1.0 - fx
            if fx:
                w[i, sx + 1] += fx
    return w


_MATRIX_CACHE = {}  # per-device constants of the torch path


def _resize_matrices(height: int, width: int, device: torch.device):
    area = height >= INPUT_HEIGHT and width >= INPUT_WIDTH  # as OpenCV decides
    key = (height, width, str(device))
    if key not in _MATRIX_CACHE:
        rows = torch.from_numpy(_resize_matrix(height, INPUT_HEIGHT, area)).float()
        cols = torch.from_numpy(_resize_matrix(width, INPUT_WIDTH, area)).float()
        _MATRIX_CACHE[key] = (rows.to(device), cols.t().contiguous().to(device))
    return _MATRIX_CACHE[key]


def to_hsv_u8_torch(image: torch.Tensor, color_order: str = 'bgr') -> torch.Tensor:
    """Torch twin of `to_hsv_u8`, on the image's device.

    Args:
        image: (H, W, 3) or (N, H, W, 3) uint8 tensor.
        color_order: 'bgr' or 'rgb'.

    Returns:
        (80, 160, 3) or (N, 80, 160, 3) uint8 HSV tensor on the same device.
    """
    _check_image(image.shape[-3:], color_order)
    batched = image.dim() == 4
    x = (image if batched else image[None]).permute(0, 3, 1, 2).float()     # (N, 3, H, W)
    rows, cols_t = _resize_matrices(x.shape[-2], x.shape[-1], x.device)
    x = torch.round(rows @ x @ cols_t)                       # (N, 3, 80, 160); OpenCV yields uint8
    if color_order == 'bgr':
        x = x.flip(1)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    v, _ = x.max(dim=1)
    mn, _ = x.min(dim=1)
    delta = v - mn
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    s = torch.where(v > 0, 255.0 * delta / torch.where(v > 0, v, torch.ones_like(v)),
                    torch.zeros_like(v))
    h = torch.where(v == r, 60.0 * (g - b) / safe,
                    torch.where(v == g, 120.0 + 60.0 * (b - r) / safe,
                                240.0 + 60.0 * (r - g) / safe))
    h = torch.where(delta > 0, h, torch.zeros_like(h))
    h = torch.remainder(h, 360.0) / 2.0
    hsv = torch.stack([torch.round(h) % 180, torch.round(s), v], dim=-1).to(torch.uint8)
    return hsv if batched else hsv[0]


def hsv_u8_to_input(hsv: torch.Tensor) -> torch.Tensor:
    """Scale uint8 HSV frames (..., 80, 160, 3) to network input (..., 3, 80, 160) in [-1, 1]."""
    key = ('scale', str(hsv.device))
    if key not in _MATRIX_CACHE:  # one small upload per device, not one per frame
        _MATRIX_CACHE[key] = torch.tensor([2.0 / m for m in _HSV_MAX], device=hsv.device)
    x = hsv.float() * _MATRIX_CACHE[key] - 1.0
    return x.movedim(-1, -3).contiguous()


def image_to_input(image: np.ndarray, color_order: str = 'bgr') -> torch.Tensor:
    """Numpy camera image (H, W, 3) uint8 -> CPU network input (3, 80, 160) float32."""
    return hsv_u8_to_input(torch.from_numpy(to_hsv_u8(image, color_order)))
