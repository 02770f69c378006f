"""Per-frame latency of Predictor.step for fp32, bf16 and int8, their error, and phi's cost.

phi's cost (`--phi-steps`, fp32 on --device): the network step alone, `SteeringNet.step`
against `SteeringNet.explain_step` (which also splits u over the map), on the same
preprocessed frames and carried state, alternating frame by frame so that both see the same
machine load; and `Predictor.step_full` with and without `want_contribution` (the map's copy
back to the host); and the split alone (`SteeringNet.contribution` on one step's gated
features), the only work explain_step adds. Medians; ratios against the network step.
"""

import platform
import tempfile
import time

import numpy as np
import torch

from signattn_driver import checkpoint
from signattn_driver.latency import latency_summary
from signattn_driver.model import count_parameters, ModelConfig, SteeringNet
from signattn_driver.predictor import Predictor


def add_arguments(parser):
    """Options of `signattn benchmark predictor`."""
    parser.add_argument('--checkpoint', help='checkpoint to time (default: a paper-size model '
                        'with random weights)')
    parser.add_argument('--steps', type=int, default=1000, help='timed steps per precision')
    parser.add_argument('--warmup', type=int, default=20)
    parser.add_argument('--threads', type=int, default=2, help='torch.set_num_threads')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--precisions', default='fp32,bf16,int8')
    parser.add_argument('--lstm-hidden', type=int, default=1024,
                        help='hidden size of the random model (paper: 1024)')
    parser.add_argument('--phi-steps', type=int, default=0,
                        help="time phi's cost over this many alternating steps (0: skip)")


def _frames(n: int, seed: int = 0) -> list:
    """Camera-like 640x480 BGR frames: a road-coloured gradient, lane lines and noise."""
    rng = np.random.default_rng(seed)
    base = np.zeros((480, 640, 3), np.uint8)
    base[:240] = (200, 160, 120)                                 # sky
    base[240:] = (90, 90, 90)                                    # asphalt
    frames = []
    for i in range(n):
        f = base.copy()
        shift = int(40 * np.sin(i / 15))
        for x0 in (200, 440):
            xs = np.linspace(x0 + shift, 320 + shift // 4, 240).astype(int)
            f[np.arange(240, 480), np.clip(xs, 0, 639)] = 255
        f = np.clip(f + rng.integers(-8, 9, f.shape), 0, 255).astype(np.uint8)
        frames.append(f)
    return frames


def _time_steps(predictor: Predictor, frames: list, steps: int, warmup: int):
    sync = torch.cuda.synchronize if predictor.device.type == 'cuda' else (lambda: None)
    outputs, times_ms = [], []
    predictor.reset()
    for i in range(warmup):
        predictor.step(frames[i % len(frames)])
    predictor.reset()
    for i in range(steps):
        sync()
        t0 = time.perf_counter()
        u, _ = predictor.step(frames[i % len(frames)])
        sync()
        times_ms.append((time.perf_counter() - t0) * 1e3)
        outputs.append(u)
    return np.array(outputs), np.array(times_ms)


def _median_ms(times: list) -> float:
    return float(np.median(times) * 1e3)


@torch.inference_mode()
def phi_cost(predictor: Predictor, frames: list, steps: int) -> dict:
    """Median ms of step vs explain_step, and of step_full with/without the map (see module)."""
    model, sync = predictor.model, (torch.cuda.synchronize if predictor.device.type == 'cuda'
                                    else (lambda: None))
    inputs = [predictor.preprocess(f) for f in frames]
    state = model.step(inputs[0])[2]
    plain, explained = [], []
    for i in range(steps):
        x = inputs[i % len(inputs)]
        for fn, times in ((model.step, plain), (model.explain_step, explained)) if i % 2 else \
                ((model.explain_step, explained), (model.step, plain)):
            sync()
            t0 = time.perf_counter()
            out = fn(x, state)
            sync()
            times.append(time.perf_counter() - t0)
        state = out[-1]
    # The only extra work of explain_step: the split itself (one product and one sum), timed
    # alone on the last step's gated features; under a loaded machine this ratio is steadier
    # than the difference of two noisy step times.
    feats = model.encode(inputs[0])
    _, _, gated, route, _ = model._step(feats, state, None)   # any score, any command kind
    split = []
    for _ in range(steps):
        sync()
        t0 = time.perf_counter()
        model.contribution(gated, route)
        sync()
        split.append(time.perf_counter() - t0)
    without, with_phi = [], []
    predictor.reset()
    for i in range(steps):
        frame = frames[i % len(frames)]
        for want, times in ((False, without), (True, with_phi)) if i % 2 else \
                ((True, with_phi), (False, without)):
            sync()
            t0 = time.perf_counter()
            predictor.step_full(frame, want_contribution=want)
            sync()
            times.append(time.perf_counter() - t0)
    out = {'steps': steps, 'network_step_ms': _median_ms(plain),
           'network_explain_step_ms': _median_ms(explained),
           'predictor_step_full_ms': _median_ms(without),
           'predictor_step_full_with_contribution_ms': _median_ms(with_phi)}
    out['contribution_alone_ms'] = _median_ms(split)
    out['contribution_alone_over_step'] = out['contribution_alone_ms'] / out['network_step_ms']
    out['explain_over_step'] = out['network_explain_step_ms'] / out['network_step_ms'] - 1
    out['with_contribution_over_without'] = (out['predictor_step_full_with_contribution_ms']
                                             / out['predictor_step_full_ms'] - 1)
    return out


def run(args) -> dict:
    """Time each precision on the same frames; report medians, p99 and error against fp32."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.checkpoint
        if path is None:
            model = SteeringNet(ModelConfig(lstm_hidden=args.lstm_hidden))
            path = checkpoint.save(f'{tmp}/random.pt', model)
        frames = _frames(64)
        results = {'device': args.device, 'threads': args.threads, 'steps': args.steps,
                   'torch': torch.__version__, 'cpu': platform.processor() or platform.machine()}
        reference = None
        for precision in args.precisions.split(','):
            predictor = Predictor(path, device=args.device, precision=precision)
            if 'parameters' not in results:
                results['parameters'] = count_parameters(predictor.model)
                results['weights_mib_fp32'] = results['parameters'] * 4 / 2**20
                results['config'] = predictor.config.to_dict()
            u, ms = _time_steps(predictor, frames, args.steps, args.warmup)
            entry = {**latency_summary(ms), 'mean_abs_u_per_m': float(np.abs(u).mean())}
            if reference is None:
                reference = u
            else:
                err = np.abs(u - reference)
                entry['max_abs_err_vs_fp32_per_m'] = float(err.max())
                entry['rel_err_vs_fp32'] = float(err.mean() / (np.abs(reference).mean() + 1e-12))
            results[precision] = entry
            if precision == 'fp32' and args.phi_steps:
                results['phi_cost'] = phi_cost(predictor, frames, args.phi_steps)
    return results
