"""Per-frame latency of Predictor.step for fp32, bf16 and int8, and their error against fp32."""

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
    return results
