"""Label-honest augmentation of training windows, on the model's device."""

import torch

from signattn_driver.route_command import FOLLOW_LANE, MIRRORED


def augment(frames: torch.Tensor, u: torch.Tensor, gain: torch.Tensor, flip: torch.Tensor):
    """Label-honest augmentation on the device.

    frames (B, T, 80, 160, 3) uint8 HSV: V scaled by gain (B,) (brightness; u unchanged);
    lanes with flip (B,) mirrored left-right with u negated (a mirrored road turns the other
    way with the same curvature).
    """
    if bool((gain != 1).any()):
        v = (frames[..., 2].float() * gain.view(-1, 1, 1, 1)).round().clamp(0, 255)
        frames = torch.cat([frames[..., :2], v.to(torch.uint8)[..., None]], dim=-1)
    if bool(flip.any()):
        frames = torch.where(flip.view(-1, 1, 1, 1, 1), frames.flip(-2), frames)
        u = torch.where(flip[:, None], -u, u)
    return frames, u


def mirror_route_commands(commands: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Route commands (B, T) of lanes whose frames `augment` mirrored: left and right swap.

    Returns (B, T) int64; lanes with flip (B,) False keep their commands.
    """
    commands = commands.long()
    mirrored = torch.as_tensor(MIRRORED, device=commands.device)[commands]
    return torch.where(flip.view(-1, 1), mirrored, commands)


def drop_route_commands(commands: torch.Tensor, probability: float, seed: int) -> torch.Tensor:
    """Route commands (B, T) with whole lanes set to follow-lane, each with `probability`.

    The draw depends on `seed` alone, so the windows of one episode (the same lanes, the same
    seed) and a resumed run draw alike; TrainConfig.command_dropout. Returns (B, T) int64.
    """
    generator = torch.Generator().manual_seed(seed)
    drop = torch.rand(len(commands), generator=generator) < probability
    return torch.where(drop.to(commands.device).view(-1, 1), FOLLOW_LANE, commands.long())
