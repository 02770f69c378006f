"""Building blocks of SteeringNet: the conv encoder (Table 1) and the spatial attention score.

Pure torch. SteeringNet (model.py) composes them with the sign/amplitude paths, the LSTM and
the output head; their parameter names are part of the checkpoints' state_dict keys.
"""

import torch
from torch import nn
import torch.nn.functional as F

from signattn_driver.model_config import FEATURE_CHANNELS, NUM_LOCATIONS


class Encoder(nn.Module):
    """Five convolutions of Table 1: (N, 3, 80, 160) -> (N, 64, 10, 20).

    ReLU sits between layers but not after conv5: the sign path needs signed features.
    """

    def __init__(self):
        super().__init__()
        # (in, out, kernel, stride, padding); padding keeps Table 1's output sizes.
        spec = [(3, 24, 5, 2, 2), (24, 36, 3, 2, 1), (36, 48, 3, 2, 1),
                (48, 64, 3, 1, 1), (64, FEATURE_CHANNELS, 3, 1, 1)]
        self.convs = nn.ModuleList(nn.Conv2d(i, o, k, s, p) for i, o, k, s, p in spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode frames (N, 3, 80, 160) to feature maps (N, 64, 10, 20)."""
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i < len(self.convs) - 1:
                x = F.relu(x)
        return x


class SpatialAttention(nn.Module):
    """alpha = softmax((w . tanh(W_g x_ij + W_d h) + b + p_ij) / T) over L cells (eq. 11-12, 15).

    p (L,) is the optional per-cell bias (`position_bias`, ModelConfig.attention_position_bias);
    without it p = 0 and the score is the paper's.
    """

    def __init__(self, channels: int, state_size: int, hidden: int, position_bias: bool = False):
        super().__init__()
        self.feature_proj = nn.Linear(channels, hidden)            # W_gamma
        self.state_proj = nn.Linear(state_size, hidden, bias=False)  # W_delta
        self.score = nn.Linear(hidden, 1)                          # w, b
        if position_bias:
            self.position_bias = nn.Parameter(torch.zeros(NUM_LOCATIONS))  # p, row-major cells

    def forward(self, feats: torch.Tensor, h: torch.Tensor, temperature: float,
                command_bias: torch.Tensor | None = None) -> torch.Tensor:
        """Weights (B, L) summing to 1 from features (B, L, C) and the state h (B, H).

        command_bias: (B, hidden) added inside the tanh for route-command models, or None.
        """
        e = self.logits(feats, h, command_bias)
        if hasattr(self, 'position_bias'):
            e = e + self.position_bias
        return torch.softmax(e.float() / temperature, dim=-1).to(feats.dtype)

    def logits(self, feats: torch.Tensor, h: torch.Tensor,
               command_bias: torch.Tensor | None = None) -> torch.Tensor:
        """Score e (B, L) = w . tanh(W_g x_ij + W_d h (+ command bias)) + b, without p or T."""
        drive = self.state_proj(h)
        if command_bias is not None:
            drive = drive + command_bias
        return self.score(torch.tanh(self.feature_proj(feats) + drive[:, None])).squeeze(-1)


class AttentionGain(nn.Module):
    """A global gain g(h, command) (B, 1) on the attention's effect, 1 at the start.

    g = exp(2 tanh(a / 2)), a = w . h_{t-1} + b (+ a per-command bias), so g lies in
    [e^-2, e^2] and every parameter starts at zero (g = 1: the model without it). SteeringNet
    multiplies alpha by g where alpha acts (the sign path's z = kappa g L alpha x; the soft
    path's L g alpha x), leaving alpha's shape, and so the published map, untouched. It is the
    state-dependent gain a learned score gets by parking softmax mass on an empty cell
    (ModelConfig.attention_gain; docs/model.md, "A learned attention gain").
    """

    def __init__(self, state_size: int, num_commands: int = 0):
        super().__init__()
        self.state = nn.Linear(state_size, 1)
        if num_commands:
            self.command = nn.Embedding(num_commands, 1)
        self.reset_parameters()

    def reset_parameters(self):
        """Every weight at zero: g = 1 for every state and command."""
        for p in self.parameters():
            nn.init.zeros_(p)

    def forward(self, h: torch.Tensor, route: torch.Tensor | None = None) -> torch.Tensor:
        """Gain (B, 1) from the state h_{t-1} (B, H) and the command indices (B,) or None."""
        a = self.state(h)
        if route is not None and hasattr(self, 'command'):
            a = a + self.command(route)
        return torch.exp(2.0 * torch.tanh(a / 2.0))
