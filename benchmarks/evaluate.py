"""Deletion-metric throughput (batched vs one level at a time) and cost per explanation."""

import platform
import time

import numpy as np
import torch

from signattn_driver.evaluation.deletion import deletion_curves, DeletionConfig, fill_images, \
    levels_percent, perturb, rank_pixels
from signattn_driver.device import resolve_device
from signattn_driver.evaluation.explanations import compute_maps, ExplainConfig, index_state
from signattn_driver.model import count_parameters, ModelConfig, SteeringNet
from signattn_driver.preprocessing import hsv_u8_to_input


def add_arguments(parser):
    """Options of `signattn benchmark evaluate`."""
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=2, help='torch.set_num_threads')
    parser.add_argument('--lstm-hidden', type=int, default=16,
                        help='LSTM hidden size (16: the tests\' tiny config; paper: 1024)')
    parser.add_argument('--frames', type=int, default=4, help='frames per deletion timing')
    parser.add_argument('--step-percent', type=float, default=1.0)
    parser.add_argument('--batch-images', type=int, default=404)
    parser.add_argument('--repeats', type=int, default=3, help='timed repeats (median)')
    parser.add_argument('--naive-frames', type=int, default=1,
                        help='frames timed one level at a time')
    parser.add_argument('--lime-samples', type=int, default=1000)
    parser.add_argument('--lime-frames', type=int, default=1)


def _frames(n: int, seed: int = 0) -> np.ndarray:
    """Road-like (n, 80, 160, 3) uint8 HSV frames: sky, asphalt, two lane lines, noise."""
    rng = np.random.default_rng(seed)
    hsv = np.zeros((n, 80, 160, 3), np.uint8)
    hsv[:, :40] = (105, 90, 200)
    hsv[:, 40:] = (60, 20, 90)
    for i in range(n):
        for x0 in (40, 120):
            xs = np.linspace(x0 + 4 * i, 80, 40).astype(int)
            hsv[i, np.arange(40, 80), np.clip(xs, 0, 159), 2] = 255
    noise = rng.integers(-6, 7, hsv.shape)
    return np.clip(hsv.astype(int) + noise, 0, 255).astype(np.uint8)


def _median_time(fn, repeats: int, sync) -> float:
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


@torch.inference_mode()
def _naive(model, x, maps, targets, state, cfg):
    """One image per forward pass: the loop the batched implementation replaces."""
    levels = levels_percent(cfg.step_percent)
    counts = torch.as_tensor(np.rint(levels / 100 * 80 * 160).astype(np.int64),
                             device=x.device)
    ranks = rank_pixels(maps.to(x.device), cfg.seed)
    fills = fill_images(x, cfg.fill)
    out = []
    for i in range(len(x)):
        for k in range(len(counts)):
            img = perturb(x[i:i + 1], fills[i:i + 1], ranks[i:i + 1], counts[k:k + 1])[:, 0]
            u = model.step(img, index_state(state, torch.tensor([i])))[0]
            out.append(float((u.double() - targets[i]).abs()))
    return out


def run(args) -> dict:
    """Time deletion curves batched and naively, and each explanation method."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = resolve_device(args.device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    model = SteeringNet(ModelConfig(lstm_hidden=args.lstm_hidden, dropout=0.0)).eval().to(device)
    hsv = _frames(args.frames)
    x = hsv_u8_to_input(torch.from_numpy(hsv).to(device))
    with torch.inference_mode():
        state = model.initial_state(x)
        targets = model.step(x, state)[0].double().cpu().numpy() + 0.01
    maps, _ = compute_maps('attention', model, x, state)
    levels = len(levels_percent(args.step_percent))
    cfg = DeletionConfig(step_percent=args.step_percent, insertion=False,
                         batch_images=args.batch_images)
    deletion_curves(model, x, maps, targets, state, cfg)             # warm-up
    batched_s = _median_time(lambda: deletion_curves(model, x, maps, targets, state, cfg),
                             args.repeats, sync)
    nf = max(1, min(args.naive_frames, args.frames))
    sub = tuple(s[:nf] for s in state)
    naive_s = _median_time(lambda: _naive(model, x[:nf], maps[:nf], targets, sub, cfg), 1, sync)
    batched_rate = args.frames * levels / batched_s
    naive_rate = nf * levels / naive_s
    results = {
        'device': str(device), 'threads': args.threads, 'torch': torch.__version__,
        'cpu': platform.processor() or platform.machine(), 'lstm_hidden': args.lstm_hidden,
        'parameters': count_parameters(model), 'levels': levels, 'frames': args.frames,
        'batch_images': args.batch_images,
        'deletion_frame_levels_per_s_batched': batched_rate,
        'deletion_frame_levels_per_s_naive': naive_rate,
        'deletion_speedup_batched_vs_naive': batched_rate / naive_rate,
        'deletion_s_per_frame_batched': batched_s / args.frames,
        'explanation_s_per_frame': {},
    }
    cfg_both = DeletionConfig(step_percent=args.step_percent, insertion=True,
                              batch_images=args.batch_images)
    both_s = _median_time(lambda: deletion_curves(model, x, maps, targets, state, cfg_both),
                          args.repeats, sync)
    # Deletion and insertion of one fill: the curves every method pays on top of its map.
    results['deletion_insertion_s_per_frame'] = both_s / args.frames
    for method in ('attention', 'gradcam', 'random', 'random_superpixels', 'center'):
        compute_maps(method, model, x, state, hsv)                   # warm-up
        secs = _median_time(lambda m=method: compute_maps(m, model, x, state, hsv), args.repeats,
                            sync)
        results['explanation_s_per_frame'][method] = secs / args.frames
    nl = max(1, min(args.lime_frames, args.frames))
    lime_cfg = ExplainConfig(lime_samples=args.lime_samples)
    _, secs = compute_maps('lime', model, x[:nl], tuple(s[:nl] for s in state), hsv[:nl],
                           lime_cfg)
    results['explanation_s_per_frame']['lime'] = secs / nl
    results['lime_samples'] = args.lime_samples
    results['lime_hide'] = lime_cfg.lime_hide
    results['evaluation_s_per_frame_per_fill'] = {
        m: t + results['deletion_insertion_s_per_frame']
        for m, t in results['explanation_s_per_frame'].items()}
    return results
