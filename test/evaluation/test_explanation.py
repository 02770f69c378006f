"""Saliency methods: shapes on the real network, LIME on a model with a known region."""

import numpy as np
import pytest
import torch

from conftest import tiny_config
from signattn_driver.evaluation import explanations as E
from signattn_driver.model import SteeringNet
from signattn_driver.preprocessing import hsv_u8_to_input

ROWS, COLS = slice(0, 40), slice(0, 80)   # top-left quarter


class QuarterModel(torch.nn.Module):
    """u depends only on the top-left quarter of the frame."""

    def step(self, frames, state=None):
        return (frames[:, :, ROWS, COLS] + 1.0).mean(dim=(1, 2, 3)), None, state


def _hsv(n, seed=0):
    hsv = np.random.default_rng(seed).integers(0, 256, (n, 80, 160, 3)).astype(np.uint8)
    hsv[..., 0] %= 180
    return hsv


@pytest.fixture(scope='module')
def net():
    torch.manual_seed(0)
    return SteeringNet(tiny_config()).eval()


@pytest.mark.parametrize('method', E.METHODS)
def test_every_method_gives_full_resolution_maps(net, method):
    hsv = _hsv(2)
    x = hsv_u8_to_input(torch.from_numpy(hsv))
    state = net.initial_state(x)
    maps, seconds = E.compute_maps(method, net, x, state, hsv, E.ExplainConfig(lime_samples=40))
    assert maps.shape == (2, 80, 160) and maps.dtype == torch.float32
    assert torch.isfinite(maps).all() and (maps >= 0).all() and maps.amax() > 0
    assert seconds >= 0


def test_attention_map_is_the_models_alpha_upsampled(net):
    x = hsv_u8_to_input(torch.from_numpy(_hsv(1)))
    state = net.initial_state(x)
    with torch.no_grad():
        _, alpha, _ = net.step(x, state)
    maps = E.attention_maps(net, x, state)
    torch.testing.assert_close(maps, E.upsample(alpha))
    # Bilinear upsampling keeps the softmax's mass per cell: mean 1/200 per input pixel.
    assert float(maps.mean()) == pytest.approx(1 / 200, rel=0.05)


def test_gradcam_depends_on_the_lstm_state(net):
    x = hsv_u8_to_input(torch.from_numpy(_hsv(1)))
    state = net.initial_state(x)
    other = tuple(torch.randn_like(s) for s in state)
    assert not torch.allclose(E.gradcam_maps(net, x, state), E.gradcam_maps(net, x, other))


def test_lime_finds_the_region_the_output_depends_on():
    # QuarterModel averages its quarter, so a superpixel's own mean colour hides (almost)
    # nothing from it; black does.
    hsv = _hsv(1, seed=3)
    cfg = E.ExplainConfig(lime_samples=150, lime_hide='black')
    maps = E.lime_maps(QuarterModel(), hsv, None, cfg, output_scale=1.0)
    mask = torch.zeros(1, 80, 160)
    mask[:, ROWS, COLS] = 1
    assert float(E.mass_inside(maps, mask)) > 0.8          # the quarter holds 25 % of pixels
    again = E.lime_maps(QuarterModel(), hsv, None, cfg, output_scale=1.0)
    torch.testing.assert_close(maps, again)                # seeded


def test_floors_and_mass_inside():
    torch.testing.assert_close(E.random_maps(2, seed=4), E.random_maps(2, seed=4))
    center = E.center_maps(1)
    assert center[0, 39:41, 79:81].min() == center.max()
    mask = torch.zeros(1, 80, 160)
    mask[:, :, :40] = 1
    assert float(E.mass_inside(torch.ones(1, 80, 160), mask)) == pytest.approx(0.25)
    assert torch.isnan(E.mass_inside(torch.zeros(1, 80, 160), mask)).all()
    grid = E.grid_segments(50)
    assert grid.shape == (80, 160) and 40 <= grid.max() + 1 <= 60
    with pytest.raises(E.ExplanationError):
        E.compute_maps('smoothgrad', None, torch.zeros(1, 3, 80, 160), None)


class RecordingModel(QuarterModel):
    """QuarterModel that keeps the inputs LIME sends it."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def step(self, frames, state=None):
        self.seen.append(frames.clone())
        return super().step(frames, state)


def _structured_hsv():
    """Build a frame with SLIC-friendly regions (no pure-black pixel anywhere)."""
    hsv = np.zeros((1, 80, 160, 3), np.uint8)
    hsv[..., 1:] = 200
    for i in range(4):
        for j in range(8):
            hsv[0, 20 * i:20 * i + 20, 20 * j:20 * j + 20, 0] = (23 * (i * 8 + j)) % 180
            hsv[0, 20 * i:20 * i + 20, 20 * j:20 * j + 20, 2] = 60 + 5 * (i * 8 + j)
    return hsv


@pytest.mark.parametrize('hide', E.LIME_HIDES)
def test_lime_hide_colour_is_independent_of_the_deletion_fill(hide):
    hsv = _structured_hsv()
    model = RecordingModel()
    E.lime_maps(model, hsv, None, E.ExplainConfig(lime_samples=30, lime_hide=hide),
                output_scale=1.0)
    seen = torch.cat(model.seen)                                  # (S, 3, 80, 160)
    black = (seen == -1.0).all(1)                                 # the 'black' deletion fill
    frame = hsv_u8_to_input(torch.from_numpy(hsv))[0]
    changed = (seen != frame).any(1)
    assert changed.any()                                          # some superpixels were off
    if hide == 'black':
        assert black.any()
    else:
        assert not black.any()
    if hide == 'image_mean':
        mean = torch.from_numpy(hsv[0].reshape(-1, 3).mean(0).round().astype(np.uint8))
        fill = hsv_u8_to_input(mean.view(1, 1, 1, 3))[0, :, 0, 0]
        off = seen.permute(0, 2, 3, 1)[changed]                  # (P, 3) switched-off pixels
        assert torch.allclose(off, fill.expand_as(off))


def test_random_superpixels_floor_uses_limes_segmentation():
    hsv = _structured_hsv()
    cfg = E.ExplainConfig(lime_segments=20)
    seg = E.lime_segmentation(hsv[0], cfg)
    maps = E.random_superpixel_maps(hsv, cfg, seed=1)
    assert maps.shape == (1, 80, 160)
    for s in np.unique(seg):
        values = maps[0][torch.from_numpy(seg == s)]
        assert torch.all(values == values[0])                   # one value per superpixel
    assert len(torch.unique(maps)) == len(np.unique(seg))
    torch.testing.assert_close(maps, E.random_superpixel_maps(hsv, cfg, seed=1))
    with pytest.raises(E.ExplanationError):
        E.ExplainConfig(lime_hide='grey')
