"""Judge route-model candidates against a reference on the validation drives (issue 18, part 5).

Reads `phi_study.py agreement` reports. Each `--route` or `--follow-lane` flag names one set of
drives: one or more reports of the same data (rounds scored apart), merged by checkpoint. For
every checkpoint found in all sets, against the reference on the same frames:

- route: the MAE of each `--route` set and their plain mean (the pooled route MAE of
  docs/results/route/stage9/RULE.md), and its ratio to the reference's;
- follow-lane: the frame-weighted MAE over all `--follow-lane` sets and its ratio, and a paired
  comparison over the drives of those sets (each drive's MAE difference one unit:
  `paired_batch_test` with one run per drive, and `null_size`, the share of sign-flipped copies
  of the differences it rejects at 0.05);
- agreement: the lowest Spearman(alpha, |phi|) and top-10 % ratio over all sets, and the
  largest excess of alpha's modal-cell share over |phi|'s;
- the gate (each ratio <= --margin, Spearman and ratio >= their bars, modal excess <= its bar)
  and the score that ranks gated runs: the mean of the two MAE ratios.

    PYTHONPATH=. python3 benchmarks/route_gate.py --reference outputs/s12/stage5.pt \\
        --route docs/results/route/stage12/agreement_val_sim_default_ref.json \\
                docs/results/route/stage10/agreement_val_sim_default_r3.json \\
        --route docs/results/route/stage12/agreement_val_sim_junctions_ref.json \\
                docs/results/route/stage10/agreement_val_sim_junctions_r3.json \\
        --follow-lane docs/results/route/stage12/agreement_phi_val_r1.json \\
        --follow-lane docs/results/route/stage12/agreement_phi_val2_r1.json \\
        --out docs/results/route/stage12/gate_r1.json
"""

import argparse
import json
import sys

import numpy as np

from benchmarks.json_output import emit_json
from benchmarks.pool_drive_sim import null_size
from signattn_driver.evaluation.statistics import paired_batch_test

SAME = 1e-9    # a checkpoint scored in two reports of one set must agree this closely (deg)


def merge_set(paths: list) -> dict:
    """Merge the reports of one set: {'data', 'frames', 'drives', 'checkpoints'}.

    Raises:
        ValueError: the reports are of different data, or disagree about a checkpoint.
    """
    merged = None
    for path in paths:
        with open(path) as f:
            report = json.load(f)
        if merged is None:
            merged = {'data': report['data'], 'frames': report['frames'],
                      'drives': report['drives'], 'sources': [], 'checkpoints': {}}
        elif (report['data'], report['frames']) != (merged['data'], merged['frames']):
            raise ValueError(f'{path}: data {report["data"]} ({report["frames"]} frames), '
                             f'not {merged["data"]} ({merged["frames"]})')
        merged['sources'].append(str(path))
        for name, row in report['checkpoints'].items():
            known = merged['checkpoints'].get(name)
            if known and abs(known['mae_steering_deg'] - row['mae_steering_deg']) > SAME:
                raise ValueError(f'{path}: {name} scores {row["mae_steering_deg"]} here and '
                                 f'{known["mae_steering_deg"]} in another report of this data')
            merged['checkpoints'].setdefault(name, row)
    return merged


def drive_maes(sets: list, name: str) -> dict | None:
    """{set/drive: MAE (deg)} of a checkpoint over the sets' drives; None if a report lacks it."""
    out = {}
    for s in sets:
        per = s['checkpoints'][name].get('per_drive', {})
        for drive in s['drives']:
            if 'mae_steering_deg' not in per.get(drive, {}):
                return None
            out[f'{s["data"]}/{drive}'] = per[drive]['mae_steering_deg']
    return out


def judge(route: list, follow: list, reference: str, margin: float, spearman: float,
          ratio: float, modal_excess: float, candidates=None) -> dict:
    """Return {'reference': figures, 'checkpoints': {name: figures and gate}, 'ranking'}."""
    every = route + follow
    names = [n for n in every[0]['checkpoints'] if all(n in s['checkpoints'] for s in every)]
    if reference not in names:
        raise ValueError(f'the reference {reference} is not scored on every set')

    def figures(name):
        rows = [s['checkpoints'][name] for s in every]
        route_mae = [s['checkpoints'][name]['mae_steering_deg'] for s in route]
        frames = np.array([s['frames'] for s in follow], np.float64)
        follow_mae = np.array([s['checkpoints'][name]['mae_steering_deg'] for s in follow])
        return {'route_mae_deg': route_mae, 'route_pooled_deg': float(np.mean(route_mae)),
                'follow_lane_mae_deg': follow_mae.tolist(),
                'follow_lane_pooled_deg': float((follow_mae * frames).sum() / frames.sum()),
                'spearman_min': min(r['alpha_vs_phi']['spearman'] for r in rows),
                'ratio_top10_min': min(r['alpha_vs_phi']['ratio_top10'] for r in rows),
                'modal_excess_max': max(r['alpha_vs_phi']['modal_share']
                                        - r['alpha_vs_phi']['phi_modal_share'] for r in rows)}

    ref = figures(reference)
    ref_drives = drive_maes(follow, reference)
    out = {}
    for name in names:
        if name == reference or (candidates and name not in candidates):
            continue
        row = figures(name)
        row['route_ratio'] = row['route_pooled_deg'] / ref['route_pooled_deg']
        row['follow_lane_ratio'] = row['follow_lane_pooled_deg'] / ref['follow_lane_pooled_deg']
        row['score'] = (row['route_ratio'] + row['follow_lane_ratio']) / 2
        row['gate'] = {'route': row['route_ratio'] <= margin,
                       'follow_lane': row['follow_lane_ratio'] <= margin,
                       'spearman': row['spearman_min'] >= spearman,
                       'ratio_top10': row['ratio_top10_min'] >= ratio,
                       'modal_excess': row['modal_excess_max'] <= modal_excess}
        row['passes'] = all(row['gate'].values())
        mine = drive_maes(follow, name)
        if mine is not None and ref_drives is not None:
            drives = sorted(ref_drives)
            a = [mine[d] for d in drives]
            b = [ref_drives[d] for d in drives]
            test = paired_batch_test(a, b, runs=range(len(drives)))
            row['follow_lane_paired'] = {
                **{k: test[k] for k in ('mean_diff', 'ci_low', 'ci_high', 'p', 'units', 'test')},
                'null_size': null_size(np.subtract(a, b))}
        out[name] = row
    ranking = sorted((n for n, r in out.items() if r['passes']), key=lambda n: out[n]['score'])
    return {'reference': {'name': reference, **ref}, 'checkpoints': out, 'ranking': ranking}


def main(argv=None) -> int:
    """Read the reports, judge every checkpoint and print (and write) the JSON."""
    p = argparse.ArgumentParser(prog='route_gate', description=__doc__.splitlines()[0])
    p.add_argument('--reference', required=True, help='the checkpoint to compare with')
    p.add_argument('--route', nargs='+', action='append', required=True, metavar='JSON',
                   help='one route set (reports with commands), repeatable')
    p.add_argument('--follow-lane', nargs='+', action='append', required=True, metavar='JSON',
                   help='one follow-lane set, repeatable; its frames weigh in the pooled MAE')
    p.add_argument('--candidates', nargs='+', help='judge only these checkpoints')
    p.add_argument('--margin', type=float, default=1.05, help='largest MAE ratio (1.05)')
    p.add_argument('--spearman', type=float, default=0.9, help='lowest Spearman (0.9)')
    p.add_argument('--ratio', type=float, default=0.9, help='lowest top-10 %% ratio (0.9)')
    p.add_argument('--modal-excess', type=float, default=0.1,
                   help="largest excess of alpha's modal share over |phi|'s (0.1)")
    p.add_argument('--out', help='also write the JSON here')
    args = p.parse_args(argv)
    try:
        route = [merge_set(paths) for paths in args.route]
        follow = [merge_set(paths) for paths in args.follow_lane]
        result = judge(route, follow, args.reference, args.margin, args.spearman, args.ratio,
                       args.modal_excess, args.candidates)
    except (OSError, KeyError, ValueError) as err:
        print(f'route_gate: {err}', file=sys.stderr)
        return 2
    result = {'command': ' '.join(['python3 benchmarks/route_gate.py'] + list(
        argv if argv is not None else sys.argv[1:])),
        'sets': {'route': [{k: s[k] for k in ('data', 'frames', 'sources')} for s in route],
                 'follow_lane': [{k: s[k] for k in ('data', 'frames', 'sources')}
                                 for s in follow]},
        **result}
    emit_json(result, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
