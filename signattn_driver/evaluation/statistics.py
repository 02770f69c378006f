"""Statistics for the reports: paired batch-means t-test, Wilcoxon, Welch (paper eq. 16).

Frames of one drive are dependent (lag-1 autocorrelation of per-frame AUCs about 0.5 at 0.75 s
spacing, more at 20 Hz), and every method is scored on the same frames. Methods are therefore
compared on per-frame paired differences d_i = a_i - b_i with a t-test on the means of
independent stretches of frames (`paired_batch_test`): with several contiguous runs (evaluated
windows, touching windows of one drive merged) each run is one unit; a single run is cut into
batches long enough that neighbouring batch means are nearly uncorrelated. The K unit means are
the data of a t-test with K - 1 degrees of freedom (Ibragimov & Mueller 2010; batch means in
the sense of simulation output analysis). No frames are resampled or joined; the confidence
interval is the dual of the test. Its false-positive rate on AR(1) nulls is measured by
`signattn benchmark statistics_size` (docs/experiments.md, "Statistics"). The Wilcoxon
signed-rank test on d is reported as a check (it assumes independent pairs). Welch's unpaired
t-test is kept only to reproduce the paper's comparison (eq. 16).
"""

import math

import numpy as np

# Largest tolerated correlation between neighbouring batch means (AR(1) approximation of d):
# 0.04 inflates the variance of the mean by about 8 %, which the size check keeps inside
# [0.03, 0.07] at alpha 0.05 for lag-1 correlations up to 0.8.
MAX_NEIGHBOUR_CORRELATION = 0.04
# Fewer batches than this leave too few degrees of freedom for a useful test; one run is still
# cut in two (t with 1 degree of freedom: valid, nearly powerless).
MIN_UNITS = 2


def welch_t_test(a, b) -> dict:
    """Welch's unequal-variance t-test between two samples (scipy.stats.ttest_ind).

    Args:
        a, b: 1-D samples (e.g. per-frame deletion AUCs of two methods); NaNs are dropped.

    Returns:
        dict with t (eq. 16), p (two-sided), df (Welch-Satterthwaite), n_a, n_b, mean_a,
        mean_b; t, p and df are NaN when either sample has fewer than two values.
    """
    from scipy import stats
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    out = {'n_a': int(len(a)), 'n_b': int(len(b)),
           'mean_a': float(a.mean()) if len(a) else math.nan,
           'mean_b': float(b.mean()) if len(b) else math.nan,
           't': math.nan, 'p': math.nan, 'df': math.nan}
    if len(a) < 2 or len(b) < 2:
        return out
    res = stats.ttest_ind(a, b, equal_var=False)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    denom = va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)
    out.update(t=float(res.statistic), p=float(res.pvalue),
               df=float((va + vb) ** 2 / denom) if denom > 0 else math.nan)
    return out


def summary(values) -> dict:
    """Mean, standard deviation, standard error and count of the finite values."""
    x = np.asarray(values, np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if not n:
        return {'mean': math.nan, 'std': math.nan, 'sem': math.nan, 'n': 0}
    std = float(x.std(ddof=1)) if n > 1 else 0.0
    return {'mean': float(x.mean()), 'std': std, 'sem': std / math.sqrt(n), 'n': n}


def lag1_correlation(d, runs=None) -> float:
    """Bias-corrected lag-1 autocorrelation of d, pooled over contiguous runs.

    Each run is centred on its own mean; lagged products never pair frames of two runs. The
    small-sample bias of the AR(1) estimate, about -(1 + 3 rho) / n per run, is added back
    (Kendall 1954), and the result is clipped to [0, 0.99].

    Args:
        d: (N,) values in time order.
        runs: (N,) run id of each frame (equal ids are contiguous); default one run.

    Returns:
        The corrected lag-1 correlation, or 0.0 when it is undefined (constant d, runs of one
        frame).
    """
    d = np.asarray(d, np.float64)
    runs = np.zeros(len(d), np.int64) if runs is None else np.asarray(runs)
    num = den = 0.0
    used = frames = 0
    for r in _run_slices(runs):
        x = d[r] - d[r].mean()
        if len(x) < 2:
            continue
        num += float((x[1:] * x[:-1]).sum())
        den += float((x * x).sum())
        used += 1
        frames += len(x)
    if den <= 0.0 or not frames:
        return 0.0
    rho = num / den
    rho += (1.0 + 3.0 * rho) * used / frames
    return float(min(0.99, max(0.0, rho)))


def batch_frames(rho: float, max_correlation: float = MAX_NEIGHBOUR_CORRELATION) -> int:
    """Shortest batch whose mean correlates at most `max_correlation` with its neighbour's.

    For an AR(1) series with lag-1 correlation rho, two adjacent batches of L frames have
    cov(sums) = rho (1 - rho^L)^2 / (1 - rho)^2 and var(sum) = L (1 + rho) / (1 - rho)
    - 2 rho (1 - rho^L) / (1 - rho)^2 (in units of the frame variance).
    """
    if rho <= 0.0:
        return 1
    length = 1
    while True:
        g = rho * (1.0 - rho ** length) / (1.0 - rho) ** 2
        var = length * (1.0 + rho) / (1.0 - rho) - 2.0 * g
        if g * (1.0 - rho ** length) / var <= max_correlation or length >= 100000:
            return length
        length += 1


def batch_ids(runs, length: int) -> np.ndarray:
    """(N,) batch id of each frame: every run cut into max(1, n_run // length) near-equal parts.

    Batches are contiguous and never cross a run. When that gives fewer than `MIN_UNITS`
    batches, the longest run is cut into `MIN_UNITS` parts instead.
    """
    runs = np.asarray(runs)
    slices = _run_slices(runs)
    parts = [max(1, (r.stop - r.start) // max(1, length)) for r in slices]
    if sum(parts) < MIN_UNITS and slices:
        longest = int(np.argmax([r.stop - r.start for r in slices]))
        parts[longest] = min(slices[longest].stop - slices[longest].start,
                             parts[longest] + MIN_UNITS - sum(parts))
    ids = np.empty(len(runs), np.int64)
    k = 0
    for r, p in zip(slices, parts):
        for chunk in np.array_split(np.arange(r.start, r.stop), p):
            ids[chunk] = k
            k += 1
    return ids


def comparison_units(d, runs=None, max_correlation: float = MAX_NEIGHBOUR_CORRELATION):
    """Independent units of the paired test: the runs, or batches of one run.

    With several runs (windows, drives) each run is one unit: frames of a run share its drive
    and moment, so splitting it would count that shared part as independent evidence. A single
    run is cut into batches of `batch_frames(lag1_correlation(d))` frames (at least two).

    Args:
        d: (N,) paired differences in time order.
        runs: (N,) run id of each frame (equal ids contiguous); default one run.
        max_correlation: tolerated correlation of neighbouring batch means.

    Returns:
        (ids, length, rho): unit id of each frame (N,), the batch length in frames (0 when the
        units are the runs) and the corrected lag-1 correlation of d.
    """
    runs = np.zeros(len(d), np.int64) if runs is None else np.asarray(runs)
    rho = lag1_correlation(d, runs)
    slices = _run_slices(runs)
    if len(slices) >= MIN_UNITS:
        ids = np.empty(len(runs), np.int64)
        for k, r in enumerate(slices):
            ids[r] = k
        return ids, 0, rho
    length = batch_frames(rho, max_correlation)
    return batch_ids(runs, length), length, rho


def paired_batch_test(a, b, runs=None, confidence: float = 0.95,
                      max_correlation: float = MAX_NEIGHBOUR_CORRELATION) -> dict:
    """Mean paired difference a - b with a batch-means t-test, its CI and p-value.

    The differences d = a - b are grouped into K independent units (`comparison_units`): the runs
    when there are several (windows, drives), else contiguous batches of one run long enough
    that neighbouring batch means are nearly uncorrelated. The unit means m_k are the data of a
    one-sample t-test: estimate mean(m), SE = std(m) / sqrt(K), K - 1 degrees of freedom.
    Units weigh equally, so with unequal runs (windows of 20 and 4 frames) the estimate is not
    the frame mean; the equal weights keep the test valid when the units' variances differ
    (Ibragimov & Mueller 2010: the t-test is then conservative at 5 %), where frame weights
    rejected more often in the size check. The CI is
    mean +- t_{K-1, (1 + confidence) / 2} SE, so it excludes 0 exactly when p < 1 - confidence.

    Args:
        a, b: per-frame values of two methods on the same frames (N,), in time order; pairs
            with a NaN are dropped.
        runs: (N,) id of each contiguous run of frames (an evaluated window, or touching
            windows of one drive); frames of different runs are taken as independent.
            Default: one run.
        confidence: two-sided confidence level of the interval (0.95: alpha 0.05).
        max_correlation: tolerated correlation of neighbouring batch means.

    Returns:
        dict with n, mean_a, mean_b (frame means), frame_mean_diff (mean_a - mean_b),
        mean_diff (the test's estimate, mean of the unit means), ci_low, ci_high (around
        mean_diff), p (two-sided), t, df (K - 1), units (K, the independent units), runs
        (contiguous runs), unit_frames (batch length; 0 when the units are the runs), lag1
        (corrected lag-1 correlation of d), n_effective (var(d) / SE^2: the number of
        independent frames the SE is worth), test (its name) and the Wilcoxon
        signed-rank p (`wilcoxon_p`, independent-pairs check). Statistics are NaN when fewer
        than two frames remain.
    """
    from scipy import stats
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    runs = np.zeros(len(a), np.int64) if runs is None else np.asarray(runs)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b, runs = a[ok], b[ok], runs[ok]
    d = a - b
    n = len(d)
    out = {'test': 'paired batch-means t-test', 'n': int(n),
           'mean_a': float(a.mean()) if n else math.nan,
           'mean_b': float(b.mean()) if n else math.nan,
           'frame_mean_diff': float(d.mean()) if n else math.nan,
           'mean_diff': float(d.mean()) if n else math.nan, 'ci_low': math.nan,
           'ci_high': math.nan, 'p': math.nan, 't': math.nan, 'df': 0, 'units': 0,
           'runs': len(_run_slices(runs)), 'unit_frames': 0, 'lag1': math.nan,
           'n_effective': math.nan, 'wilcoxon_p': wilcoxon_p(d)}
    if n < 2:
        return out
    ids, length, rho = comparison_units(d, runs, max_correlation)
    k = int(ids.max()) + 1
    counts = np.bincount(ids, minlength=k).astype(np.float64)
    means = np.bincount(ids, weights=d, minlength=k) / counts      # (K,) unit means
    mean = float(means.mean())
    se = float(means.std(ddof=1)) / math.sqrt(k)
    crit = float(stats.t.ppf(0.5 + confidence / 2.0, k - 1))
    if se > 0.0:
        t = mean / se
        p = float(2.0 * stats.t.sf(abs(t), k - 1))
    else:
        t = math.copysign(math.inf, mean) if mean else 0.0
        p = 0.0 if mean else 1.0
    var_d = float(d.var(ddof=1))
    out.update(mean_diff=mean, ci_low=mean - crit * se, ci_high=mean + crit * se, p=p,
               t=float(t), df=k - 1, units=k, unit_frames=int(length), lag1=rho,
               n_effective=float(min(n, var_d / se ** 2)) if se > 0.0 else float(n))
    return out


def _run_slices(runs: np.ndarray) -> list:
    """Slices of the contiguous runs of equal ids in `runs` (N,)."""
    n = len(runs)
    if not n:
        return []
    starts = np.flatnonzero(np.r_[True, runs[1:] != runs[:-1]])
    stops = np.r_[starts[1:], n]
    return [slice(int(s), int(e)) for s, e in zip(starts, stops)]


def wilcoxon_p(d) -> float:
    """Two-sided Wilcoxon signed-rank p of paired differences d; NaN when undefined."""
    from scipy import stats
    d = np.asarray(d, np.float64)
    d = d[np.isfinite(d)]
    if len(d) < 2 or not np.any(d != 0):
        return math.nan
    return float(stats.wilcoxon(d).pvalue)
