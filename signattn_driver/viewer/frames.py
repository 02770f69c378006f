"""Pictures for the viewer: BGR arrays or raw attention maps -> JPEG `Frame`s.

The drive node publishes `attention` either as a bgr8 overlay over the camera picture or, with
attention_raw:=true, as the raw (10, 20) 32FC1 map. A raw map travels to the page together
with the camera's own JPEG of the same stamp, and the page draws the heat map (no decoding or
encoding here, and none in the node); without that JPEG it is drawn here as a heat map alone,
`RAW_MAP_WIDTH_PX` wide. Foxglove gets the overlay drawn here (`overlay_jpeg`).
"""

import cv2
import numpy as np

from signattn_driver.attention_overlay import attention_heatmap, attention_overlay
from signattn_driver.viewer.config import ViewerError
from signattn_driver.viewer.hub import Frame

RAW_MAP_WIDTH_PX = 640


class FrameEncodingError(ViewerError, ValueError):
    """A picture that cannot be sent (wrong shape or type, encoder failure)."""


def encode_jpeg(image_bgr: np.ndarray, quality: int) -> bytes:
    """Encode an (H, W, 3) uint8 BGR picture as JPEG bytes."""
    image_bgr = np.asarray(image_bgr)
    if image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or \
            0 in image_bgr.shape:
        raise FrameEncodingError(f'expected an (H, W, 3) uint8 picture, got {image_bgr.shape} '
                                 f'{image_bgr.dtype}')
    ok, data = cv2.imencode('.jpg', image_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise FrameEncodingError(f'JPEG encoding failed for a {image_bgr.shape} picture')
    return data.tobytes()


def raw_map_bgr(attention: np.ndarray) -> np.ndarray:
    """Draw a raw (h, w) attention map as a jet heat map, RAW_MAP_WIDTH_PX wide, BGR uint8."""
    attention = np.nan_to_num(np.asarray(attention, np.float32), nan=0.0, posinf=0.0,
                              neginf=0.0)
    if attention.ndim != 2 or 0 in attention.shape:
        raise FrameEncodingError(f'expected a 2-D attention map, got shape {attention.shape}')
    height = max(1, round(RAW_MAP_WIDTH_PX * attention.shape[0] / attention.shape[1]))
    heat = attention_heatmap(np.clip(attention, 0, None), (height, RAW_MAP_WIDTH_PX))
    return cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)


def make_frame(stream: str, stamp_ns: int, image_bgr: np.ndarray, quality: int) -> Frame:
    """Encode a BGR picture of `stream` taken at `stamp_ns` into a Frame."""
    return Frame(stream, int(stamp_ns), encode_jpeg(image_bgr, quality),
                 int(image_bgr.shape[1]), int(image_bgr.shape[0]))


def overlay_jpeg(frame: Frame, quality: int) -> bytes:
    """Return the JPEG of a frame with its attention map drawn over the picture, if it has one."""
    if frame.attention_map is None:
        return frame.jpeg
    image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise FrameEncodingError(f'the camera picture of {frame.stream} does not decode')
    attention = np.clip(np.nan_to_num(frame.attention_map, nan=0.0, posinf=0.0, neginf=0.0),
                        0, None)
    return encode_jpeg(attention_overlay(image, attention), quality)
