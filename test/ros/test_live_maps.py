"""What live evaluation keeps of the node's maps: overlays by stamp, counts, reported scale."""

import numpy as np
from PIL import Image
import pytest

pytest.importorskip('sensor_msgs', reason='the ROS 2 message packages are not installed')
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from signattn_driver.map_animation import PANEL_WIDTH_PX  # noqa: E402
from signattn_driver.ros.image_conversion import array_to_image_msg  # noqa: E402
from signattn_driver.ros.live_maps import MapRecorder  # noqa: E402


def _image_msg(stamp_s: int, value: int, encoding='bgr8'):
    header = Header()
    header.stamp.sec = stamp_s
    image = np.full((120, 160, 3 if encoding == 'bgr8' else 1), value, np.uint8)
    if encoding != 'bgr8':
        image = image[..., 0].astype(np.float32)
    return array_to_image_msg(image, encoding, header)


def _diagnostics(value: str):
    status = DiagnosticStatus(values=[KeyValue(key='contribution_scale_per_m', value=value)])
    return DiagnosticArray(status=[status])


def test_keeps_the_first_overlays_counts_all_and_pairs_them_by_stamp(tmp_path):
    maps = MapRecorder(limit=3)
    for stamp in range(5):
        maps.on_attention(_image_msg(stamp, 10))
        if stamp != 1:                              # one contribution overlay lost
            maps.on_contribution(_image_msg(stamp, 200 + 10 * stamp))
    maps.on_contribution(_image_msg(9, 0, '32FC1'))  # raw maps are counted, not drawn
    for value in ('0', 'nan', 'x', '0.004', '0.002'):
        maps.on_diagnostics(_diagnostics(value))
    maps.per_frame_scale = True
    summary = maps.summary()
    assert summary['attention_frames_received'] == 5
    assert summary['contribution_frames_received'] == 5
    assert summary['contribution_scale'] == 'per frame (max abs(phi))'
    assert summary['contribution_scale_reported_per_m'] == {'min': 0.002, 'median': 0.003,
                                                            'max': 0.004}
    written = maps.write(tmp_path / 'maps.gif')
    # stamps 0, 2 have both maps among the first three kept of each (0-2 and 0, 2, 3)
    assert written['gif_frames'] == 2
    assert written['gif_layout'] == 'attention alpha left, contribution phi right'
    with Image.open(written['attention_gif']) as gif:
        assert gif.n_frames == 2 and gif.size[0] == 2 * PANEL_WIDTH_PX
        right = np.asarray(gif.convert('RGB'))[:gif.size[1] // 2, PANEL_WIDTH_PX:]
        assert abs(float(right.mean()) - 200) < 3    # the contribution overlay is on the right
        gif.seek(1)
        right = np.asarray(gif.convert('RGB'))[:gif.size[1] // 2, PANEL_WIDTH_PX:]
        assert abs(float(right.mean()) - 220) < 3    # stamp 2's


def test_without_contribution_overlays_the_gif_shows_attention_alone(tmp_path):
    maps = MapRecorder(limit=4)
    assert maps.write(tmp_path / 'none.gif') == {'attention_gif': None, 'gif_frames': 0,
                                                 'gif_layout': None}
    for stamp in range(2):
        maps.on_attention(_image_msg(stamp, 10 + stamp))
    written = maps.write(tmp_path / 'alone.gif')
    assert written['gif_frames'] == 2 and written['gif_layout'] == 'attention alpha alone'
    assert maps.summary()['contribution_scale_reported_per_m'] is None
    maps.clear()
    assert maps.summary()['attention_frames_received'] == 0


def test_scale_near_picks_the_report_closest_in_time():
    maps = MapRecorder(limit=1)
    maps.scales = [(10.0, 0.001), (11.0, 0.002), (12.0, 0.003)]
    assert maps.scale_near(10.6) == 0.002 and maps.scale_near(100.0) == 0.003
    assert MapRecorder(limit=1).scale_near(1.0) is None
