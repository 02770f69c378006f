"""Rerun the paired comparisons of saved evaluation reports with the current paired test.

    python benchmarks/rerun_paired.py docs/results/experiments/eval_*/report.json \
        --write --out docs/results/experiments/paired_rerun.json

Reports of `signattn evaluate` keep every per-frame AUC, so their comparisons can be recomputed
without the models. For each report: all paired comparisons (`evaluation.comparisons`), next to
the p and CI the report held before (the moving-block bootstrap) where it has them. `--write`
replaces the report's `paired` list and rewrites its report.md. Reports from before issue 12
(no fills, Welch tests only) get paired tests of the paper's deletion AUC 0-25 % between every
two maps, with their Welch p alongside; they are not rewritten.
"""

import argparse
import itertools
import json
from pathlib import Path
import sys

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from signattn_driver.evaluation.comparisons import paired_comparisons, paired_on_frames  # noqa
from signattn_driver.evaluation.report import markdown  # noqa: E402

KEEP = ('metric', 'fill', 'a', 'b', 'n', 'drives', 'runs', 'units', 'df', 'n_effective',
        'lag1', 'mean_a', 'mean_b', 'mean_diff', 'ci_low', 'ci_high', 'p', 'wilcoxon_p')


def _key(t: dict) -> tuple:
    return t.get('metric'), t.get('fill'), t['a'], t['b']


def rerun(path: Path, write: bool) -> dict:
    """New paired comparisons of one report (with the stored ones for contrast)."""
    report = json.loads(path.read_text())
    first = next(iter(report['checkpoints'].values()))
    if 'fills' in next(iter(first['methods'].values())):
        old = {_key(t): t for t in report.get('paired', [])}
        new = paired_comparisons(report, report['config']['fills'], report['config']['methods'])
        rows = []
        for t in new:
            o = old.get(_key(t), {})
            rows.append({**{k: t.get(k) for k in KEEP}, 'previous_p': o.get('p'),
                         'previous_ci': [o.get('ci_low'), o.get('ci_high')] if o else None})
        if write:
            report['paired'] = new
            path.write_text(json.dumps(report, indent=1))
            (path.parent / 'report.md').write_text(markdown(report))
        return {'report': str(path), 'format': 'issue 12', 'rewritten': write, 'paired': rows}
    welch = {(t['a'], t['b']): t['p'] for t in report.get('tests', [])
             if t.get('metric', 'deletion_auc_25') == 'deletion_auc_25'}
    maps = [(c, m) for c, e in report['checkpoints'].items() for m in e['methods']]
    rows = []
    for (ca, ma), (cb, mb) in itertools.combinations(maps, 2):
        pa = report['checkpoints'][ca]['methods'][ma]['deletion']['auc_25_deg_pct_per_frame']
        pb = report['checkpoints'][cb]['methods'][mb]['deletion']['auc_25_deg_pct_per_frame']
        a, b = f'{ca}/{ma}', f'{cb}/{mb}'
        t = {'metric': 'deletion_auc_25', 'fill': None, 'a': a, 'b': b,
             **paired_on_frames(report['frames'], pa, pb)}
        rows.append({**{k: t.get(k) for k in KEEP}, 'welch_p': welch.get((a, b))})
    return {'report': str(path), 'format': 'before issue 12', 'rewritten': False,
            'paired': rows}


def main(argv=None) -> int:
    """Parse the arguments, rerun every report, print or write the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('reports', nargs='+', type=Path, help='report.json files')
    parser.add_argument('--write', action='store_true',
                        help='replace `paired` in issue-12 reports and rewrite report.md')
    parser.add_argument('--out', type=Path, help='write the summary JSON here')
    args = parser.parse_args(argv)
    summary = {'test': 'paired batch-means t-test (signattn_driver.evaluation.statistics)',
               'reports': [rerun(p, args.write) for p in args.reports]}
    text = json.dumps(summary, indent=1)
    if args.out:
        args.out.write_text(text + '\n')
    else:
        print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
