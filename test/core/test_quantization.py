"""Eq. 4 and 6-8: the quantizer's levels and both straight-through gradients."""

import pytest
import torch

from signattn_driver.quantization import binarize, uniform_quantize


def reference_q(x, bits, a, b):
    """Eq. 7 written out: round((clip(x, a, b) - a) / s) * s + a, s = (b - a) / (n - 1)."""
    s = (b - a) / (2 ** bits - 1)
    return torch.round((torch.clamp(x, a, b) - a) / s) * s + a


@pytest.mark.parametrize('bits', [2, 3, 10])
def test_exactly_n_levels_inside_range(bits):
    a, b = -0.5, 3.0
    x = torch.linspace(-2, 5, 200_000)
    q = uniform_quantize(x, bits, a, b)
    levels = torch.unique(q)
    assert len(levels) == 2 ** bits
    assert levels.min().item() == pytest.approx(a, abs=1e-6)
    assert levels.max().item() == pytest.approx(b, abs=1e-6)
    steps = levels.diff()
    assert torch.allclose(steps, torch.full_like(steps, (b - a) / (2 ** bits - 1)), atol=1e-5)


@pytest.mark.parametrize('bits', [2, 10, 16, 24])
def test_matches_equation_7(bits):
    x = torch.randn(5000) * 3
    assert torch.allclose(uniform_quantize(x, bits, 0.0, 4.0), reference_q(x, bits, 0.0, 4.0),
                          atol=1e-5)


def test_ste_gradient_is_one_inside_and_zero_outside():
    x = torch.tensor([-1.0, 0.0, 0.5, 2.0, 3.9, 4.0, 4.5, 10.0], requires_grad=True)
    uniform_quantize(x, 10, 0.0, 4.0).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]


def test_bits_out_of_range_rejected():
    with pytest.raises(ValueError):
        uniform_quantize(torch.zeros(3), 1, 0.0, 1.0)
    with pytest.raises(ValueError):
        uniform_quantize(torch.zeros(3), 25, 0.0, 1.0)
    with pytest.raises(ValueError):
        uniform_quantize(torch.zeros(3), 8, 1.0, 1.0)


def test_binarize_outputs_only_plus_minus_one_with_zero_positive():
    x = torch.tensor([-3.0, -1e-9, 0.0, 1e-9, 2.0])
    assert binarize(x).tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]


def test_binarize_hardtanh_ste():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.7, 1.0, 1.5], requires_grad=True)
    binarize(x).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def test_stochastic_binarize_follows_hard_sigmoid():
    torch.manual_seed(0)
    x = torch.full((20000,), 0.5)
    out = binarize(x, stochastic=True)
    assert set(out.unique().tolist()) == {-1.0, 1.0}
    assert (out == 1).float().mean().item() == pytest.approx(0.75, abs=0.02)
