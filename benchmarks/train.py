"""Training throughput (frames/s) and the share of each step spent waiting for data."""

import csv
import logging
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch

from signattn_driver.data.dataset import DatasetWriter
from signattn_driver.paths import config_path
from signattn_driver.training.config import PAPER_CONFIG, TINY_CONFIG
from signattn_driver.training.loop import load_run_config, train
from signattn_driver.vehicle import load_vehicle

# The sizes of the two shipped run configs (the one tiny config and the paper's).
SIZE_KEYS = ('lstm_hidden', 'attention_hidden', 'sequence_length', 'batch_size', 'episode_windows')


def _size(name: str) -> dict:
    """Return the model and batch sizes of config/<name> (train_tiny.yaml or train_paper.yaml)."""
    model_config, train_config = load_run_config(config_path(name), {})
    values = {**model_config.to_dict(), **train_config.to_dict()}
    return {k: values[k] for k in SIZE_KEYS}


def add_arguments(parser):
    """Options of `signattn benchmark train`."""
    parser.add_argument('--device', default='cpu', help="'cpu', 'cuda', 'auto'")
    parser.add_argument('--paper', action='store_true',
                        help='paper size (LSTM 1024, batch 16 x 20 frames) instead of tiny '
                        '(LSTM 64, batch 4 x 10)')
    parser.add_argument('--attention', default='sign', choices=('sign', 'soft', 'none'))
    parser.add_argument('--steps', type=int, default=None,
                        help='timed steps (default 20 tiny, 40 paper)')
    parser.add_argument('--warmup', type=int, default=5, help='untimed first steps')
    parser.add_argument('--threads', type=int, default=2, help='torch.set_num_threads')
    parser.add_argument('--num-workers', type=int, default=None,
                        help='DataLoader workers (default 2 tiny, 6 paper)')
    parser.add_argument('--batch-size', type=int, help='override the batch size')
    parser.add_argument('--no-amp', action='store_true', help='fp32 on CUDA')
    parser.add_argument('--data', help='time on this dataset instead of synthetic frames')


def _synthetic_set(root: Path, frames: int, seed: int = 0) -> Path:
    """Write noisy uint8 frames as 4 drives (their content does not change the speed)."""
    rng = np.random.default_rng(seed)
    writer = DatasetWriter(root, vehicle=load_vehicle('mkz'), smoothing_alpha=0.2)
    per_drive = frames // 4
    base = rng.integers(0, 256, (64, 80, 160, 3), dtype=np.uint8)
    for d in range(4):
        drive = writer.drive(f'drive{d}')
        for i in range(per_drive):
            drive.append(base[(i * 7 + d) % 64], 10**9 + i * 50_000_000,
                         float(np.sin(i / 20)), 10.0)
        writer.close_drive(drive)
    return writer.finalize()


def run(args) -> dict:
    """Train for warmup + steps on synthetic data; report frames/s and the data-wait share."""
    torch.set_num_threads(args.threads)
    size = _size(PAPER_CONFIG if args.paper else TINY_CONFIG)
    if args.batch_size:
        size['batch_size'] = args.batch_size
    steps = args.steps or (40 if args.paper else 20)
    workers = args.num_workers if args.num_workers is not None else (6 if args.paper else 2)
    logging.getLogger('signattn_driver.training').setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        # Two episodes per lane, so that every lane is busy at every step.
        frames = 2 * size['batch_size'] * size['sequence_length'] * size['episode_windows']
        data = args.data or _synthetic_set(Path(tmp) / 'data', max(frames, 800))
        model_config, config = load_run_config(None, dict(
            size, attention=args.attention, device=args.device, num_workers=workers,
            max_steps=args.warmup + steps, log_every=1, val_every=10**9, val_fraction=0.0,
            amp=not args.no_amp))
        result = train(model_config, config, [data], Path(tmp) / 'run', progress=False)
        with open(result['run_dir'] / 'metrics.csv', newline='') as f:
            rows = [r for r in csv.DictReader(f) if r['phase'] == 'train']
    timed = rows[args.warmup:]
    frames = np.array([float(r['frames']) for r in timed])
    seconds = frames / np.array([float(r['frames_per_s']) for r in timed])
    waits = seconds * np.array([float(r['data_wait_share']) for r in timed])
    device = torch.device('cuda' if args.device in ('cuda', 'auto') and
                          torch.cuda.is_available() else args.device)
    out = {
        'device': str(device), 'threads': args.threads, 'num_workers': workers,
        'torch': str(torch.__version__), 'cpu': platform.processor() or platform.machine(),
        'config': {**model_config.to_dict(), 'batch_size': config.batch_size,
                   'sequence_length': config.sequence_length, 'amp': config.amp},
        'timed_steps': len(timed),
        'frames_per_step': config.batch_size * config.sequence_length,
        'frames_per_s': float(frames.sum() / seconds.sum()),
        'median_step_ms': float(np.median(seconds) * 1e3),
        # robust to other processes stealing the CPU for a few steps:
        'median_frames_per_s': float(np.median(frames / seconds)),
        'data_wait_share': float(waits.sum() / seconds.sum()),
        'median_data_wait_ms': float(np.median(waits) * 1e3),
    }
    if device.type == 'cuda':
        out['gpu'] = torch.cuda.get_device_name(device)
        out['peak_memory_gib'] = torch.cuda.max_memory_allocated(device) / 2**30
    return out
