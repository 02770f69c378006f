"""The diverging contribution overlay (signattn_driver/contribution_overlay.py)."""

import numpy as np
import pytest

from signattn_driver.contribution_overlay import (contribution_overlay,
                                                  contribution_scale_per_m, LEFT_BGR, RIGHT_BGR)


@pytest.fixture
def grey():
    return np.full((80, 160, 3), 100, np.uint8)


def test_left_cells_blue_right_cells_orange_zero_cells_untouched(grey):
    phi = np.zeros((10, 20), np.float32)
    phi[2, 3] = 0.02                      # pushes left (REP-103: + = left)
    phi[7, 15] = -0.01                    # pushes right, half as strong
    out = contribution_overlay(grey, phi, contribution_scale_per_m(phi), alpha=1.0)
    left, right = out[2 * 8 + 4, 3 * 8 + 4], out[7 * 8 + 4, 15 * 8 + 4]
    assert left.tolist() == list(LEFT_BGR)                       # full strength, opaque
    # half the scale: half way from grey to orange (to a grey level: x.5 may round either way)
    assert np.abs(right.astype(int) - [100 + (c - 100) * 0.5 for c in RIGHT_BGR]).max() <= 0.5
    untouched = np.ones((80, 160), bool)
    untouched[2 * 8:3 * 8, 3 * 8:4 * 8] = untouched[7 * 8:8 * 8, 15 * 8:16 * 8] = False
    assert (out[untouched] == 100).all()                          # zero is transparent
    assert (out[2 * 8:3 * 8, 3 * 8:4 * 8] == LEFT_BGR).all()      # the whole cell


def test_scale_is_symmetric_max_abs_or_fixed_and_clips(grey):
    phi = np.zeros((10, 20), np.float32)
    phi[0, 0], phi[9, 19] = 0.01, -0.03
    assert contribution_scale_per_m(phi) == pytest.approx(0.03)
    assert contribution_scale_per_m(phi, fixed_per_m=0.005) == 0.005
    assert contribution_scale_per_m(np.zeros((10, 20))) == 0.0
    assert contribution_scale_per_m(np.full((10, 20), np.nan)) == 0.0
    # A fixed scale below |phi| saturates both cells: equally strong colours.
    out = contribution_overlay(grey, phi, 0.005, alpha=0.6)
    left, right = out[4, 4].astype(int), out[76, 156].astype(int)
    assert np.allclose(np.abs(left - 100), np.abs(np.array(LEFT_BGR) - 100) * 0.6, atol=1)
    assert np.allclose(np.abs(right - 100), np.abs(np.array(RIGHT_BGR) - 100) * 0.6, atol=1)


def test_all_zero_map_or_zero_scale_returns_the_image(grey):
    assert (contribution_overlay(grey, np.zeros((10, 20)), 0.0) == grey).all()
    assert (contribution_overlay(grey, np.ones((10, 20)), 0.0) == grey).all()


def test_bad_arguments_are_refused(grey):
    with pytest.raises(ValueError, match='alpha'):
        contribution_overlay(grey, np.zeros((10, 20)), 1.0, alpha=1.5)
    with pytest.raises(ValueError, match='2-D'):
        contribution_overlay(grey, np.zeros((1, 10, 20)), 1.0)
