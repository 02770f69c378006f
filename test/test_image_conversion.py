"""Image messages to arrays without a ROS graph: encodings, step padding, bad input, overlay."""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from signattn_driver.attention_overlay import attention_heatmap, attention_overlay
from signattn_driver.ros.image_conversion import (compressed_msg_to_array, image_msg_to_array,
                                                  ImageConversionError, working_cv_bridge)


def message(image, encoding_, pad=0, **override):
    height, width = image.shape[:2]
    rows = image.reshape(height, -1)
    padded = np.full((height, rows.shape[1] + pad), 77, np.uint8)   # padding must be ignored
    padded[:, :rows.shape[1]] = rows
    fields = dict(height=height, width=width, encoding=encoding_, step=padded.shape[1],
                  is_bigendian=0, data=padded.tobytes())
    fields.update(override)
    return SimpleNamespace(**fields)


@pytest.fixture
def bgr():
    return np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize('pad', [0, 3])
def test_color_encodings_keep_pixels_and_report_channel_order(bgr, pad):
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    out, order = image_msg_to_array(message(bgr, 'bgr8', pad))
    assert order == 'bgr' and np.array_equal(out, bgr)
    out, order = image_msg_to_array(message(rgb, 'rgb8', pad))
    assert order == 'rgb' and np.array_equal(out, rgb)
    bgra = np.dstack([bgr, np.zeros(bgr.shape[:2], np.uint8)])
    out, order = image_msg_to_array(message(bgra, 'bgra8', pad))
    assert order == 'bgr' and np.array_equal(out, bgr)
    rgba = np.dstack([rgb, np.zeros(bgr.shape[:2], np.uint8)])
    out, order = image_msg_to_array(message(rgba, 'rgba8', pad))
    assert order == 'rgb' and np.array_equal(out, rgb)


def test_mono8_becomes_grey_bgr(bgr):
    grey = bgr[..., 0].copy()
    out, order = image_msg_to_array(message(grey, 'mono8', pad=1))
    assert order == 'bgr' and out.shape == (5, 7, 3)
    assert all(np.array_equal(out[..., c], grey) for c in range(3))


def test_data_as_list_or_array_is_accepted(bgr):
    msg = message(bgr, 'bgr8')
    msg.data = list(msg.data)
    assert np.array_equal(image_msg_to_array(msg)[0], bgr)


@pytest.mark.parametrize('override, kind, text', [
    (dict(encoding='16UC1'), 'encoding', 'unsupported image encoding'),
    (dict(encoding='bayer_rggb8'), 'encoding', 'unsupported image encoding'),
    (dict(height=0), 'zero_size', 'zero-size'),
    (dict(width=0, step=0), 'zero_size', 'zero-size'),
    (dict(step=20), 'step', 'step 20 is smaller'),
    (dict(data=b'\x00' * 100), 'truncated', 'truncated image data: 100 bytes'),
])
def test_bad_raw_images_are_rejected_with_a_reason(bgr, override, kind, text):
    with pytest.raises(ImageConversionError, match=text) as info:
        image_msg_to_array(message(bgr, 'bgr8', **override))
    assert info.value.kind == kind


def test_compressed_round_trip_and_corrupt_data(camera_frames):
    frame = camera_frames[0]
    png = SimpleNamespace(format='png', data=cv2.imencode('.png', frame)[1].tobytes())
    assert np.array_equal(compressed_msg_to_array(png), frame)
    for data in (b'', b'\xff\xd8garbage', cv2.imencode('.jpg', frame)[1].tobytes()[:200]):
        msg = SimpleNamespace(format='jpeg', data=data)
        try:
            out = compressed_msg_to_array(msg)
        except ImageConversionError as err:
            assert err.kind == 'corrupt'
        else:   # libjpeg may recover a truncated stream: then the picture has the right shape
            assert out.shape == frame.shape


def test_cv_bridge_is_used_only_when_it_converts_correctly():
    bridge = working_cv_bridge()
    try:
        import cv_bridge  # noqa: F401
    except Exception:
        assert bridge is None   # absent: the built-in converter is used
    else:
        # Present: kept only if its probe conversion passed (the PyPI 1.13 wheel fails it).
        if bridge is not None:
            msg = message(np.arange(18, dtype=np.uint8).reshape(2, 3, 3), 'bgr8', pad=2)
            assert np.array_equal(image_msg_to_array(msg, bridge)[0],
                                  np.arange(18).reshape(2, 3, 3))


def test_broken_bridge_is_detected():
    from signattn_driver.ros import image_conversion

    class Broken:
        def imgmsg_to_cv2(self, msg, desired_encoding):
            return np.zeros((2, 3, 3), np.uint8)    # imports fine, converts wrongly
    pytest.importorskip('sensor_msgs.msg', reason='sensor_msgs needed to build the probe')
    assert not image_conversion._probe(Broken())


def test_overlay_peaks_where_attention_is():
    attention = np.full((10, 20), 1e-4, np.float32)
    attention[2, 15] = 1.0
    heat = attention_heatmap(attention, (480, 640))
    y, x = np.unravel_index(np.argmax(heat), heat.shape)
    assert 2 * 48 <= y < 3 * 48 and 15 * 32 <= x < 16 * 32
    image = np.full((480, 640, 3), 100, np.uint8)
    out = attention_overlay(image, attention, alpha=0.5)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert not np.array_equal(out[y, x], out[470, 10])        # hot and cold differ
    assert np.array_equal(attention_overlay(image, attention, alpha=0.0), image)
