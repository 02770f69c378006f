"""Statistics for the reports: paired block bootstrap, Wilcoxon, Welch (paper eq. 16), summaries.

Frames of one drive are dependent (lag-1 autocorrelation of per-frame AUCs about 0.5 at 0.75 s
spacing, more at 20 Hz), and every method is scored on the same frames. Methods are therefore
compared on per-frame paired differences d_i = a_i - b_i with a moving-block bootstrap that
resamples contiguous blocks of frames within each contiguous run (`paired_block_bootstrap`);
the Wilcoxon signed-rank test on d is reported as a check (it assumes independent pairs).
Welch's unpaired t-test is kept only to reproduce the paper's comparison (eq. 16).
"""

import math

import numpy as np

BOOTSTRAP_SAMPLES = 10000


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


def block_length(d, max_fraction: float = 0.25) -> int:
    """Bootstrap block length for a dependent series d (1-D, in time order).

    The rule: the first lag k whose sample autocorrelation falls inside the +-2/sqrt(n) band of
    white noise, and at least round(n ** (1/3)) (the usual order of block lengths for the mean),
    capped at max_fraction * n so that a short series still has several blocks.
    """
    d = np.asarray(d, np.float64)
    n = len(d)
    if n < 4:
        return 1
    x = d - d.mean()
    var = float((x * x).sum())
    cap = max(1, int(max_fraction * n))
    lag = 1
    if var > 0:
        band = 2.0 / math.sqrt(n)
        while lag < cap and float((x[:-lag] * x[lag:]).sum()) / var >= band:
            lag += 1
    return int(min(cap, max(lag, round(n ** (1.0 / 3.0)))))


def _block_indices(groups: np.ndarray, length: int, blocks: int, rng) -> np.ndarray:
    """(B, blocks * length) frame indices: blocks start anywhere and wrap inside their group."""
    n = len(groups)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    first = np.repeat(starts, np.diff(np.r_[starts, n]))          # (n,) start of own group
    size = np.repeat(np.diff(np.r_[starts, n]), np.diff(np.r_[starts, n]))
    pos = rng.integers(0, n, size=blocks)                          # (B * blocks,) block starts
    rel = (pos - first[pos])[:, None] + np.arange(length)[None]   # (B * blocks, length)
    return first[pos][:, None] + rel % size[pos][:, None]


def paired_block_bootstrap(a, b, groups=None, block: int | None = None,
                           samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> dict:
    """Mean paired difference a - b with a moving-block bootstrap CI and p-value.

    Args:
        a, b: per-frame values of two methods on the same frames (N,), in time order; pairs
            with a NaN are dropped.
        groups: (N,) run id of each frame; blocks never cross a change of id (a block that
            reaches the end of its run wraps to the run's start). Default: one run.
        block: block length in frames; default `block_length(a - b)`.
        samples: bootstrap resamples.
        seed: RNG seed.

    Returns:
        dict with n, mean_a, mean_b, mean_diff, ci_low, ci_high (95 % percentile interval of
        the resampled mean difference), p (two-sided: share of resampled means, centred on the
        observed mean, at least as far from 0 as the observed mean), block, and the Wilcoxon
        signed-rank p (`wilcoxon_p`, independent-pairs check).
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    groups = np.zeros(len(a), np.int64) if groups is None else np.asarray(groups)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b, groups = a[ok], b[ok], groups[ok]
    d = a - b
    n = len(d)
    out = {'n': int(n), 'mean_a': float(a.mean()) if n else math.nan,
           'mean_b': float(b.mean()) if n else math.nan,
           'mean_diff': float(d.mean()) if n else math.nan, 'ci_low': math.nan,
           'ci_high': math.nan, 'p': math.nan, 'block': 0, 'samples': int(samples),
           'wilcoxon_p': wilcoxon_p(d)}
    if n < 2:
        return out
    length = int(block) if block else block_length(d)
    length = max(1, min(length, n))
    per = math.ceil(n / length)
    rng = np.random.default_rng(seed)
    idx = _block_indices(groups, length, samples * per, rng).reshape(samples, per * length)
    means = d[idx[:, :n]].mean(1)                                   # (samples,)
    m = float(d.mean())
    p = (1 + int(np.sum(np.abs(means - m) >= abs(m)))) / (samples + 1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    out.update(ci_low=float(lo), ci_high=float(hi), p=float(min(1.0, p)), block=length)
    return out


def wilcoxon_p(d) -> float:
    """Two-sided Wilcoxon signed-rank p of paired differences d; NaN when undefined."""
    from scipy import stats
    d = np.asarray(d, np.float64)
    d = d[np.isfinite(d)]
    if len(d) < 2 or not np.any(d != 0):
        return math.nan
    return float(stats.wilcoxon(d).pvalue)
