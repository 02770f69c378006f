"""Agreement of saliency maps with the contribution map phi."""

import numpy as np
import pytest

from signattn_driver.evaluation.contribution_agreement import (modal_cell, per_frame_agreement,
                                                               summarize_agreement)


def _phi(n=50, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 10, 20))


def test_a_map_equal_to_abs_phi_agrees_perfectly():
    phi = _phi()
    frame = per_frame_agreement(np.abs(phi), phi)
    assert np.allclose(frame['spearman'], 1.0)
    assert np.allclose(frame['ratio_top10'], 1.0) and np.allclose(frame['ratio_top5'], 1.0)


def test_a_reversed_map_has_negative_rank_correlation_and_a_small_share():
    phi = _phi()
    frame = per_frame_agreement(-np.abs(phi), phi)
    assert np.allclose(frame['spearman'], -1.0)
    assert (frame['share_top10'] < frame['best_top10']).all()
    # the 20 smallest of 200 half-normal cells hold well under 10 % of the mass
    assert frame['share_top10'].max() < 0.02


def test_a_random_map_sits_near_zero_correlation_and_a_tenth_of_the_mass():
    phi = _phi(400)
    maps = np.random.default_rng(1).random((400, 10, 20))
    s = summarize_agreement(maps, phi)
    assert abs(s['spearman']) < 0.03
    assert s['share_top10'] == pytest.approx(0.10, abs=0.01)
    assert 0.3 < s["ratio_top10"] < 0.5     # |phi|'s own top 10 % hold ~ 0.26


def test_a_constant_map_has_no_correlation():
    frame = per_frame_agreement(np.ones((3, 10, 20)), _phi(3))
    assert np.isnan(frame['spearman']).all()


def test_modal_cell_counts_the_top_cell():
    maps = np.zeros((10, 10, 20))
    maps[:7, 9, 0] = 1.0
    maps[7:, 2, 3] = 1.0
    assert modal_cell(maps) == ((9, 0), 0.7)


def test_shapes_must_match():
    with pytest.raises(ValueError, match='shape'):
        per_frame_agreement(np.ones((2, 10, 20)), np.ones((3, 10, 20)))
