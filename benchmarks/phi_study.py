"""The contribution-map study behind docs/model.md and docs/experiments.md (not installed).

    python3 benchmarks/phi_study.py agreement --data DIR/dataset --checkpoint A.pt B.pt --out X.json
        (each checkpoint after the first: its steering error against the first's, paired over
        the same frames, `error_vs_first`)
    python3 benchmarks/phi_study.py diagnose  --data DIR/dataset --checkpoint A.pt --out X.json
    python3 benchmarks/phi_study.py reach     --data DIR/dataset --checkpoint A.pt B.pt --out X.json
    python3 benchmarks/phi_study.py prior     --data DIR/dataset --checkpoint A.pt B.pt --out X.json
    python3 benchmarks/phi_study.py memory    --data DIR/dataset --checkpoint A.pt B.pt --out X.json
    python3 benchmarks/phi_study.py swap      --data DIR/dataset --checkpoint A.pt B.pt --out X.json
    python3 benchmarks/phi_study.py ablate    --data DIR/dataset --checkpoint A.pt B.pt --out X.json

Every command reads the frames of one split (default 'val') of a dataset, runs each checkpoint
one frame at a time as the node does (signattn_driver.evaluation.contribution_study and
.alpha_probes), and writes one JSON with the machine named.
"""

import argparse
import json
import logging
import platform
from pathlib import Path
import sys
import time

import numpy as np
import torch

from signattn_driver import checkpoint
from signattn_driver.evaluation import alpha_probes as probes
from signattn_driver.evaluation import contribution_study as study
from signattn_driver.evaluation.contribution_agreement import summarize_agreement


def _machine() -> str:
    return f'{torch.get_num_threads()}-thread CPU ({platform.machine()}), torch {torch.__version__}'


def _load(path):
    model, ckpt = checkpoint.load_model(path, map_location='cpu')
    return model.eval(), ckpt


def position_prior(model, drives) -> dict:
    """Measure what position alone explains: |phi|'s mean share per cell, the per-cell bias.

    prior_vs_phi: the agreement with |phi| of one fixed map, |phi|'s mean share per cell over
    these same frames (in-sample: a strong reference for any map that ignores the frame);
    row_share: that share summed per row; position_bias: the model's per-cell attention bias,
    if it has one, and its correlation with the log of the mean share.
    """
    trace = study.trace_drives(model, drives, uniform_reference=False)
    phi = np.abs(trace['phi'])                                            # (N, 10, 20)
    mean_share = (phi / phi.sum((1, 2), keepdims=True)).mean(0)         # (10, 20)
    # ties broken by a tiny fixed jitter: one map for every frame, ranked as a map
    jitter = np.random.default_rng(0).uniform(0, 1e-12, mean_share.shape)
    prior = np.broadcast_to(mean_share + jitter, phi.shape)
    out = {'prior_vs_phi': summarize_agreement(prior, trace['phi']),
           'alpha_vs_phi': summarize_agreement(trace['alpha'], trace['phi']),
           'row_share': mean_share.sum(1).tolist()}
    bias = getattr(model.attention, 'position_bias', None)
    if bias is not None:
        p = bias.detach().view(10, 20).numpy()
        out['position_bias'] = {
            'min': float(p.min()), 'max': float(p.max()), 'row_mean': p.mean(1).tolist(),
            'corr_with_log_mean_share': float(np.corrcoef(p.ravel(),
                                                          np.log(mean_share.ravel()))[0, 1])}
    return out


def main(argv=None) -> int:
    """Run one study command and write its JSON."""
    parser = argparse.ArgumentParser(prog='phi_study')
    parser.add_argument('command', choices=('agreement', 'diagnose', 'reach', 'prior',
                                                'memory', 'swap', 'ablate'))
    parser.add_argument('--data', required=True, help='dataset folder (manifest.json)')
    parser.add_argument('--split', default='val')
    parser.add_argument('--checkpoint', nargs='+', required=True)
    parser.add_argument('--out', required=True, type=Path)
    parser.add_argument('--max-frames', type=int, help='stop after about N frames')
    parser.add_argument('--machine', default='2-core CPU', help='named in the JSON')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--follow-lane', action='store_true',
                        help='agreement, memory, swap, ablate: follow-lane on every frame '
                             'instead of the recorded route commands (command models only)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    drives = study.open_drives(args.data, args.split, max_frames=args.max_frames)
    result = {'command': ' '.join(['python3 benchmarks/phi_study.py'] + list(
        argv if argv is not None else sys.argv[1:])),
        'machine': args.machine, 'software': _machine(), 'data': args.data,
        'split': args.split, 'segments': len(drives),
        'frames': sum(len(d.inputs) for d in drives),
        'drives': sorted({d.drive for d in drives}), 'checkpoints': {}}
    first_trace = None
    for path in args.checkpoint:
        model, ckpt = _load(path)
        entry = {'sha256': ckpt.file_sha256, 'binarize': ckpt.config.binarize,
                 'attention': ckpt.config.attention,
                 'attention_score': ckpt.config.attention_score}
        if args.command == 'agreement':
            with_commands = bool(ckpt.config.num_commands) and not args.follow_lane
            recorded = any(d.route_command.any() for d in drives)   # any turn command at all
            entry['route_commands'] = 'recorded' if with_commands and recorded else 'follow-lane'
            trace = study.trace_drives(model, drives, commands=with_commands, saturation=True)
            entry.update(study.agreement_report(trace))
            if first_trace is None:
                first_trace = trace
            else:   # paired over the same frames, each segment one unit
                entry['error_vs_first'] = {'against': args.checkpoint[0],
                                           **study.paired_error(trace, first_trace)}
        elif args.command == 'prior':
            entry.update(position_prior(model, drives))
        elif args.command == 'ablate':
            entry.update(probes.alpha_ablation(model, drives, commands=not args.follow_lane))
        elif args.command == 'swap':
            entry.update(probes.score_swap(model, drives, commands=not args.follow_lane))
        elif args.command == 'memory':
            entry.update(probes.memory_view(model, drives, commands=not args.follow_lane))
        elif args.command == 'diagnose':
            entry.update(study.diagnose_attention(model, drives))
        else:
            entry.update(study.reach_of_frame(model, drives))
        result['checkpoints'][str(path)] = entry
        logging.info('%s done after %.0f s', path, time.perf_counter() - t0)
    result['seconds'] = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
