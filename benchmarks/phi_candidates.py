"""Collect fine-tune candidates into one JSON and a markdown table (not installed).

    python3 benchmarks/phi_candidates.py --runs OUT_A/results.json OUT_B/results.json \\
        --heldout HELDOUT.json --val VAL.json --baseline config/models/sim_mean_field.pt \\
        --out docs/results/phi/position_candidates.json

--runs are the OUT/results.json files of benchmarks/phi_finetune.py (validation scores);
--heldout are `benchmarks/phi_study.py agreement` JSONs on the held-out drives holding the
baseline and the chosen runs' last.pt; --val the same for the baseline on the validation
drives (phi_finetune scores only the runs). Every run is judged against the goals of issue 18
part 5: Spearman(alpha, |phi|) >= 0.9, ratio top 10 % >= 0.9, alpha's modal share at most
|phi|'s + 0.1, MAE at most 5 % above the baseline's on the same frames. The table goes to
stdout.
"""

import argparse
import json
from pathlib import Path
import sys

GOALS = {'spearman': 0.9, 'ratio_top10': 0.9, 'modal_margin': 0.1, 'mae_ratio': 1.05}
_SCORES = ('mae_u_per_m', 'mae_steering_deg', 'alpha_vs_phi', 'alpha_vs_phi_uniform',
           'effective_cells')


def _scores(entry: dict) -> dict:
    return {k: entry[k] for k in _SCORES if k in entry}


def goals_met(scores: dict, baseline: dict) -> dict:
    """Which goals one split's scores meet against the baseline's scores on the same frames."""
    a = scores['alpha_vs_phi']
    return {'spearman': a['spearman'] >= GOALS['spearman'],
            'ratio_top10': a['ratio_top10'] >= GOALS['ratio_top10'],
            'modal_share': a['modal_share'] <= a['phi_modal_share'] + GOALS['modal_margin'],
            'mae': scores['mae_steering_deg']
            <= GOALS['mae_ratio'] * baseline['mae_steering_deg']}


def _agreement(paths: list) -> dict:
    """Merge phi_study agreement JSONs: their commands and all their checkpoints."""
    merged = {'command': [], 'data': None, 'checkpoints': {}}
    for path in paths or ():
        result = json.loads(Path(path).read_text())
        merged['command'].append(result['command'])
        merged['data'] = result['data']
        merged['checkpoints'].update(result['checkpoints'])
    return merged


def collect(run_files: list, heldout_files: list, val_files: list, baseline: str) -> dict:
    """Merge validation runs and held-out scores; judge each split against the goals."""
    heldout, val = _agreement(heldout_files), _agreement(val_files)
    held = heldout['checkpoints']
    out = {'goals': GOALS, 'heldout_commands': heldout['command'],
           'heldout_data': heldout['data'], 'val_baseline_commands': val['command'],
           'baseline_checkpoint': baseline, 'baseline': {}, 'runs': {}}
    for split, scores in (('heldout', held), ('val', val['checkpoints'])):
        if baseline in scores:
            out['baseline'][split] = _scores(scores[baseline])
    for path in run_files:
        results = json.loads(Path(path).read_text())
        out.setdefault('machine', results['machine'])
        out.setdefault('val_data', results['score_data'])
        for key, run in results['runs'].items():
            entry = {k: run[k] for k in ('overrides', 'seed', 'steps', 'train_minutes',
                                         'checkpoint')}
            entry['val'] = _scores(run)
            if run['checkpoint'] in held:
                entry['heldout'] = _scores(held[run['checkpoint']])
            for split in ('val', 'heldout'):
                if split in entry and split in out['baseline']:
                    entry[f'{split}_goals'] = goals_met(entry[split], out['baseline'][split])
            out['runs'][key] = entry
    return out


def _row(name: str, entry: dict) -> str:
    minutes = entry.get('train_minutes')
    cells = [name, str(entry.get('steps', '-')), '-' if minutes is None else f'{minutes:.0f}']
    for split in ('val', 'heldout'):
        s = entry.get(split)
        if s is None:
            cells += ['-'] * 5
            continue
        a, eff = s['alpha_vs_phi'], s['effective_cells']
        cells += [f"{a['spearman']:.2f}", f"{a['ratio_top10']:.2f}",
                  f"{a['modal_share']:.2f} / {a['phi_modal_share']:.2f}",
                  f"{eff['alpha']:.0f} / {eff['phi']:.0f}", f"{s['mae_steering_deg']:.2f}"]
    return '| ' + ' | '.join(cells) + ' |'


def table(result: dict) -> str:
    """Markdown table: budget, then validation and held-out agreement and MAE per run."""
    head = ('| run | steps | min | val: Spearman | ratio top 10 % '
            '| modal share alpha / \\|phi\\| | effective cells alpha / \\|phi\\| | MAE [deg] '
            '| held-out: Spearman | ratio top 10 % | modal share | effective cells | MAE [deg] |')
    lines = [head, '|' + '---|' * 13, _row('baseline', result['baseline'])]
    lines += [_row(k, v) for k, v in result['runs'].items()]
    return '\n'.join(lines)


def main(argv=None) -> int:
    """Write the collected JSON and print the table."""
    parser = argparse.ArgumentParser(prog='phi_candidates')
    parser.add_argument('--runs', nargs='+', required=True, help='phi_finetune results.json')
    parser.add_argument('--heldout', nargs='+', help='phi_study agreement JSONs (held-out)')
    parser.add_argument('--val', nargs='+', help='phi_study agreement JSONs (validation)')
    parser.add_argument('--baseline', default='config/models/sim_mean_field.pt')
    parser.add_argument('--out', required=True, type=Path)
    args = parser.parse_args(argv)
    result = collect(args.runs, args.heldout, args.val, args.baseline)
    result['command'] = ' '.join(['python3 benchmarks/phi_candidates.py'] + list(
        argv if argv is not None else sys.argv[1:]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(table(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
