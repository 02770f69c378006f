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

from signattn_driver.errors import RosError
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


class ImageConversionError(RosError, ValueError):
    """An image message that cannot become a picture (encoding, size, step or data wrong).

    Attributes:
        kind: one of 'encoding', 'zero_size', 'step', 'truncated', 'corrupt', 'too_large'
            (diagnostics key).
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


PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# JPEG start-of-frame markers (baseline, progressive, lossless, ...); C4, C8, CC are not frames.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: memoryview) -> tuple[int, int] | None:
    """(width, height) from a JPEG's first SOF segment, or None when there is none."""
    i, end = 2, len(data)
    while i + 4 <= end:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:                        # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:   # stand-alone markers
            i += 2
            continue
        if marker in (0xD9, 0xDA):                # end of image, start of scan: no SOF before
            return None
        length = int.from_bytes(data[i + 2:i + 4], 'big')
        if marker in _JPEG_SOF:
            if i + 9 > end:
                return None
            height = int.from_bytes(data[i + 5:i + 7], 'big')
            width = int.from_bytes(data[i + 7:i + 9], 'big')
            return width, height
        i += 2 + length
    return None


def compressed_image_size(data) -> tuple[str, int, int] | None:
    """Read (format, width, height) of a JPEG or PNG from its header, without decoding.

    Returns None when the bytes start like neither format or the header is cut short.
    """
    head = memoryview(_data_view(data))   # no copy: the SOF may sit after large EXIF segments
    if head[:8] == PNG_SIGNATURE and head[12:16] == b'IHDR' and len(head) >= 24:
        return ('png', int.from_bytes(head[16:20], 'big'), int.from_bytes(head[20:24], 'big'))
    if head[:2] == b'\xff\xd8':
        size = _jpeg_size(head)
        return ('jpeg', *size) if size else None
    return None


def _check_pixels(width: int, height: int, max_pixels: int, what: str):
    if max_pixels and width * height > max_pixels:
        raise ImageConversionError(f'{what} of {width}x{height} = {width * height} pixels is '
                                   f'over max_input_pixels {max_pixels}', 'too_large')


def _data_view(data) -> np.ndarray:
    """Zero-copy uint8 view of a message's data (array.array, bytes, list or numpy)."""
    if isinstance(data, np.ndarray):
        return data.view(np.uint8).reshape(-1)
    try:
        return np.frombuffer(memoryview(data), dtype=np.uint8)
    except TypeError:  # a plain list of ints (tests, some Python message builders)
        return np.asarray(data, dtype=np.uint8)


def image_msg_to_array(msg, bridge=None, max_pixels: int = 0) -> tuple[np.ndarray, str]:
    """Convert a sensor_msgs/Image to a color picture.

    Args:
        msg: sensor_msgs/Image (or any object with height, width, encoding, step, data).
        bridge: a working CvBridge to use (see `working_cv_bridge`), or None for the built-in
            converter.
        max_pixels: refuse images with more pixels than this (0 = no limit).

    Returns:
        (image (H, W, 3) uint8, color_order 'bgr' or 'rgb'). The array may be a view of the
        message's buffer: copy it if the message is reused.

    Raises:
        ImageConversionError: unsupported encoding, zero size, too many pixels, step too
            small, truncated data.
    """
    height, width, step, channels, order = _check_layout(msg)
    _check_pixels(width, height, max_pixels, 'raw image')
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


def compressed_msg_to_array(msg, max_pixels: int = 0) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (JPEG, PNG) to BGR uint8 (H, W, 3).

    The picture's size is read from the JPEG SOF / PNG IHDR header before decoding, so a small
    message that would decode to a huge picture (a "decompression bomb") costs nothing. Only
    JPEG and PNG are decoded: OpenCV reads other formats too, without that check.

    Args:
        msg: sensor_msgs/CompressedImage.
        max_pixels: refuse pictures with more pixels than this (0 = no limit).

    Raises:
        ImageConversionError: empty, not JPEG/PNG, too many pixels, or undecodable data.
    """
    data = _data_view(msg.data)
    if data.size == 0:
        raise ImageConversionError(f'empty compressed image (format {msg.format!r})', 'corrupt')
    size = compressed_image_size(data)
    if size is None:
        raise ImageConversionError(f'not a JPEG or PNG with a readable header ({data.size} '
                                   f'bytes, format {msg.format!r})', 'corrupt')
    _check_pixels(size[1], size[2], max_pixels, f'{size[0].upper()} picture')
    try:
        return decode_image(data)
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
