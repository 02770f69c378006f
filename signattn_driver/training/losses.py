"""The training losses: the steering L1 and the attention-alignment term (TrainConfig)."""

import torch

from signattn_driver.route_command import FOLLOW_LANE


def steering_l1(pred: torch.Tensor, u: torch.Tensor, weight: torch.Tensor,
                commands: torch.Tensor | None = None, turn_weight: float = 1.0) -> torch.Tensor:
    """Weighted mean |pred - u| over valid frames, 1/m: the steering loss.

    Args:
        pred: (B, T) predicted inverse turning radius, 1/m.
        u: (B, T) labelled inverse turning radius, 1/m.
        weight: (B, T) 1 for valid frames, 0 for padding.
        commands: (B, T) route commands, or None (a camera-only model).
        turn_weight: the weight of a frame on which a turn command is in force (follow-lane
            frames weigh 1); TrainConfig.turn_weight.
    """
    if commands is not None and turn_weight != 1.0:
        weight = weight * torch.where(commands != FOLLOW_LANE, turn_weight, 1.0)
    return ((pred - u).abs() * weight).sum() / weight.sum().clamp_min(1.0)


def alignment_kl(alpha: torch.Tensor, phi: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean KL(|phi| / sum|phi| || alpha) over valid frames, nats: the alignment term.

    Args:
        alpha: (B, T, L) attention, rows summing to 1 (clamped away from 0).
        phi: (B, T, 10, 20) contribution maps; the target |phi| / sum|phi| carries no gradient.
        weight: (B, T) 1 for valid frames, 0 for padding.
    """
    mass = phi.detach().float().flatten(2).abs()                          # (B, T, L)
    target = mass / mass.sum(-1, keepdim=True).clamp_min(1e-30)
    kl = (target * (target.clamp_min(1e-12).log() - alpha.log())).sum(-1)  # (B, T)
    return (kl * weight).sum() / weight.sum().clamp_min(1.0)
