"""Average the weights of checkpoints of one architecture (a uniform or weighted model soup).

Wortsman et al. 2022 ("Model soups"; "Robust fine-tuning of zero-shot models", WiSE-FT): runs
fine-tuned from one starting point can be averaged weight by weight, and the average often
keeps what each run is good at. Here the ingredients must share the model config, the vehicle,
the route-command scheme and the preprocessing, so the result is a checkpoint of the same
network that every tool loads as usual. The attention map of a head-score model stays exact
for the averaged network (alpha and phi are computed from its own weights).
"""

from pathlib import Path

import torch

from signattn_driver import checkpoint
from signattn_driver.errors import SignattnError

# metadata every ingredient must agree on; the rest (metrics, step, data) describes one run
_MUST_AGREE = ('preprocessing', 'vehicle', 'route_commands', 'smoothing_alpha')
# metadata kept from the first ingredient (preprocessing: checkpoint.save writes its own); the
# first run's metrics and step describe that run only and are dropped
_KEPT = ('vehicle', 'route_commands', 'smoothing_alpha', 'train_config', 'data')


class AverageError(SignattnError):
    """Checkpoints that cannot be averaged (different networks, vehicles or weights)."""


def average_state_dicts(state_dicts: list[dict], weights: list[float]) -> dict:
    """Return sum_k w_k state_k over floating-point tensors; other tensors must be equal.

    Args:
        state_dicts: one state_dict per ingredient, same names and shapes.
        weights: one weight per ingredient, each >= 0, summing to 1.
    """
    if len(state_dicts) != len(weights) or not state_dicts:
        raise AverageError('one weight per checkpoint is needed')
    if min(weights) < 0 or abs(sum(weights) - 1.0) > 1e-6:
        raise AverageError(f'weights must be >= 0 and sum to 1, got {weights}')
    names = set(state_dicts[0])
    for k, sd in enumerate(state_dicts[1:], 1):
        if set(sd) != names:
            raise AverageError(f'checkpoint {k} has other parameters: '
                               f'{sorted(set(sd) ^ names)[:5]}')
    out = {}
    for name in state_dicts[0]:
        tensors = [sd[name] for sd in state_dicts]
        if any(t.shape != tensors[0].shape for t in tensors):
            raise AverageError(f'{name}: shapes differ {[tuple(t.shape) for t in tensors]}')
        if tensors[0].is_floating_point():
            acc = torch.zeros_like(tensors[0], dtype=torch.float64)
            for w, t in zip(weights, tensors):
                acc += w * t.to(torch.float64)
            out[name] = acc.to(tensors[0].dtype)
        elif all(torch.equal(t, tensors[0]) for t in tensors):
            out[name] = tensors[0].clone()
        else:
            raise AverageError(f'{name}: integer tensors differ and cannot be averaged')
    return out


def average_checkpoints(paths, out, weights=None) -> Path:
    """Write the weighted average of checkpoints `paths` to `out`.

    Args:
        paths: two or more checkpoints written by `signattn train` (one model config).
        out: destination checkpoint.
        weights: one per checkpoint (>= 0, summing to 1); None: uniform.

    Returns:
        The path written. Its metadata keeps the first ingredient's training config and data
        list, and records the ingredients (`averaged_from`: path, file SHA-256, weight); it has
        no `metrics`, since none were measured on the average.
    """
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise AverageError('averaging needs at least two checkpoints')
    weights = [1.0 / len(paths)] * len(paths) if weights is None else [float(w) for w in weights]
    ckpts = [checkpoint.load(p) for p in paths]
    first = ckpts[0]
    for ckpt in ckpts[1:]:
        if ckpt.config != first.config:
            raise AverageError(f'{ckpt.path}: model config differs from {first.path}')
        for key in _MUST_AGREE:
            if ckpt.metadata.get(key) != first.metadata.get(key):
                raise AverageError(f'{ckpt.path}: {key} differs from {first.path}: '
                                   f'{ckpt.metadata.get(key)} against '
                                   f'{first.metadata.get(key)}')
    state = average_state_dicts([c.state_dict for c in ckpts], weights)
    model = first.build_model()
    model.load_state_dict(state, strict=True)
    metadata = {k: first.metadata[k] for k in _KEPT if k in first.metadata}
    metadata['averaged_from'] = [{'path': str(c.path), 'sha256': c.file_sha256, 'weight': w}
                                 for c, w in zip(ckpts, weights)]
    return checkpoint.save(out, model, **metadata)
