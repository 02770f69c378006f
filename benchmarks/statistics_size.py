"""Size check of the paired comparisons: false-positive rate on AR(1) nulls, old vs new test.

Each case draws `--reps` null series d (paired differences with true mean 0) from a stationary
Gaussian AR(1) with lag-1 correlation rho, in one of three designs: one run of 60 frames, one of
600, and 4 independent windows of 15 (plus the 24/20/16 frames of the published comparisons),
and counts how often each test rejects at alpha = 0.05. A test holds its size when that rate
lies in [0.03, 0.07]. Power is the rejection rate with a true shift of half the frames' standard
deviation. The previous method (moving-block bootstrap with blocks that wrap inside a window,
percentile CI) is reimplemented here, for contrast only.
"""

import math
import platform
import time

import numpy as np

from signattn_driver.evaluation.statistics import MAX_NEIGHBOUR_CORRELATION, \
    paired_batch_test, comparison_units, wilcoxon_p

DESIGNS = {'one run of 60': [60], 'one run of 600': [600], '4 windows of 15': [15] * 4,
           'published windows 20/20/16/4': [20, 20, 16, 4],
           'published runs 24/20/16 (touching windows merged)': [24, 20, 16]}
RHOS = (0.5, 0.8)
SIZE_BAND = (0.03, 0.07)


def add_arguments(parser):
    """Options of `signattn benchmark statistics_size`."""
    parser.add_argument('--reps', type=int, default=2000, help='null series per case')
    parser.add_argument('--power-reps', type=int, default=500,
                        help='shifted series per case for the power of the batch tests')
    parser.add_argument('--bootstrap-samples', type=int, default=1000,
                        help='resamples of the previous block bootstrap (contrast)')
    parser.add_argument('--seed', type=int, default=0)


def ar1_runs(rng, reps: int, lengths, rho: float) -> np.ndarray:
    """(reps, sum(lengths)) stationary AR(1) series, independent between runs, unit variance."""
    out = []
    for n in lengths:
        e = rng.normal(size=(reps, n)) * math.sqrt(1.0 - rho ** 2)
        x = np.empty((reps, n))
        x[:, 0] = rng.normal(size=reps)
        for t in range(1, n):
            x[:, t] = rho * x[:, t - 1] + e[:, t]
        out.append(x)
    return np.concatenate(out, 1)


def _previous_block_length(d: np.ndarray) -> int:
    """The previous rule: first lag inside +-2/sqrt(n), at least n^(1/3), at most n/4."""
    n = len(d)
    x = d - d.mean()
    var = float((x * x).sum())
    cap = max(1, int(0.25 * n))
    lag = 1
    if var > 0:
        while lag < cap and float((x[:-lag] * x[lag:]).sum()) / var >= 2.0 / math.sqrt(n):
            lag += 1
    return int(min(cap, max(lag, round(n ** (1.0 / 3.0)))))


def previous_block_bootstrap_p(d: np.ndarray, runs: np.ndarray, samples: int, rng) -> float:
    """p of the previous moving-block bootstrap (blocks wrap from a run's end to its start)."""
    n = len(d)
    length = _previous_block_length(d)
    per = math.ceil(n / length)
    starts = np.flatnonzero(np.r_[True, runs[1:] != runs[:-1]])
    sizes = np.diff(np.r_[starts, n])
    first = np.repeat(starts, sizes)
    size = np.repeat(sizes, sizes)
    pos = rng.integers(0, n, size=samples * per)
    rel = (pos - first[pos])[:, None] + np.arange(length)[None]
    idx = (first[pos][:, None] + rel % size[pos][:, None]).reshape(samples, per * length)
    means = d[idx[:, :n]].mean(1)
    m = float(d.mean())
    return min(1.0, (1 + int(np.sum(np.abs(means - m) >= abs(m)))) / (samples + 1))


def newey_west_p(d: np.ndarray, runs: np.ndarray) -> float:
    """HAC t-test: Bartlett kernel, bandwidth floor(0.75 n^(1/3)) lags inside runs, t_{n-1}."""
    from scipy import stats
    n = len(d)
    x = d - d.mean()
    lags = int(math.floor(0.75 * n ** (1.0 / 3.0)))
    omega = float((x * x).sum())
    for lag in range(1, lags + 1):
        same = runs[lag:] == runs[:-lag]
        omega += 2.0 * (1.0 - lag / (lags + 1)) * float((x[lag:] * x[:-lag])[same].sum())
    se = math.sqrt(max(omega, 1e-300)) / n
    return float(2.0 * stats.t.sf(abs(d.mean()) / se, n - 1))


def frame_weighted_batch_p(d: np.ndarray, runs: np.ndarray) -> float:
    """The same units with frame weights (CR2 cluster-robust SE, K - 1 df), for contrast."""
    from scipy import stats
    ids = comparison_units(d, runs)[0]
    k = int(ids.max()) + 1
    counts = np.bincount(ids, minlength=k).astype(np.float64)
    means = np.bincount(ids, weights=d, minlength=k) / counts
    w = counts / len(d)
    mean = float((w * means).sum())
    se = math.sqrt(float((w * w * (means - mean) ** 2 / (1.0 - w)).sum()))
    return float(2.0 * stats.t.sf(abs(mean) / se, k - 1)) if se > 0 else float(mean == 0)


def fixed_batches_p(d: np.ndarray, count: int) -> float:
    """t-test on `count` equal contiguous batches of one run, whatever its autocorrelation."""
    from scipy import stats
    means = np.array([c.mean() for c in np.array_split(d, count)])
    se = means.std(ddof=1) / math.sqrt(count)
    return float(2.0 * stats.t.sf(abs(means.mean()) / se, count - 1))


def run(args) -> dict:
    """Rejection rates at alpha 0.05 of every test on every case (JSON for the docs)."""
    rng = np.random.default_rng(args.seed)
    batch = {f'batch-means t, max neighbour corr {c}': c
             for c in sorted({0.03, MAX_NEIGHBOUR_CORRELATION, 0.05})}
    chosen = f'batch-means t, max neighbour corr {MAX_NEIGHBOUR_CORRELATION}'
    cases = []
    t0 = time.perf_counter()
    for rho in RHOS:
        for design, lengths in DESIGNS.items():
            runs = np.repeat(np.arange(len(lengths)), lengths)
            null = ar1_runs(rng, args.reps, lengths, rho)
            shifted = ar1_runs(rng, args.power_reps, lengths, rho) + 0.5
            rates = {}
            # With several runs the units are the runs, whatever the tolerated correlation.
            variants = batch if len(lengths) == 1 else {chosen: MAX_NEIGHBOUR_CORRELATION}
            for name, c in variants.items():
                res = [paired_batch_test(x, np.zeros_like(x), runs, max_correlation=c)
                       for x in null]
                p = np.array([r['p'] for r in res])
                dual = all((r['p'] < 0.05) == (r['ci_low'] > 0 or r['ci_high'] < 0)
                           for r in res)
                pw = np.array([paired_batch_test(x, np.zeros_like(x), runs,
                                                 max_correlation=c)['p'] for x in shifted])
                rates[name] = {'fpr': float(np.mean(p < 0.05)),
                               'power_at_half_sd': float(np.mean(pw < 0.05)),
                               'median_units': float(np.median([r['units'] for r in res])),
                               'median_n_effective': float(np.median(
                                   [r['n_effective'] for r in res])),
                               'ci_dual_of_p': bool(dual)}
            rates['batch-means t, frame-weighted (CR2)'] = {'fpr': float(np.mean(
                [frame_weighted_batch_p(x, runs) < 0.05 for x in null]))}
            if len(lengths) == 1:
                for count in (2, 4, 8):
                    rates[f'fixed {count} batches, t'] = {'fpr': float(np.mean(
                        [fixed_batches_p(x, count) < 0.05 for x in null]))}
            rates['previous: moving-block bootstrap'] = {'fpr': float(np.mean(
                [previous_block_bootstrap_p(x, runs, args.bootstrap_samples, rng) < 0.05
                 for x in null]))}
            rates['Newey-West HAC t (t_{n-1})'] = {'fpr': float(np.mean(
                [newey_west_p(x, runs) < 0.05 for x in null]))}
            rates['Wilcoxon signed-rank (independent pairs)'] = {'fpr': float(np.mean(
                [wilcoxon_p(x) < 0.05 for x in null]))}
            for r in rates.values():
                r['holds_size'] = SIZE_BAND[0] <= r['fpr'] <= SIZE_BAND[1]
            cases.append({'rho': rho, 'design': design, 'frames': int(sum(lengths)),
                          'runs': len(lengths), 'tests': rates})
    return {'benchmark': 'statistics_size', 'machine': '2-core CPU',
            'platform': platform.platform(), 'python': platform.python_version(),
            'reps': args.reps, 'power_reps': args.power_reps,
            'bootstrap_samples': args.bootstrap_samples, 'seed': args.seed, 'alpha': 0.05,
            'size_band': list(SIZE_BAND), 'mc_standard_error_at_0.05': math.sqrt(
                0.05 * 0.95 / args.reps),
            'shift_for_power': 'half the frames\' standard deviation',
            'chosen': chosen, 'chosen_holds_size_everywhere': all(
                c['tests'][chosen]['holds_size'] for c in cases
                if not c['design'].startswith('published runs')),
            'seconds': time.perf_counter() - t0, 'cases': cases}
