"""The side-by-side animation of the attention and contribution maps (no ROS graph)."""

import numpy as np
from PIL import Image
import pytest

from signattn_driver.attention_overlay import attention_overlay
from signattn_driver.contribution_overlay import (contribution_overlay, contribution_scale_per_m,
                                                  LEFT_BGR, RIGHT_BGR)
from signattn_driver.map_animation import (CAPTION_HEIGHT_PX, PANEL_WIDTH_PX, scale_caption,
                                           side_by_side, write_gif)


def _maps(seed=0):
    rng = np.random.default_rng(seed)
    image = np.full((240, 320, 3), 90, np.uint8)
    alpha = rng.random((10, 20)).astype(np.float32)
    phi = np.zeros((10, 20), np.float32)
    phi[:, :10], phi[:, 10:] = 0.01, -0.02        # left half pushes left, right half right
    return (attention_overlay(image, alpha / alpha.sum()),
            contribution_overlay(image, phi, contribution_scale_per_m(phi)))


def test_frame_shows_alpha_left_and_phi_right_with_a_caption():
    attention, contribution = _maps()
    frame = side_by_side(attention, contribution, scale_caption(0.02, True))
    height = 240 * PANEL_WIDTH_PX // 320
    assert frame.shape == (height + CAPTION_HEIGHT_PX, 2 * PANEL_WIDTH_PX, 3)
    np.testing.assert_array_equal(frame[:height, :PANEL_WIDTH_PX], attention)
    np.testing.assert_array_equal(frame[:height, PANEL_WIDTH_PX:], contribution)
    caption = frame[height:, PANEL_WIDTH_PX:]
    # the legend's swatches are the overlay's own colours
    for bgr in (LEFT_BGR, RIGHT_BGR):
        assert np.all(caption == bgr, axis=2).sum() >= 49


def test_panels_of_other_sizes_are_scaled_to_the_panel_width():
    attention, contribution = _maps()
    frame = side_by_side(attention, np.repeat(np.repeat(contribution, 2, 0), 2, 1), 'scale',
                         panel_width_px=160)
    assert frame.shape == (120 + CAPTION_HEIGHT_PX, 320, 3)


def test_scale_caption_says_what_the_scale_is():
    assert scale_caption(0.0123, False) == 'scale +-0.0123 1/m (fixed)'
    assert scale_caption(0.0123, True) == 'scale ~+-0.0123 1/m (each frame to its max)'
    assert scale_caption(None, True) == "scale +-each frame's max |phi|"
    assert scale_caption(0.0, None) == 'scale: not reported'


def test_gif_keeps_every_frame_at_double_width(tmp_path):
    frames = [side_by_side(*_maps(seed), 'scale') for seed in range(3)]
    path = write_gif(tmp_path / 'maps.gif', frames)
    with Image.open(path) as gif:
        assert gif.n_frames == 3 and gif.size == (2 * PANEL_WIDTH_PX, frames[0].shape[0])
    with pytest.raises(ValueError, match='no frames'):
        write_gif(tmp_path / 'none.gif', [])
