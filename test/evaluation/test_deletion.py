"""Deletion/insertion metric: rankings, batching, LSTM-state handling and AUC arithmetic."""

import numpy as np
import pytest
import torch

from signattn_driver.evaluation.deletion import auc, deletion_curves, deletion_curves_sequence, \
    DeletionConfig, fill_images, levels_percent, rank_pixels
from signattn_driver.evaluation.explanations import random_maps

ROWS, COLS = slice(20, 40), slice(60, 100)   # 800 px = 6.25 % of the frame


class RegionModel(torch.nn.Module):
    """u depends only on a known region (black fill = -1 removes a pixel's contribution).

    The state (B, 1) is added to u and incremented per step, so a wrong state shows up as an
    error at 0 % masked.
    """

    def step(self, frames, state=None):
        u = (frames[:, :, ROWS, COLS] + 1.0).mean(dim=(1, 2, 3))
        if state is None:
            state = (torch.zeros(len(frames), 1),)
        return u + state[0][:, 0], None, (state[0] + 1.0,)


def _region_maps(n, inverse=False):
    m = torch.zeros(n, 80, 160)
    m[:, ROWS, COLS] = 1.0
    return 1.0 - m if inverse else m


@pytest.fixture
def frames():
    torch.manual_seed(0)
    return torch.rand(3, 3, 80, 160)


def _targets(model, x, state):
    return model.step(x, state)[0].double().numpy()


def test_region_ranking_beats_random_and_inverse(frames):
    model = RegionModel()
    state = (torch.tensor([[0.0], [5.0], [-2.0]]),)
    targets = _targets(model, frames, state)
    cfg = DeletionConfig(step_percent=2.0)
    scores = {}
    for name, maps in (('region', _region_maps(3)), ('inverse', _region_maps(3, True)),
                       ('random', random_maps(3, seed=1))):
        res = deletion_curves(model, frames, maps, targets, state, cfg)
        assert np.allclose(res.deletion[:, 0], 0.0, atol=1e-6)   # level 0 is the frame itself
        scores[name] = {lim: auc(res.levels_percent, res.deletion, lim).mean()
                        for lim in (25.0, 100.0)}
        scores[name]['insertion'] = auc(res.levels_percent, res.insertion, 25.0).mean()
    for lim in (25.0, 100.0):
        assert scores['region'][lim] > scores['random'][lim] > scores['inverse'][lim]
    # Insertion: revealing the region first restores u quickly (lower is better).
    assert scores['region']['insertion'] < scores['random']['insertion']
    assert scores['inverse'][25.0] == pytest.approx(0.0, abs=1e-6)


def test_batching_does_not_change_curves_and_scale_applies(frames):
    model = RegionModel()
    state = (torch.tensor([[1.0], [2.0], [3.0]]),)
    targets = _targets(model, frames, state)
    maps = random_maps(3, seed=2)
    big = deletion_curves(model, frames, maps, targets, state, DeletionConfig(step_percent=5))
    small = deletion_curves(model, frames, maps, targets, state,
                            DeletionConfig(step_percent=5, batch_images=7),
                            error_scale=[2.0, 2.0, 2.0])
    assert big.deletion.shape == (3, 21) and big.insertion.shape == (3, 21)
    np.testing.assert_allclose(small.deletion, 2 * big.deletion, atol=1e-6)
    np.testing.assert_allclose(small.insertion, 2 * big.insertion, atol=1e-6)


def test_sequence_mode_masks_every_frame_with_its_own_state(frames):
    model = RegionModel()
    # Unmasked run from state 0: frame t sees state t.
    targets = np.array([_targets(model, frames[t:t + 1], (torch.tensor([[float(t)]]),))[0]
                        for t in range(3)])
    res = deletion_curves_sequence(model, frames, _region_maps(3), targets, None,
                                   DeletionConfig(step_percent=10))
    assert res.deletion.shape == (3, 11)
    np.testing.assert_allclose(res.deletion[:, 0], 0.0, atol=1e-6)
    # The region is fully masked from 10 % on: u loses its whole image term.
    assert (res.deletion[:, 1:] > 0.9).all()


def test_auc_against_hand_computed_curves():
    levels = levels_percent(1.0)
    assert len(levels) == 101
    assert auc(levels, levels, 25.0) == pytest.approx(25 * 25 / 2)
    assert auc(levels, levels, 100.0) == pytest.approx(5000.0)
    # The paper's sign model: 4.67 deg at 0 %, 8.35 deg at 25 % -> 162.75 for a straight line.
    line = 4.67 + (8.35 - 4.67) * levels / 25.0
    assert auc(levels, line, 25.0) == pytest.approx(162.75)
    coarse = levels_percent(10.0)
    curves = np.stack([np.ones(11), coarse])
    np.testing.assert_allclose(auc(coarse, curves, 25.0), [25.0, 312.5])
    with pytest.raises(ValueError):
        auc(coarse, curves, 120.0)


def test_rank_pixels_is_a_permutation_with_seeded_ties():
    maps = torch.zeros(2, 4, 5)
    maps[0, 1, 2] = 3.0
    ranks = rank_pixels(maps, seed=0)
    assert ranks[0, 1 * 5 + 2] == 0
    for r in ranks:
        assert sorted(r.tolist()) == list(range(20))
    assert torch.equal(ranks, rank_pixels(maps, seed=0))
    assert not torch.equal(ranks[1], rank_pixels(maps, seed=1)[1])


def test_fills():
    x = torch.rand(2, 3, 80, 160) * 2 - 1
    assert (fill_images(x, 'black') == -1).all()
    mean = fill_images(x, 'mean')
    torch.testing.assert_close(mean[:, :, 0, 0], x.mean(dim=(2, 3)))
    flat = torch.full((1, 3, 80, 160), 0.3)
    torch.testing.assert_close(fill_images(flat, 'blur'), flat)
    assert fill_images(x, 'blur').std() < x.std()
    with pytest.raises(ValueError):
        DeletionConfig(fill='white')
    with pytest.raises(ValueError):
        DeletionConfig(step_percent=3.0)


class HalfBlindModel(torch.nn.Module):
    """u reads the left half of the frame only; the right half never reaches the output."""

    def step(self, frames, state=None):
        return (frames[:, :, :, :80] + 1.0).mean(dim=(1, 2, 3)), None, state


def test_output_change_is_flat_when_the_ignored_part_is_masked(frames):
    model = HalfBlindModel()
    cfg = DeletionConfig(step_percent=5.0)
    right, left = torch.zeros(3, 80, 160), torch.zeros(3, 80, 160)
    right[:, :, 80:] = 1.0
    left[:, :, :80] = 1.0
    # A label far from u: the paper's curve is dominated by the base error either way.
    targets = np.full(3, 5.0)
    ignored = deletion_curves(model, frames, right, targets, None, cfg)
    used = deletion_curves(model, frames, left, targets, None, cfg)
    change_ignored, ins_ignored = ignored.output_change()
    change_used, _ = used.output_change()
    levels = ignored.levels_percent
    # Masking up to 50 % (the ignored half) leaves u exactly where it was ...
    assert np.abs(change_ignored[:, levels <= 50.0]).max() < 1e-6
    # ... while masking the used half moves it from the first level on.
    assert (change_used[:, 1] > 1e-3).all()
    assert auc(levels, change_used, 25.0).min() > 10 * auc(levels, change_ignored, 25.0).max()
    # Insertion of the ignored half first: u stays at the all-filled output until 50 %.
    assert np.allclose(ins_ignored[:, levels <= 50.0], ins_ignored[:, :1], atol=1e-6)
    # The label curve starts at the base error and says little about which half was used.
    assert ignored.deletion[:, 0] == pytest.approx(np.abs(ignored.deletion_u[:, 0] - 5.0))


def test_output_change_matches_raw_outputs_and_scale(frames):
    model = RegionModel()
    res = deletion_curves(model, frames, random_maps(3, seed=2), np.zeros(3), None,
                          DeletionConfig(step_percent=10.0), error_scale=[1.0, 2.0, 3.0])
    change, ins = res.output_change()
    assert np.allclose(change[:, 0], 0.0)
    expected = np.abs(res.deletion_u - res.deletion_u[:, :1]) * np.array([[1.0], [2.0], [3.0]])
    assert np.allclose(change, expected)
    assert np.allclose(ins[:, -1], 0.0, atol=1e-6)   # everything revealed = the frame itself
    seq = deletion_curves_sequence(model, frames, random_maps(3, seed=2), np.zeros(3), None,
                                   DeletionConfig(step_percent=10.0))
    assert seq.deletion_u.shape == (3, 11) and np.allclose(seq.output_change()[0][:, 0], 0.0)
