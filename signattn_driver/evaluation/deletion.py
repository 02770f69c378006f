"""Deletion and insertion metrics (Petsiuk et al., RISE, 2018) adapted to regression (Sec. IV-B).

Deletion: rank the 80x160 pixels of frame t by a saliency map (descending; ties broken by a
seeded random order), replace the top p% with a fill for p = 0, 1, ..., 100, and record the
output u(masked) at each level. Two curves are read from these outputs:

- the paper's error against the label, |u(masked) - u_label| (`deletion`, `insertion`): a
  faithful map makes it rise fast, so a higher deletion AUC is better (Fig. 6). It mixes
  faithfulness with accuracy: masking a region that pushes u *towards* the label lowers it, and
  its AUC grows with the model's base error.
- the output change, |u(masked) - u(unmasked)| (`output_change`): it measures only what the
  model's output does when the ranked pixels go. Deletion: higher = more faithful (it starts at
  0, so its AUC is the area above the zero-deletion baseline). Insertion: start from the fill
  and reveal the top p%; the curve is the distance to the unmasked output, lower sooner =
  better.

Errors are multiplied by a per-frame `error_scale`; the evaluation passes the factor that turns
u (1/m) into steering-wheel degrees at the frame's speed (eq. 3 inverted), so curves are in
degrees like the paper's MAE. AUCs use the trapezoid rule with x in percent masked, so their unit
is degree x percentage point: the paper's AUC 162 over 0-25% is what a curve rising linearly from
4.67 deg (its MAE) to 8.35 deg (its error at 25%) gives, 25 x (4.67 + 8.35) / 2 = 162.8.

LSTM state: in the default mode each frame's masked copies start from the state (h_{t-1},
c_{t-1}) that the *unmasked* previous frames produced, so the curve measures the current frame's
pixels alone. `deletion_curves_sequence` instead masks every frame of a sequence at the same
level (each level carries its own state, and f_init sees the masked first frame).

Batching: all levels of several frames (and the insertion copies) go through the model in one
forward pass of up to `batch_images` images.

Route commands: a command model's masked copies of a frame run under that frame's command
(`commands`, evaluation.route_commands); without them a command model runs under follow-lane.
"""

from dataclasses import dataclass
import logging

import numpy as np
import torch
import torch.nn.functional as F

from signattn_driver.errors import ConfigError
from signattn_driver.evaluation.explanations import expand_state, index_state
from signattn_driver.evaluation.route_commands import step_with

LOG = logging.getLogger(__name__)
FILLS = ('black', 'blur', 'mean')
# Network input of HSV (0, 0, 0): every channel maps to -1 (preprocessing.hsv_u8_to_input).
BLACK_INPUT = -1.0


@dataclass
class DeletionConfig:
    """How pixels are removed and how many images share a forward pass."""

    step_percent: float = 1.0   # level spacing; 100 must be a multiple of it
    fill: str = 'black'         # 'black' (HSV 0,0,0), 'blur' (Gaussian), 'mean' (per channel)
    blur_sigma_px: float = 5.0  # for fill='blur', in 80x160 input pixels
    insertion: bool = True
    batch_images: int = 404     # images per forward pass (2 frames x 101 levels x 2 metrics)
    seed: int = 0               # tie-breaking order of equal map values

    def __post_init__(self):
        """Reject fills and level spacings that would make curves incomparable."""
        if self.fill not in FILLS:
            raise ConfigError(f'fill must be one of {FILLS}, got {self.fill!r}')
        n = 100.0 / self.step_percent
        if self.step_percent <= 0 or abs(n - round(n)) > 1e-9:
            raise ConfigError(f'step_percent must divide 100, got {self.step_percent}')
        if self.batch_images < 1:
            raise ConfigError('batch_images must be >= 1')


@dataclass
class DeletionResult:
    """Per-frame curves; errors are |u - target| x error_scale (degrees in the evaluation)."""

    levels_percent: np.ndarray        # (K,) 0 .. 100
    deletion: np.ndarray              # (N, K) |u_masked - target| x scale
    insertion: np.ndarray | None      # (N, K) or None
    deletion_u: np.ndarray | None = None    # (N, K) raw outputs u (1/m)
    insertion_u: np.ndarray | None = None   # (N, K) or None
    error_scale: np.ndarray | None = None   # (N,)

    def output_change(self, reference_u=None):
        """Curves |u_masked - u_ref| x scale for deletion and insertion: ((N, K), (N, K) | None).

        Args:
            reference_u: (N,) unmasked outputs; default the deletion curve at 0 % (the
                unmasked frame, same state, same batch arithmetic), so deletion starts at 0.
        """
        if self.deletion_u is None:
            raise ValueError('this result holds no raw outputs')
        ref = self.deletion_u[:, 0] if reference_u is None else np.asarray(reference_u)
        scale = np.ones(len(ref)) if self.error_scale is None else self.error_scale
        dele = np.abs(self.deletion_u - ref[:, None]) * scale[:, None]
        ins = None
        if self.insertion_u is not None:
            ins = np.abs(self.insertion_u - ref[:, None]) * scale[:, None]
        return dele, ins


def levels_percent(step_percent: float = 1.0) -> np.ndarray:
    """Masked percentages 0, step, ..., 100 as a float array (K,)."""
    k = int(round(100.0 / step_percent))
    return np.linspace(0.0, 100.0, k + 1)


def rank_pixels(maps: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Rank of every pixel in its map, 0 = most important.

    Args:
        maps: (N, H, W) saliency maps.
        seed: seeds the random order among equal values (uniform maps rank at random).

    Returns:
        (N, H*W) int64 ranks.
    """
    flat = maps.flatten(1).float()
    n, p = flat.shape
    perm = torch.randperm(p, generator=torch.Generator().manual_seed(seed)).to(flat.device)
    order = perm[torch.argsort(-flat[:, perm], dim=1, stable=True)]      # (N, P) pixel ids
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(p, device=flat.device).expand(n, p))
    return rank


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, 0, 0), mode='reflect')
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.pad(x, (0, 0, radius, radius), mode='reflect')
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def fill_images(inputs: torch.Tensor, fill: str = 'black', blur_sigma_px: float = 5.0):
    """Build what removed pixels become, for inputs (N, 3, H, W): same shape."""
    if fill == 'black':
        return torch.full_like(inputs, BLACK_INPUT)
    if fill == 'mean':
        return inputs.mean(dim=(2, 3), keepdim=True).expand_as(inputs)
    if fill == 'blur':
        return _gaussian_blur(inputs, blur_sigma_px)
    raise ValueError(f'fill must be one of {FILLS}, got {fill!r}')


def perturb(inputs: torch.Tensor, fills: torch.Tensor, ranks: torch.Tensor,
            counts: torch.Tensor, insertion: bool = False) -> torch.Tensor:
    """Images with the `counts` top-ranked pixels removed (or, for insertion, kept).

    Args:
        inputs, fills: (N, 3, H, W).
        ranks: (N, H*W) from `rank_pixels`.
        counts: (K,) pixels per level.
        insertion: keep the top pixels and fill the rest instead.

    Returns:
        (N, K, 3, H, W).
    """
    n, c, h, w = inputs.shape
    top = (ranks[:, None, :] < counts.to(ranks.device)[None, :, None]).view(n, -1, 1, h, w)
    if insertion:
        top = ~top
    return torch.where(top, fills[:, None], inputs[:, None])


def _steps(model):
    return model.step if hasattr(model, 'step') else model


def _as_tensor(values, n: int, device) -> torch.Tensor:
    if values is None:
        return torch.ones(n, dtype=torch.float64, device=device)
    return torch.as_tensor(np.asarray(values, np.float64), device=device).reshape(n)


def _prepare(model, inputs, maps, targets, error_scale, config):
    """Shared set-up: step function, levels, pixel counts per level, ranks and fill images."""
    device = inputs.device
    n = len(inputs)
    levels = levels_percent(config.step_percent)
    npix = inputs.shape[-2] * inputs.shape[-1]
    counts = torch.as_tensor(np.rint(levels / 100.0 * npix).astype(np.int64), device=device)
    kinds = (False, True) if config.insertion else (False,)
    return (_steps(model), levels, counts, _as_tensor(targets, n, device),
            _as_tensor(error_scale, n, device), rank_pixels(maps.to(device), config.seed),
            fill_images(inputs, config.fill, config.blur_sigma_px), kinds)


@torch.inference_mode()
def deletion_curves(model, inputs: torch.Tensor, maps: torch.Tensor, targets,
                    state=None, config: DeletionConfig = DeletionConfig(),
                    error_scale=None, commands: torch.Tensor | None = None) -> DeletionResult:
    """Compute deletion (and insertion) curves of frames, state from the unmasked frames.

    Args:
        model: a SteeringNet or any callable with its step interface
            `step(frames (B, 3, 80, 160), state) -> (u (B,), alpha, state)`.
        inputs: (N, 3, 80, 160) unmasked network input, on the model's device.
        maps: (N, 80, 160) saliency maps (larger = more important).
        targets: (N,) labels in the output's unit (u, 1/m).
        state: state before each frame (tuple of (N, ...) tensors) or None (the model's own
            initial state, computed from the image it is given).
        config: DeletionConfig.
        error_scale: (N,) factor applied to |u - target| (e.g. deg per 1/m), default 1.
        commands: (N,) long route command of each frame for a command model (its masked
            copies run under it), or None (camera-only call `step(frames, state)`).

    Returns:
        DeletionResult with (N, K) error curves.
    """
    device = inputs.device
    n = len(inputs)
    step, levels, counts, targets, scale, ranks, fills, kinds = _prepare(
        model, inputs, maps, targets, error_scale, config)
    k = len(levels)
    per_frame = k * len(kinds)
    chunk = max(1, config.batch_images // per_frame)
    out = torch.empty(n, len(kinds), k, dtype=torch.float64, device=device)
    raw = torch.empty_like(out)
    for start in range(0, n, chunk):
        sl = slice(start, min(start + chunk, n))
        images = torch.stack([perturb(inputs[sl], fills[sl], ranks[sl], counts, ins)
                              for ins in kinds], 1)                       # (F, I, K, 3, H, W)
        flat = images.flatten(0, 2)                                       # (F*I*K, 3, H, W)
        frame_of = torch.arange(sl.start, sl.stop, device=device).repeat_interleave(per_frame)
        base = sl.start * per_frame
        # One pass per chunk; a frame with more images than batch_images is split.
        for b in range(0, len(flat), config.batch_images):
            idx = slice(b, b + config.batch_images)
            frames = frame_of[idx]
            command = None if commands is None else commands.to(device)[frames]
            u = step_with(step, flat[idx], index_state(state, frames), command)[0].double()
            err = (u - targets[frames]).abs() * scale[frames]
            out.view(-1)[base + b:base + b + len(err)] = err
            raw.view(-1)[base + b:base + b + len(err)] = u
    return _result(levels, out, raw, scale, config.insertion)


def _result(levels, out, raw, scale, insertion: bool) -> DeletionResult:
    out, raw = out.cpu().numpy(), raw.cpu().numpy()
    return DeletionResult(levels, out[:, 0], out[:, 1] if insertion else None, raw[:, 0],
                          raw[:, 1] if insertion else None, scale.cpu().numpy())


@torch.inference_mode()
def deletion_curves_sequence(model, inputs: torch.Tensor, maps: torch.Tensor, targets,
                             state=None, config: DeletionConfig = DeletionConfig(),
                             error_scale=None,
                             commands: torch.Tensor | None = None) -> DeletionResult:
    """Curves when every frame of one sequence is masked at the same level.

    Each level (and each insertion level) runs as its own sequence with its own LSTM state,
    all levels batched per time step.

    Args:
        model: SteeringNet or step callable.
        inputs: (T, 3, 80, 160) one sequence in time order.
        maps: (T, 80, 160) the map of each frame.
        targets: (T,) labels.
        state: batch-1 state before frame 0, or None (f_init on the masked first frame).
        config: DeletionConfig (batch_images is ignored: a step holds K or 2K images).
        error_scale: (T,) factor applied to the error.
        commands: (T,) long route command of each frame for a command model (every level's
            copy of frame t runs under command t), or None.

    Returns:
        DeletionResult with (T, K) curves.
    """
    device = inputs.device
    t_len = len(inputs)
    step, levels, counts, targets, scale, ranks, fills, kinds = _prepare(
        model, inputs, maps, targets, error_scale, config)
    k = len(levels)
    state = expand_state(state, k * len(kinds))
    out = torch.empty(t_len, len(kinds) * k, dtype=torch.float64, device=device)
    raw = torch.empty_like(out)
    for t in range(t_len):
        images = torch.cat([perturb(inputs[t:t + 1], fills[t:t + 1], ranks[t:t + 1], counts,
                                    ins)[0] for ins in kinds])            # (I*K, 3, H, W)
        command = None if commands is None else commands[t:t + 1]
        u, _, state = step_with(step, images, state, command)
        out[t] = (u.double() - targets[t]).abs() * scale[t]
        raw[t] = u.double()
    return _result(levels, out.view(t_len, len(kinds), k), raw.view(t_len, len(kinds), k),
                   scale, config.insertion)


def auc(levels: np.ndarray, curves: np.ndarray, upto_percent: float = 100.0) -> np.ndarray:
    """Trapezoid area under curves over 0..upto_percent, x in percent.

    Args:
        levels: (K,) increasing percentages starting at 0.
        curves: (..., K) values (e.g. error in degrees).
        upto_percent: upper limit; a limit between two levels is linearly interpolated.

    Returns:
        (...) areas in (curve unit) x percentage point.
    """
    levels = np.asarray(levels, np.float64)
    curves = np.asarray(curves, np.float64)
    if not levels[0] <= upto_percent <= levels[-1]:
        raise ValueError(f'upto_percent {upto_percent} outside {levels[0]}..{levels[-1]}')
    inside = levels < upto_percent
    j = int(inside.sum())
    xs = np.append(levels[:j], upto_percent)
    if j < len(levels) and levels[j] == upto_percent:
        end = curves[..., j]
    else:
        x0, x1 = levels[j - 1], levels[j]
        w = (upto_percent - x0) / (x1 - x0)
        end = (1 - w) * curves[..., j - 1] + w * curves[..., j]
    ys = np.concatenate([curves[..., :j], end[..., None]], axis=-1)
    return np.trapezoid(ys, xs, axis=-1)
