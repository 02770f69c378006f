"""Streaming inference: one camera frame in, u and the attention map out, LSTM state kept.

The network, its LSTM state and (on CUDA) the preprocessing stay on the device between calls;
per frame only the image goes up and the scalar (and the map, when asked for) come back.
"""

import logging
from typing import NamedTuple
import warnings

import numpy as np
import torch
from torch import nn

from signattn_driver.checkpoint import load_model
from signattn_driver.choices import PRECISIONS
from signattn_driver.device import resolve_device
from signattn_driver.preprocessing import (hsv_u8_to_input, PreprocessingError, to_hsv_u8,
                                           to_hsv_u8_torch)

log = logging.getLogger(__name__)


def quantize_dynamic_int8(model: nn.Module) -> nn.Module:
    """Int8 dynamic quantization of the LSTM and linear layers (CPU only)."""
    from torch.ao import quantization as tq
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # eager-mode quantization deprecation notice
        return tq.quantize_dynamic(model, {nn.LSTMCell, nn.Linear}, dtype=torch.qint8)


class StepOutput(NamedTuple):
    """One frame's answer on the host.

    u_per_m: inverse turning radius, 1/m (+ = left).
    attention: (10, 20) float32 alpha summing to 1, or None when not asked for.
    contribution_per_m: (10, 20) float32 phi, signed, 1/m, or None when not asked for;
        u_per_m == bias_per_m + contribution_per_m.sum() (float32; int8 approximately).
    bias_per_m: the part of u that no cell carries, 1/m (NaN when phi was not asked for).
    """

    u_per_m: float
    attention: np.ndarray | None
    contribution_per_m: np.ndarray | None
    bias_per_m: float


class _CudaGraphStep:
    """One network step (batch 1) captured as a CUDA graph; the LSTM state lives in its buffers.

    Replaying a graph launches the whole step at once instead of ~60 kernels one by one, which
    halves the per-frame time of the paper model on an H200 (docs/benchmarks.md). The graph
    computes the contribution map too (one product and one sum): it costs less than a second
    graph.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, state):
        self.x = x.clone()
        self.command = torch.zeros(1, dtype=torch.long, device=x.device)
        self.h, self.c = (t.clone() for t in state)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):  # warm-up outside the graph, as CUDA graph capture requires
                model.explain_step(self.x, (self.h, self.c), self.command)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = model.explain_step(self.x, (self.h, self.c), self.command)

    def __call__(self, x: torch.Tensor, state, command: int):
        """Advance from `state` on input x; returns (model.Explained on buffers, finite)."""
        self.x.copy_(x)
        self.command.fill_(command)
        if state[0] is not self.h:
            self.h.copy_(state[0])
            self.c.copy_(state[1])
        self.graph.replay()
        out = self.out
        finite = bool(torch.isfinite(out.u).all())
        if finite:
            self.h.copy_(out.state[0])
            self.c.copy_(out.state[1])
        return out._replace(state=(self.h, self.c)), finite


class Predictor:
    """Stateful steering predictor around a checkpoint.

    Example:
        p = Predictor('model.pt')
        u_per_m, attention_10x20 = p.step(bgr_image)
    """

    def __init__(self, checkpoint_path, device: str = 'auto', precision: str = 'fp32',
                 cuda_graph: bool = True):
        """Load the checkpoint onto `device` ('auto', 'cpu', 'cuda', 'cuda:N').

        Args:
            checkpoint_path: file written by `checkpoint.save`.
            device: where the network and its state live.
            precision: 'fp32', 'bf16' (autocast) or 'int8' (dynamic quantization, CPU only).
            cuda_graph: on CUDA in fp32, replay each step as a captured CUDA graph.
        """
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
        self.device = resolve_device(device)
        if precision == 'int8' and self.device.type != 'cpu':
            raise ValueError('int8 dynamic quantization runs on the CPU only')
        model, self.checkpoint = load_model(checkpoint_path, map_location='cpu')
        if precision == 'int8':
            model = quantize_dynamic_int8(model)
        self.model = model.to(self.device).eval()
        self.precision = precision
        self.config = self.checkpoint.config
        self.state = None
        self._staging = {}  # (H, W, 3) -> (pinned host buffer, device buffer), CUDA only
        self.cuda_graph = cuda_graph
        self._graph = None
        log.info('loaded %s on %s (%s)', checkpoint_path, self.device, precision)

    def to(self, device: str):
        """Move the network to another device (e.g. CPU after CUDA ran out of memory).

        The LSTM state restarts; the next frame begins a new sequence.
        """
        self.device = resolve_device(device)
        self.model.to(self.device)
        self._staging.clear()
        self._graph = None
        self.reset()

    def reset(self):
        """Forget the LSTM state; the next frame starts a new sequence (eq. 13-14)."""
        self.state = None

    def preprocess(self, image, color_order: str = 'bgr') -> torch.Tensor:
        """Camera image (H, W, 3) uint8, numpy or torch -> input (1, 3, 80, 160) on the device."""
        if self.device.type == 'cpu':
            array = image.numpy() if isinstance(image, torch.Tensor) else image
            hsv = torch.from_numpy(to_hsv_u8(np.ascontiguousarray(array), color_order))
        else:
            if not isinstance(image, torch.Tensor):
                image = self._upload(image)
            hsv = to_hsv_u8_torch(image.to(self.device, non_blocking=True), color_order)
        return hsv_u8_to_input(hsv)[None]

    def _upload(self, image: np.ndarray) -> torch.Tensor:
        """Copy a host image to the device through a reused pinned staging buffer."""
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
            raise PreprocessingError('expected an (H, W, 3) uint8 image array')
        key = image.shape
        if key not in self._staging:
            self._staging[key] = (torch.empty(key, dtype=torch.uint8).pin_memory(),
                                  torch.empty(key, dtype=torch.uint8, device=self.device))
        host, device = self._staging[key]
        # Safe to overwrite: the previous frame's copy finished when step() read u back.
        host.numpy()[...] = image
        return device.copy_(host, non_blocking=True)

    @torch.inference_mode()
    def step_input(self, x: torch.Tensor, command: int | None = None):
        """Advance on preprocessed input (1, 3, 80, 160); returns model.Explained (device).

        The state is only replaced when the output is finite, so a bad frame cannot poison it.
        `command` (route_command.py) reaches command models only; None means follow-lane.
        """
        x = x.to(self.device)
        command = 0 if command is None else int(command)
        if (self.cuda_graph and self.device.type == 'cuda' and self.precision == 'fp32'
                and self.state is not None and x.shape[0] == 1):
            if self._graph is None:
                self._graph = _CudaGraphStep(self.model, x, self.state)
            out, finite = self._graph(x, self.state, command)
            if finite:
                self.state = out.state
            return out
        with torch.autocast(self.device.type, dtype=torch.bfloat16,
                            enabled=self.precision == 'bf16'):
            out = self.model.explain_step(x, self.state, command)
        if bool(torch.isfinite(out.u).all()):
            self.state = out.state
        return out

    def step_full(self, image, color_order: str = 'bgr', want_attention: bool = True,
                  want_contribution: bool = False, command: int | None = None) -> StepOutput:
        """Advance one frame; copy back what was asked for (see `StepOutput`).

        Args:
            image: (H, W, 3) uint8 camera image (numpy, or a torch tensor on any device).
            color_order: 'bgr' or 'rgb'.
            want_attention: copy the attention map back to the host.
            want_contribution: copy the contribution map phi and its bias back to the host.
            command: route command (route_command.py) for command models; None = follow-lane.
        """
        out = self.step_input(self.preprocess(image, color_order), command)
        attention = out.alpha[0].float().cpu().numpy() if want_attention else None
        if want_contribution:
            phi = out.contribution[0].float().cpu().numpy()
            bias = float(out.bias[0])
        else:
            phi, bias = None, float('nan')
        return StepOutput(float(out.u[0]), attention, phi, bias)

    def step(self, image, color_order: str = 'bgr', want_attention: bool = True,
             command: int | None = None):
        """Advance one frame.

        Args:
            image: (H, W, 3) uint8 camera image (numpy, or a torch tensor on any device).
            color_order: 'bgr' or 'rgb'.
            want_attention: copy the attention map back to the host.
            command: route command (route_command.py) for command models; None = follow-lane.

        Returns:
            (u in 1/m (+ = left) as float, attention (10, 20) float32 numpy summing to 1 or None).
        """
        out = self.step_full(image, color_order, want_attention, command=command)
        return out.u_per_m, out.attention
