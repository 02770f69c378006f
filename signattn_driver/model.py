"""The steering network of Tashiro & Awano (2023) and its two baselines.

SteeringNet maps a sequence of preprocessed frames to the inverse turning radius u (1/m) and a
10x20 spatial attention map per frame:

    frames (B, T, 3, 80, 160) -> Encoder (Table 1) -> X_t (B, L=200, C=64)
    alpha_t = softmax(w . tanh(W_g x_ij + W_d h_{t-1}) + b) / T)        eq. 11-12, 15
              (+ a learned per-cell bias p_ij inside the softmax if attention_position_bias)
              or, attention_score 'head': softmax((log(|phi_t at alpha = 1/L| + eps) + p) / T)
              or 'both': the head's log |phi at 1/L| plus the learned score e_ij, then as 'head'
              (alpha acts as g alpha with a learned gain g(h_{t-1}) if attention_gain)
    "sign":  X^_t = Binarize(x[:32] * alpha) * Q_{a,b,n}(Softplus(x[32:]))   eq. 4-9
             binarize 'mean_field': hardtanh(kappa L alpha x) at inference, a sign drawn with
             P(+1) = hardsigmoid(kappa L alpha x) in training; 'gated': sign(x) * L alpha
    "soft":  X^_t = L * alpha * x       (Kim & Canny 2017)
    "none":  X^_t = x
    u_t = W_b . dropout(sigmoid(W_a h_{t-1} + b_a) o flatten(X^_t)) + b_b   eq. 10
        = b_b + sum over cells l of phi_t[l]   (exact: the contribution map, `explain_step`)
    (h_t, c_t) = LSTM(flatten(X^_t), (h_{t-1}, c_{t-1}))
              (X^_t at alpha = 1/L instead if memory_input is 'uniform')
    (h_0, c_0) = f_init(mean_L X_0)                                      eq. 13-14

Known inconsistencies of the paper and what this module does (see docs/model.md):
- Table 1 lists conv3 without a stride but 10x20 output from a 20x40 input; Fig. 3 uses 5x5
  kernels for conv2. We follow Table 1's kernel sizes and output sizes, so conv3 has stride 2.
- eq. 4: with alpha > 0, sign(x * alpha) == sign(x); alpha reaches the "sign" model only through
  the straight-through gradient (or the forward pass, with stochastic binarization). The
  'mean_field' and 'gated' binarizers make alpha act at inference (docs/model.md).
"""

from typing import NamedTuple

import torch
from torch import nn
import torch.nn.functional as F

from signattn_driver.layers import AttentionGain, Encoder, SpatialAttention
from signattn_driver.model_config import (  # noqa: F401 (re-exported: model.ModelConfig etc.)
    ATTENTION_SCORES, ATTENTIONS, BINARIZERS, FEATURE_CHANNELS, INPUT_HEIGHT, INPUT_WIDTH,
    MAP_HEIGHT, MAP_WIDTH, MEMORY_INPUTS, ModelConfig, NUM_LOCATIONS)
from signattn_driver.quantization import binarize, uniform_quantize


State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (B, lstm_hidden)


class Explained(NamedTuple):
    """One step with its exact decomposition: u = bias + contribution.sum((-2, -1)).

    u: (B,) inverse turning radius, 1/m (+ = left).
    alpha: (B, 10, 20) attention, sums to 1.
    contribution: (B, 10, 20) phi, signed, 1/m: each cell's share of u through X^_t.
    bias: (B,) the part of u that no cell carries (b_beta, the branch's bias), 1/m.
    state: (h_t, c_t).
    gain: (B,) the attention gain g(h_{t-1}) (attention_gain), None for a model without it.
    """

    u: torch.Tensor
    alpha: torch.Tensor
    contribution: torch.Tensor
    bias: torch.Tensor
    state: State
    gain: torch.Tensor | None = None


class SteeringNet(nn.Module):
    """CNN + attention + LSTM predicting the inverse turning radius u (1/m, + = left)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        hidden = config.lstm_hidden
        d_in = config.lstm_input_size
        self.encoder = Encoder()
        self.attention = SpatialAttention(FEATURE_CHANNELS, hidden, config.attention_hidden,
                                          config.attention_position_bias)
        self.init_h = nn.Linear(FEATURE_CHANNELS, hidden)  # f_init,h (eq. 14)
        self.init_c = nn.Linear(FEATURE_CHANNELS, hidden)  # f_init,c (eq. 13)
        self.lstm = nn.LSTMCell(d_in, hidden)
        self.gate = nn.Linear(hidden, d_in)                # W_alpha, b_alpha (eq. 10)
        self.dropout = nn.Dropout(config.dropout)
        # W_beta, b_beta (eq. 10); one row per route command when the model takes commands.
        self.head = nn.Linear(d_in, max(1, config.num_commands))
        if config.num_commands:
            self.command_attention = nn.Embedding(config.num_commands, config.attention_hidden)
            self.command_gate = nn.Embedding(config.num_commands, d_in)
        if config.attention_gain:
            self.alpha_gain = AttentionGain(hidden, config.num_commands)
        self.reset_parameters()

    def reset_parameters(self):
        """Xavier-uniform weights and zero biases everywhere (paper Sec. IV-A).

        The command embeddings start at zero, so every command starts as the camera-only model;
        so does the attention gain's weights (g = 1).
        """
        for name, p in self.named_parameters():
            if name.startswith(('command_', 'alpha_gain.')) or p.dim() < 2:
                nn.init.zeros_(p)
            else:
                nn.init.xavier_uniform_(p)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (N, 3, 80, 160) -> features (N, L, C), locations in row-major order."""
        return self.encoder(frames).flatten(2).transpose(1, 2)

    def initial_state_from_features(self, feats: torch.Tensor) -> State:
        """Compute (h_0, c_0) from the mean feature vector (eq. 13-14); feats (B, L, C)."""
        mean = feats.mean(dim=1)
        return torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean))

    def initial_state(self, frame: torch.Tensor) -> State:
        """Compute (h_0, c_0), each (B, lstm_hidden), from the first frame (B, 3, 80, 160)."""
        return self.initial_state_from_features(self.encode(frame))

    def attend(self, feats: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """Combine features (B, L, C) with attention (B, L) into flatten(X^_t) (B, D_in)."""
        cfg = self.config
        if cfg.attention == 'none':
            return feats.flatten(1)
        if cfg.attention == 'soft':
            # Scaled by L so that uniform attention is the identity (a constant the LSTM's input
            # weights would otherwise have to learn); Kim & Canny's element-wise product.
            return (feats * (alpha * NUM_LOCATIONS)[..., None]).flatten(1)
        half = FEATURE_CHANNELS // 2
        x_sig = self.sign_path(feats[..., :half], alpha)
        low, high = cfg.quant_range
        x_amp = uniform_quantize(F.softplus(feats[..., half:]), cfg.quant_bits, low, high)  # 5-7
        return (x_sig * x_amp).flatten(1)                                     # eq. 9

    def sign_input(self, feats_sign: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """Return z = kappa L alpha x of the sign half (B, L, C/2), what 'mean_field' binarizes.

        L * alpha is 1 under uniform attention, so kappa alone sets the scale of z.
        """
        scale = alpha * (NUM_LOCATIONS * self.config.sign_kappa)
        return feats_sign * scale[..., None]

    def sign_path(self, feats_sign: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """Binarized sign half (B, L, C/2) from features (B, L, C/2) and attention (B, L).

        'deterministic': sign(x alpha) = sign(x) (eq. 4; alpha acts only through the STE).
        'stochastic': +1 with probability hardsigmoid(L alpha x) in training, eq. 4 otherwise.
        'mean_field': +1 with probability hardsigmoid(z), z = kappa L alpha x, in training; its
            expectation 2 P(+1) - 1 = hardtanh(z) at inference, so alpha sets how strongly each
            location's signs are passed on.
        'gated' (ablation): sign(x) * L alpha, alpha gating the binarized path after eq. 4.
        """
        mode = self.config.binarize
        if mode == 'mean_field':
            z = self.sign_input(feats_sign, alpha)
            if self.training:
                return binarize(z, stochastic=True)
            return torch.clamp(z, -1.0, 1.0)
        if mode == 'gated':
            return binarize(feats_sign) * (alpha * NUM_LOCATIONS)[..., None]
        weighted = feats_sign * alpha[..., None]
        if mode == 'stochastic' and self.training:
            # Scaled by L so that uniform attention leaves the sign probabilities of x unchanged.
            return binarize(weighted * NUM_LOCATIONS, stochastic=True)
        return binarize(weighted)                                             # eq. 4, 8

    @torch.inference_mode()
    def sign_saturation(self, frame: torch.Tensor, state: State | None = None,
                        command=None) -> torch.Tensor:
        """Share of sign inputs with |kappa L alpha x| >= 1 (hardtanh saturated), per frame.

        Args:
            frame: (B, 3, 80, 160) network input.
            state: (h_{t-1}, c_{t-1}) or None (f_init of the frame).
            command: route command(s) of a command model (int or (B,)); None: follow-lane.

        Returns:
            (B,) fractions in [0, 1]; NaN for models without a sign path.
        """
        feats = self.encode(frame)
        if self.config.attention != 'sign':
            return feats.new_full((len(frame),), float('nan'))
        if state is None:
            state = self.initial_state_from_features(feats)
        route = self._route(command, len(feats), feats.device)
        alpha = self._alpha(feats, state[0], route)
        z = self.sign_input(feats[..., :FEATURE_CHANNELS // 2],
                            self._acting(alpha, state[0], route))
        return (z.abs() >= 1.0).flatten(1).float().mean(1)

    def _head(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(W_beta (K, D_in), b_beta (K,)) as float tensors, also for an int8-quantized head."""
        weight, bias = self.head.weight, self.head.bias
        if callable(weight):   # torch.ao dynamic quantized Linear: packed params
            weight, bias = weight().dequantize(), bias()
        return weight, bias

    def _route(self, command: torch.Tensor | None, batch: int, device) -> torch.Tensor | None:
        """Command indices (B,) long for a command model (None -> follow-lane); None otherwise."""
        if not self.config.num_commands:
            return None
        if command is None:
            return torch.zeros(batch, dtype=torch.long, device=device)
        return torch.as_tensor(command, device=device).long().reshape(-1).expand(batch)

    def _step(self, feats: torch.Tensor, state: State, command: torch.Tensor | None):
        """One step's parts: u (B,), alpha (B, L), gated X^ (B, D_in), route (B,)|None, state."""
        h, c = state
        route = self._route(command, len(feats), feats.device)
        alpha = self._alpha(feats, h, route)
        x_hat = self.attend(feats, self._acting(alpha, h, route))            # (B, D_in)
        gated = self._output_gate(h, route) * x_hat                          # eq. 10
        out = self.head(self.dropout(gated))                                 # (B, K)
        if route is not None:
            out = out.gather(1, route[:, None])
        u = out.squeeze(-1) * self.config.output_scale
        h, c = self.lstm(self._memory_input(feats, x_hat), (h, c))
        return u, alpha, gated, route, (h, c)

    def _memory_input(self, feats: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """Return what the LSTM reads (B, D_in): X^_t, or X^_t at alpha = 1/L ('uniform').

        'uniform' uses no attention gain either: the memory's input does not depend on alpha.
        """
        if self.config.memory_input == 'attended' or self.config.attention == 'none':
            return x_hat
        return self.attend(feats, feats.new_full(feats.shape[:2], 1.0 / NUM_LOCATIONS))

    def _acting(self, alpha: torch.Tensor, h: torch.Tensor, route: torch.Tensor | None):
        """Return the attention (B, L) as it acts on the features: g(h_{t-1}) alpha, or alpha."""
        if not hasattr(self, 'alpha_gain'):
            return alpha
        return alpha * self.alpha_gain(h, route).to(alpha.dtype)

    def _alpha(self, feats: torch.Tensor, h: torch.Tensor, route: torch.Tensor | None):
        """Attention (B, L) of features (B, L, C) at h_{t-1}, with the command's score bias."""
        if self.config.attention == 'none':
            return feats.new_full(feats.shape[:2], 1.0 / NUM_LOCATIONS)
        if self.config.attention_score in ('head', 'both'):
            e = self._head_score(feats, h, route)
            if self.config.attention_score == 'both':
                extra = None if route is None else self.command_attention(route)
                learned = self.attention.logits(feats, h, extra)
                bound = self.config.learned_score_bound
                e = e + (bound * torch.tanh(learned / bound) if bound > 0 else learned)
            if hasattr(self.attention, 'position_bias'):
                e = e + self.attention.position_bias
            return torch.softmax(e.float() / self.config.temperature, dim=-1).to(feats.dtype)
        extra = () if route is None else (self.command_attention(route),)
        return self.attention(feats, h, self.config.temperature, *extra)

    def _head_score(self, feats: torch.Tensor, h: torch.Tensor, route: torch.Tensor | None):
        """Score (B, L) of attention_score 'head': log(|phi at alpha = 1/L| + eps), phi in 1/m.

        |phi_l| at uniform attention is how much the head draws on cell l at this state and
        command before alpha acts (the sign path's expected signs, no dropout; gradients flow
        unless ModelConfig.head_score_gradient is False).
        eps (1e-6 of the frame's mean |phi|) keeps empty cells finite.
        """
        flat = feats.new_full(feats.shape[:2], 1.0 / NUM_LOCATIONS)
        size = self.contribution_with(feats, flat, h, route)[0].flatten(1).abs()   # (B, L)
        if not self.config.head_score_gradient:
            size = size.detach()
        eps = 1e-6 * size.mean(-1, keepdim=True).detach() + 1e-12
        return torch.log(size + eps)

    def _output_gate(self, h: torch.Tensor, route: torch.Tensor | None) -> torch.Tensor:
        """sigmoid(W_alpha h_{t-1} + b_alpha), plus the command's bias for a command model."""
        gate = self.gate(h)
        if route is not None:
            gate = gate + self.command_gate(route)
        return torch.sigmoid(gate)

    def step_features(self, feats: torch.Tensor, state: State, command=None):
        """Advance one time step from encoded features.

        Args:
            feats: (B, L, C) features of frame t.
            state: (h_{t-1}, c_{t-1}).
            command: route command(s) (B,) or a scalar (route_command.py) for a command model;
                None means follow-lane. Ignored by camera-only models.

        Returns:
            u (B,) in 1/m, alpha (B, L), and the new state (h_t, c_t).
        """
        u, alpha, _, _, state = self._step(feats, state, command)
        return u, alpha, state

    def contribution(self, gated: torch.Tensor, route: torch.Tensor | None):
        """Split u exactly over the map: phi (B, 10, 20) and the bias (B,), both in 1/m.

        u = s (W_beta . g + b_beta) with g = sigmoid(W_alpha h_{t-1}) o X^_t (eq. 10, dropout
        is the identity in eval mode), and X^_t's entries belong to map cells, so
        phi[l] = s sum_c W_beta[l, c] g[l, c] and u = s b_beta + sum_l phi[l].
        """
        weight, bias = self._head()
        if route is None:
            weight, bias = weight[:1].expand(len(gated), -1), bias[:1].expand(len(gated))
        else:
            weight, bias = weight[route], bias[route]
        scale = self.config.output_scale
        phi = (weight * gated).view(len(gated), NUM_LOCATIONS, -1).sum(-1) * scale
        return phi.view(-1, MAP_HEIGHT, MAP_WIDTH), bias * scale

    def explain_step(self, frame: torch.Tensor, state: State | None = None,
                     command=None) -> Explained:
        """`step` with the exact contribution map phi of the current frame (see `Explained`).

        phi is exact for the current frame's path to u_t in eval mode: sum(phi) + bias == u_t
        to float precision. The frame also reaches later commands through h_t, which phi does
        not include (docs/model.md, "The contribution map").
        """
        feats = self.encode(frame)
        if state is None:
            state = self.initial_state_from_features(feats)
        h_prev = state[0]
        u, alpha, gated, route, state = self._step(feats, state, command)
        phi, bias = self.contribution(gated, route)
        gain = self.alpha_gain(h_prev, route)[:, 0] if hasattr(self, 'alpha_gain') else None
        return Explained(u, alpha.view(-1, MAP_HEIGHT, MAP_WIDTH), phi, bias, state, gain)

    def step(self, frame: torch.Tensor, state: State | None = None, command=None):
        """One streaming step: frame (B, 3, 80, 160) -> (u (B,), alpha (B, 10, 20), state)."""
        feats = self.encode(frame)
        if state is None:
            state = self.initial_state_from_features(feats)
        u, alpha, state = self.step_features(feats, state, command)
        return u, alpha.view(-1, MAP_HEIGHT, MAP_WIDTH), state

    def forward(self, frames: torch.Tensor, state: State | None = None,
                commands: torch.Tensor | None = None, contribution: bool = False,
                contribution_at_uniform: bool = False):
        """Run a sequence.

        Args:
            frames: (B, T, 3, 80, 160) float network input (see preprocessing).
            state: (h, c) carried from a previous chunk, or None to start from frame 0 (eq. 13-14).
            commands: (B, T) route commands for a command model; None means follow-lane.
            contribution: also return phi (B, T, 10, 20), 1/m, as `explain_step` gives it in
                eval mode (expected signs, no dropout), without gradient: the target of the
                training's alignment term (training.config.TrainConfig.align_weight).
            contribution_at_uniform: that phi from the same frame and state with alpha = 1/L
                instead (free of alpha, so not circular where alpha acts; align_target).

        Returns:
            u (B, T) in 1/m, attention (B, T, 10, 20) summing to 1 per frame, final state; and
            phi (B, T, 10, 20) when `contribution` is set.
        """
        b, t = frames.shape[:2]
        feats = self.encode(frames.flatten(0, 1)).unflatten(0, (b, t))     # (B, T, L, C)
        if state is None:
            state = self.initial_state_from_features(feats[:, 0])
        us, alphas, phis = [], [], []
        for i in range(t):
            command = None if commands is None else commands[:, i]
            h_prev = state[0]
            u, alpha, gated, route, state = self._step(feats[:, i], state, command)
            us.append(u)
            alphas.append(alpha)
            if contribution:
                reference = (torch.full_like(alpha, 1.0 / NUM_LOCATIONS)
                             if contribution_at_uniform else alpha)
                phis.append(self._eval_contribution(feats[:, i], reference, h_prev, route,
                                                    None if contribution_at_uniform else gated))
        attention = torch.stack(alphas, 1).view(b, t, MAP_HEIGHT, MAP_WIDTH)
        if contribution:
            return torch.stack(us, 1), attention, state, torch.stack(phis, 1)
        return torch.stack(us, 1), attention, state

    @torch.no_grad()
    def _eval_contribution(self, feats, alpha, h_prev, route, gated) -> torch.Tensor:
        """Return phi (B, 10, 20) of one step as in eval mode (`gated` reused outside training).

        gated None: recomputed from `alpha` (a reference attention such as 1/L).

        In training the sign path draws signs ('stochastic', 'mean_field'); |phi| of one draw
        is biased upwards where the signs are coin flips, so the target uses their
        expectation, i.e. the eval-mode path (sign_path reads self.training).
        """
        if gated is None or (self.training and self.config.attention == 'sign'):
            return self.contribution_with(feats, alpha, h_prev, route)[0]
        return self.contribution(gated, route)[0]

    def contribution_with(self, feats: torch.Tensor, alpha: torch.Tensor, h_prev: torch.Tensor,
                          command=None):
        """Return phi (B, 10, 20) and bias (B,), 1/m, of one step with a given alpha, eval mode.

        The arithmetic of `_step` (eq. 10) with alpha (B, L) replaced, e.g. by 1/L or a
        renormalised map: what u would be had the attention been `alpha` for this frame
        (features (B, L, C)) and state (h_{t-1} (B, H)); u = phi.sum((-2, -1)) + bias. The sign
        path uses its expected signs whatever the module's mode (no draw, no dropout); the
        attention gain (attention_gain) of h_{t-1} applies to `alpha` as in `_step`.
        `command` as in `step_features` (None: follow-lane).
        """
        route = self._route(command, len(feats), feats.device)
        training, self.training = self.training, False   # this module only: no dropout here
        try:
            x_hat = self.attend(feats, self._acting(alpha, h_prev, route))
        finally:
            self.training = training
        return self.contribution(self._output_gate(h_prev, route) * x_hat, route)


def count_parameters(model: nn.Module) -> int:
    """Count trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def entropy_of_attention(attention: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of attention maps (..., 10, 20); max is log(200) = 5.30."""
    p = attention.flatten(-2).clamp_min(1e-12)
    return -(p * p.log()).sum(-1).mean()
