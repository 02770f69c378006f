"""Comparisons of per-frame AUCs in an evaluation report: paired (headline) and Welch (paper).

Every method and checkpoint of a report is scored on the same frames, so differences are paired
per frame; `paired_comparisons` tests them with a batch-means t-test over contiguous stretches
of frames (signattn_driver.evaluation.statistics). Evaluated windows that touch in time on the
same drive form one run (`contiguous_runs`): their frames are neighbours, not independent
samples. `welch_tests` keeps the paper's unpaired eq. 16 test, for comparison with its numbers
only.
"""

import itertools

import numpy as np

from signattn_driver.evaluation.statistics import paired_batch_test, welch_t_test

# Per-frame AUCs compared pairwise (curve kind, AUC limit).
PAIRED_METRICS = (('deletion_change', 25), ('insertion_change', 25), ('deletion_change', 100),
                  ('insertion_change', 100), ('deletion', 25))
# Two frames of one drive are neighbours when their stamps differ by at most this many frame
# periods (the median stamp step inside the evaluated windows).
NEIGHBOUR_STEPS = 1.5


def contiguous_runs(frames: dict):
    """Time order and run ids of a report's frames, touching windows of one drive merged.

    Args:
        frames: report['frames'] with `run` (evaluated window of each frame, N; reports
            before issue 12 lack it) and, when present, `drive` and `stamp_ns` (N).

    Returns:
        (order, runs): order (N,) sorts the frames by drive and stamp; runs (N,) gives, in that
        order, the id of each contiguous run. Without drives or stamps: the windows as they
        are.
    """
    n = len(frames.get('run', frames.get('drive', [])))
    window = np.asarray(frames.get('run', np.zeros(n, np.int64)))
    if 'drive' not in frames or 'stamp_ns' not in frames or n < 2:
        return np.arange(n), window
    drives = np.unique(np.asarray(frames['drive']), return_inverse=True)[1]
    stamp = np.asarray(frames['stamp_ns'], np.int64)
    inside = (window[1:] == window[:-1]) & (drives[1:] == drives[:-1])
    steps = np.diff(stamp)[inside]
    steps = steps[steps > 0]
    if not len(steps):
        return np.arange(n), window
    order = np.lexsort((stamp, drives))
    gap = np.diff(stamp[order])
    new = (drives[order][1:] != drives[order][:-1]) | (gap > NEIGHBOUR_STEPS * np.median(steps))
    return order, np.r_[0, np.cumsum(new)]


def paired_on_frames(frames: dict, a, b) -> dict:
    """`paired_batch_test` of per-frame values a, b (N,) of a report's frames, in time order."""
    order, runs = contiguous_runs(frames)
    drives = len(set(frames.get('drive', []))) or None
    return {'drives': drives, **paired_batch_test(np.asarray(a, np.float64)[order],
                                                  np.asarray(b, np.float64)[order], runs)}


def paired_comparisons(report: dict, fills, methods) -> list:
    """Paired batch-means t-tests of per-frame AUCs on the same frames.

    Within each checkpoint: every pair of methods, for every fill. Across checkpoints: the same
    method and fill on every pair of checkpoints. `a - b` > 0 on deletion_change means a's
    ranking moves the output more (more faithful); on insertion_change, less. Each result
    carries the test's units (independent stretches of frames), df and effective sample size.
    """
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
            out.append({'metric': f'{kind}_auc_{lim}', 'fill': fill, 'a': f'{ca}/{ma}',
                        'b': f'{cb}/{mb}', **paired_on_frames(report['frames'], pa, pb)})
    return out


def welch_tests(report: dict) -> list:
    """Welch's t-tests (paper eq. 16, unpaired) on the paper's deletion AUC 0-25 % only.

    Kept to reproduce the paper's comparison; the frames are paired and dependent, so use
    `paired` (batch-means t-test) for conclusions.
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
