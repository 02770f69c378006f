"""Quantizers with straight-through gradients (paper eq. 4 and 6-8).

Both functions are plain torch and work on any shape and device.
"""

import torch

MIN_BITS = 2
MAX_BITS = 24


def uniform_quantize(x: torch.Tensor, bits: int, low: float, high: float) -> torch.Tensor:
    """Quantize `x` to n = 2**bits evenly spaced levels in [low, high] (eq. 7).

    Q_{a,b,n}(x) = round((clip(x, a, b) - a) / s) * s + a with s = (b - a) / (n - 1).
    The gradient is the straight-through estimator of eq. 8: 1 where a <= x <= b, 0 outside.
    `torch.fake_quantize_per_tensor_affine` computes exactly this, including the gradient,
    once the range is shifted to start at zero.

    Args:
        x: any float tensor.
        bits: quantization width, MIN_BITS..MAX_BITS.
        low: a, the lowest level.
        high: b, the highest level (> low).

    Returns:
        Tensor of x's shape and dtype whose values lie on the n levels.
    """
    if not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f'bits must be in {MIN_BITS}..{MAX_BITS}, got {bits}')
    if not high > low:
        raise ValueError(f'quantization range needs high > low, got ({low}, {high})')
    levels = 2 ** bits
    step = (high - low) / (levels - 1)
    dtype = x.dtype
    # fake_quantize needs float32 input; bf16 autocast would otherwise reach it.
    shifted = x.float() - low
    q = torch.fake_quantize_per_tensor_affine(shifted, step, 0, 0, levels - 1)
    return (q + low).to(dtype)


def binarize(x: torch.Tensor, stochastic: bool = False) -> torch.Tensor:
    """Map `x` to +1 (x >= 0) or -1 (eq. 4), with the hard-tanh straight-through gradient.

    The backward pass lets the gradient through where |x| <= 1 and blocks it elsewhere
    (Hubara et al., Binarized Neural Networks). With `stochastic`, +1 is drawn with probability
    hard_sigmoid(x) = clip((x + 1) / 2, 0, 1), so the magnitude of x (and hence the attention
    weight multiplying it) changes the forward pass; use it in training only.

    Args:
        x: any float tensor.
        stochastic: draw the sign instead of thresholding at zero.

    Returns:
        Tensor of x's shape holding only +1 and -1.
    """
    clipped = torch.clamp(x, -1.0, 1.0)
    if stochastic:
        p_plus = (clipped + 1.0) / 2.0
        hard = torch.where(torch.rand_like(x) < p_plus, 1.0, -1.0).to(x.dtype)
    else:
        hard = torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
    # Forward value `hard`, gradient that of `clipped` (1 inside [-1, 1], 0 outside).
    return clipped + (hard - clipped).detach()
