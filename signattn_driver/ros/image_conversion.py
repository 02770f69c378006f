"""sensor_msgs Image / CompressedImage <-> numpy arrays, for the drive node.

A ROS 2 `cv_bridge` is used for raw images when one is installed *and works*: the PyPI
`cv-bridge` 1.13 wheel imports fine but fails at its first conversion under numpy 2 /
OpenCV 5, so the bridge is probed once with a tiny conversion (`working_cv_bridge`) instead of
trusting the import. Without a working bridge a small converter reads the message itself,
honouring `step` (row padding) and the encodings below; everything else is rejected with an
`ImageConversionError` naming the problem, never a crash or a silently wrong picture.

Raw images are returned as (array (H, W, 3) uint8, color_order) so that an rgb8 camera needs no
channel swap: the preprocessing takes 'rgb' or 'bgr' directly.
"""

import functools
import logging

import numpy as np

from signattn_driver.preprocessing import decode_image, PreprocessingError

# encoding -> (channels, color order of the first three channels; None = grey)
ENCODINGS = {
    'bgr8': (3, 'bgr'),
    'rgb8': (3, 'rgb'),
    'bgra8': (4, 'bgr'),
    'rgba8': (4, 'rgb'),
    'mono8': (1, None),
}
log = logging.getLogger(__name__)


class ImageConversionError(ValueError):
    """An image message that cannot become a picture (encoding, size, step or data wrong).

    Attributes:
        kind: one of 'encoding', 'zero_size', 'step', 'truncated', 'corrupt' (diagnostics key).
    """

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


def _check_layout(msg) -> tuple[int, int, int, int, str | None]:
    """Validate a raw Image message's header fields; return (h, w, step, channels, order)."""
    encoding = str(msg.encoding).lower()
    if encoding not in ENCODINGS:
        raise ImageConversionError(f'unsupported image encoding {msg.encoding!r} '
                                   f'(supported: {", ".join(ENCODINGS)})', 'encoding')
    channels, order = ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageConversionError(f'zero-size image ({width}x{height})', 'zero_size')
    if step < width * channels:
        raise ImageConversionError(f'step {step} is smaller than width x channels '
                                   f'({width} x {channels}) for {encoding}', 'step')
    size = len(msg.data)
    if size < step * height:
        raise ImageConversionError(f'truncated image data: {size} bytes, expected '
                                   f'step x height = {step * height}', 'truncated')
    return height, width, step, channels, order


def _data_view(data) -> np.ndarray:
    """Zero-copy uint8 view of a message's data (array.array, bytes, list or numpy)."""
    if isinstance(data, np.ndarray):
        return data.view(np.uint8).reshape(-1)
    try:
        return np.frombuffer(memoryview(data), dtype=np.uint8)
    except TypeError:  # a plain list of ints (tests, some Python message builders)
        return np.asarray(data, dtype=np.uint8)


def image_msg_to_array(msg, bridge=None) -> tuple[np.ndarray, str]:
    """Convert a sensor_msgs/Image to a color picture.

    Args:
        msg: sensor_msgs/Image (or any object with height, width, encoding, step, data).
        bridge: a working CvBridge to use (see `working_cv_bridge`), or None for the built-in
            converter.

    Returns:
        (image (H, W, 3) uint8, color_order 'bgr' or 'rgb'). The array may be a view of the
        message's buffer: copy it if the message is reused.

    Raises:
        ImageConversionError: unsupported encoding, zero size, step too small, truncated data.
    """
    height, width, step, channels, order = _check_layout(msg)
    if bridge is not None:
        try:
            return np.asarray(bridge.imgmsg_to_cv2(msg, desired_encoding='bgr8')), 'bgr'
        except Exception as err:  # cv_bridge raises its own CvBridgeError and others
            raise ImageConversionError(f'cv_bridge could not convert the image: {err}',
                                       'corrupt') from err
    rows = _data_view(msg.data)[:step * height].reshape(height, step)
    pixels = rows[:, :width * channels].reshape(height, width, channels)  # drops step padding
    if channels == 1:
        import cv2
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR), 'bgr'
    if channels == 4:
        pixels = pixels[..., :3]
    return pixels, order


def compressed_msg_to_array(msg) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (JPEG, PNG) to BGR uint8 (H, W, 3).

    Raises:
        ImageConversionError: empty or undecodable data.
    """
    try:
        return decode_image(_data_view(msg.data))
    except PreprocessingError as err:
        raise ImageConversionError(f'{err} (format {msg.format!r})', 'corrupt') from err


def array_to_image_msg(image: np.ndarray, encoding: str = 'bgr8', header=None):
    """Build a sensor_msgs/Image from an array (H, W, C) or (H, W).

    Args:
        image: uint8 for *8 encodings, float32 for '32FC1'.
        encoding: a ROS image encoding matching the array.
        header: std_msgs/Header to copy (None leaves the default).
    """
    from sensor_msgs.msg import Image
    image = np.ascontiguousarray(image)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(image.strides[0])
    msg.data = image.tobytes()
    return msg


def _probe(bridge) -> bool:
    """Return whether `bridge` converts a 2x3 bgr8 image with 4 bytes of padding correctly."""
    from sensor_msgs.msg import Image
    expected = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    msg = Image(height=2, width=3, encoding='bgr8', is_bigendian=0, step=13)
    padded = np.zeros((2, 13), np.uint8)
    padded[:, :9] = expected.reshape(2, 9)
    msg.data = padded.tobytes()
    out = bridge.imgmsg_to_cv2(msg, desired_encoding='bgr8')
    return np.array_equal(np.asarray(out), expected)


@functools.lru_cache(maxsize=1)
def working_cv_bridge():
    """Return a CvBridge that passed a real conversion, or None (absent or broken).

    The PyPI `cv-bridge` 1.13 imports but fails under numpy 2 / OpenCV 5: only a probe tells.
    """
    try:
        from cv_bridge import CvBridge
        bridge = CvBridge()
        if _probe(bridge):
            return bridge
        log.warning('cv_bridge converts images wrongly here; using the built-in converter')
    except Exception as err:  # ImportError, or any failure of a broken build
        log.debug('cv_bridge unusable (%s: %s); using the built-in converter',
                  type(err).__name__, err)
    return None
