"""What reading the attention from the head costs per step (ModelConfig.attention_score).

One checkpoint's weights in two networks, `attention_score` 'learned' (the paper's score) and
'head' (log |phi at uniform attention|), stepped on the same preprocessed frames from the same
carried state, alternating step by step so that both see the same machine load. Medians and
their ratio; run it on a quiet machine for absolute figures.

    PYTHONPATH=. python3 benchmarks/attention_score_cost.py --checkpoint config/models/sim_route.pt \\
        --out docs/results/route/stage6/attention_score_cost_cpu.json
"""

import argparse
import dataclasses
import platform
import time

import numpy as np
import torch

from benchmarks.json_output import emit_json
from signattn_driver import checkpoint
from signattn_driver.model import SteeringNet


def _networks(path) -> dict:
    """The checkpoint's weights under each attention score, in eval mode."""
    ckpt = checkpoint.load(path)
    nets = {}
    for score in ('learned', 'head'):
        net = SteeringNet(dataclasses.replace(ckpt.config, attention_score=score))
        net.load_state_dict(ckpt.state_dict)
        nets[score] = net.eval()
    return nets


@torch.inference_mode()
def measure(path, steps: int, warmup: int, seed: int = 0) -> dict:
    """Median seconds of `SteeringNet.step` per score and the ratio head / learned."""
    nets = _networks(path)
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(16, 1, 3, 80, 160, generator=g) * 2 - 1
    states = {k: None for k in nets}
    times = {k: [] for k in nets}
    for i in range(warmup + steps):
        order = ('learned', 'head') if i % 2 else ('head', 'learned')
        for score in order:
            t0 = time.perf_counter()
            _, _, states[score] = nets[score].step(frames[i % len(frames)], states[score])
            if i >= warmup:
                times[score].append(time.perf_counter() - t0)
    median = {k: float(np.median(v)) for k, v in times.items()}
    return {'step_median_ms': {k: 1e3 * v for k, v in median.items()},
            'head_over_learned': median['head'] / median['learned'], 'steps': steps}


def main(argv=None) -> int:
    """Time both scores and print (and optionally write) the result."""
    parser = argparse.ArgumentParser(prog='attention_score_cost')
    parser.add_argument('--checkpoint', required=True)
    parser.add_argument('--steps', type=int, default=500)
    parser.add_argument('--warmup', type=int, default=20)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--machine', default='2-core CPU (shared)', help='named in the JSON')
    parser.add_argument('--out', help='write the result as JSON here')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {'checkpoint': args.checkpoint, 'machine': args.machine,
              'software': f'{args.threads}-thread CPU ({platform.machine()}), '
                          f'torch {torch.__version__}',
              **measure(args.checkpoint, args.steps, args.warmup)}
    emit_json(result, args.out)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
