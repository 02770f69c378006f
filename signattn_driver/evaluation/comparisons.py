"""Comparisons of per-frame AUCs in an evaluation report: paired (headline) and Welch (paper).

Every method and checkpoint of a report is scored on the same frames, so differences are paired
per frame; `paired_comparisons` tests them with a block bootstrap over contiguous frames
(signattn_driver.evaluation.statistics). `welch_tests` keeps the paper's unpaired eq. 16 test,
for comparison with its numbers only.
"""

import itertools

from signattn_driver.evaluation.statistics import paired_block_bootstrap, welch_t_test

# Per-frame AUCs compared pairwise (curve kind, AUC limit).
PAIRED_METRICS = (('deletion_change', 25), ('insertion_change', 25), ('deletion_change', 100),
                  ('insertion_change', 100), ('deletion', 25))


def paired_comparisons(report: dict, fills, methods, samples: int, seed: int) -> list:
    """Paired block-bootstrap comparisons of per-frame AUCs on the same frames.

    Within each checkpoint: every pair of methods, for every fill. Across checkpoints: the same
    method and fill on every pair of checkpoints. `a - b` > 0 on deletion_change means a's
    ranking moves the output more (more faithful); on insertion_change, less.
    """
    groups = report['frames']['run']
    ckpts = report['checkpoints']
    cases = []
    for c, e in ckpts.items():
        for ma, mb in itertools.combinations(list(e['methods']), 2):
            cases += [((c, ma), (c, mb), f) for f in fills]
    for ca, cb in itertools.combinations(list(ckpts), 2):
        for m in methods:
            cases += [((ca, m), (cb, m), f) for f in fills]
    out = []
    for (ca, ma), (cb, mb), fill in cases:
        for kind, lim in PAIRED_METRICS:
            key = f'auc_{lim}_deg_pct_per_frame'
            pa = ckpts[ca]['methods'][ma]['fills'][fill].get(kind, {}).get(key)
            pb = ckpts[cb]['methods'][mb]['fills'][fill].get(kind, {}).get(key)
            if pa is None or pb is None:
                continue
            res = paired_block_bootstrap(pa, pb, groups, samples=samples, seed=seed)
            out.append({'metric': f'{kind}_auc_{lim}', 'fill': fill, 'a': f'{ca}/{ma}',
                        'b': f'{cb}/{mb}', **res})
    return out


def welch_tests(report: dict) -> list:
    """Welch's t-tests (paper eq. 16, unpaired) on the paper's deletion AUC 0-25 % only.

    Kept to reproduce the paper's comparison; the frames are paired and dependent, so use
    `paired` (block bootstrap) for conclusions.
    """
    entries = [(c, m) for c, e in report['checkpoints'].items() for m in e['methods']]
    tests = []
    for metric in ('deletion',):
        for lim in (25.0,):
            key = f'auc_{int(lim)}_deg_pct_per_frame'
            for a, b in itertools.combinations(entries, 2):
                pa = report['checkpoints'][a[0]]['methods'][a[1]].get(metric, {}).get(key)
                pb = report['checkpoints'][b[0]]['methods'][b[1]].get(metric, {}).get(key)
                if pa is None or pb is None:
                    continue
                res = welch_t_test(pa, pb)
                tests.append({'metric': f'{metric}_auc_{int(lim)}', 'a': f'{a[0]}/{a[1]}',
                              'b': f'{b[0]}/{b[1]}', 'test': 'welch, unpaired (paper eq. 16)',
                              **res})
    return tests
