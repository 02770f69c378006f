"""Image messages to arrays without a ROS graph: encodings, step padding, bad input, overlay."""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from fixtures.png_bomb import png_bomb
from signattn_driver.attention_overlay import attention_heatmap, attention_overlay
from signattn_driver.ros.image_conversion import (compressed_image_size, compressed_msg_to_array,
                                                  image_msg_to_array, ImageConversionError,
                                                  working_cv_bridge)


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


def test_picture_size_is_read_from_the_jpeg_or_png_header(camera_frames):
    frame = camera_frames[0][:300, :500]
    jpeg = cv2.imencode('.jpg', frame)[1].tobytes()
    progressive = cv2.imencode('.jpg', frame, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    # An APP segment before the frame header (as EXIF puts there) must be skipped.
    with_app = jpeg[:2] + b'\xff\xe1' + (2 + 3000).to_bytes(2, 'big') + bytes(3000) + jpeg[2:]
    assert cv2.imdecode(np.frombuffer(with_app, np.uint8), cv2.IMREAD_COLOR).shape[:2] == \
        (300, 500)
    for data in (jpeg, progressive, with_app):
        assert compressed_image_size(data) == ('jpeg', 500, 300)
    assert compressed_image_size(cv2.imencode('.png', frame)[1]) == ('png', 500, 300)
    assert compressed_image_size(png_bomb()) == ('png', 20000, 20000)
    for other in (b'', b'\xff\xd8garbage', b'GIF89a....', cv2.imencode('.bmp', frame)[1]):
        assert compressed_image_size(other) is None


def test_pixel_limit_is_checked_before_decoding(camera_frames):
    bomb = SimpleNamespace(format='png', data=png_bomb())   # decodes to 1.2 GB
    with pytest.raises(ImageConversionError, match='20000x20000 = 400000000 pixels') as info:
        compressed_msg_to_array(bomb, max_pixels=4096 * 4096)
    assert info.value.kind == 'too_large'
    small = SimpleNamespace(format='png', data=png_bomb(64, 48))   # the same maker, decodable
    assert compressed_msg_to_array(small, max_pixels=64 * 48).shape == (48, 64, 3)
    jpeg = SimpleNamespace(format='jpeg', data=cv2.imencode('.jpg', camera_frames[0])[1])
    with pytest.raises(ImageConversionError, match='over max_input_pixels 307199'):
        compressed_msg_to_array(jpeg, max_pixels=640 * 480 - 1)
    assert compressed_msg_to_array(jpeg, max_pixels=640 * 480).shape == (480, 640, 3)
    bmp = SimpleNamespace(format='bmp', data=cv2.imencode('.bmp', camera_frames[0])[1])
    with pytest.raises(ImageConversionError, match='not a JPEG or PNG'):
        compressed_msg_to_array(bmp)   # OpenCV would decode it, without a size check
    raw = message(camera_frames[0], 'bgr8')
    with pytest.raises(ImageConversionError, match='raw image of 640x480') as info:
        image_msg_to_array(raw, max_pixels=1000)
    assert info.value.kind == 'too_large'
    assert image_msg_to_array(raw, max_pixels=0)[0].shape == (480, 640, 3)


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
