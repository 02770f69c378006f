"""Fine-tune candidates for a readable attention map and score them against phi (not installed).

    python3 benchmarks/phi_finetune.py --data TRAIN/dataset --score VAL/dataset \\
        --config config/train_align.yaml --out runs/align --seeds 0 \\
        --candidate control:align_weight=0 --candidate align0.1:align_weight=0.1 \\
        --candidate entropy:entropy_weight=-0.01,align_weight=0

Each candidate is the --config recipe (init_checkpoint included) with its key=value overrides;
a negative entropy_weight (maximise the attention's entropy) is an experiment-only setting that
`signattn train` refuses, so it is set here after the config is checked. Every run's last.pt is
scored on every frame of --score (split --split): alpha against |phi| and MAE
(signattn_driver.evaluation.contribution_study); OUT/results.json collects them with the step
budget and wall time.
"""

import argparse
import json
import logging
from pathlib import Path
import sys
import time

import torch
import yaml

from signattn_driver import checkpoint
from signattn_driver.evaluation import contribution_study as study
from signattn_driver.training.loop import load_run_config, train


def _overrides(text: str) -> dict:
    """Parse 'key=value,key=value' with YAML scalars."""
    out = {}
    for item in filter(None, text.split(',')):
        key, value = item.split('=', 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def main(argv=None) -> int:
    """Train each candidate for each seed, score it, write OUT/results.json."""
    parser = argparse.ArgumentParser(prog='phi_finetune')
    parser.add_argument('--data', nargs='+', required=True)
    parser.add_argument('--score', required=True, help='dataset scored after training')
    parser.add_argument('--split', default='val')
    parser.add_argument('--config', required=True, type=Path)
    parser.add_argument('--out', required=True, type=Path)
    parser.add_argument('--seeds', default='0')
    parser.add_argument('--candidate', action='append', required=True,
                        help='NAME:key=value,key=value')
    parser.add_argument('--machine', default='2-core CPU')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    torch.set_num_threads(1)
    drives = study.open_drives(args.score, args.split)
    results_path = args.out / 'results.json'
    results = json.loads(results_path.read_text()) if results_path.exists() else {
        'machine': args.machine, 'config': str(args.config), 'score_data': args.score,
        'runs': {}}
    for spec in args.candidate:
        name, _, text = spec.partition(':')
        overrides = _overrides(text)
        for seed in (int(s) for s in args.seeds.split(',')):
            key = f'{name}/seed{seed}'
            if key in results['runs']:
                continue
            entropy = overrides.get('entropy_weight', 0.0)
            checked = {**overrides, 'seed': seed,
                       'entropy_weight': max(0.0, entropy)}
            model_config, train_config = load_run_config(args.config, checked)
            train_config.entropy_weight = float(entropy)   # < 0: experiment only (docstring)
            t0 = time.perf_counter()
            run = train(model_config, train_config, args.data, args.out / name / f'seed{seed}',
                        progress=False)
            minutes = (time.perf_counter() - t0) / 60
            model, _ = checkpoint.load_model(run['last_checkpoint'], map_location='cpu')
            report = study.agreement_report(study.trace_drives(model.eval(), drives))
            report.pop('per_drive')
            results['runs'][key] = {'overrides': overrides, 'seed': seed,
                                    'steps': run['steps'], 'train_minutes': minutes,
                                    'checkpoint': str(run['last_checkpoint']), **report}
            results_path.parent.mkdir(parents=True, exist_ok=True)
            results_path.write_text(json.dumps(results, indent=1))
            a = report['alpha_vs_phi']
            logging.info('%s: %.1f min, spearman %.3f ratio10 %.3f modal %s %.2f (phi %.2f) '
                         'mae %.3f deg', key, minutes, a['spearman'], a['ratio_top10'],
                         a['modal_cell'], a['modal_share'], a['phi_modal_share'],
                         report['mae_steering_deg'])
    return 0


if __name__ == '__main__':
    sys.exit(main())
