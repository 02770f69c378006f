"""Small statistics for the reports: Welch's t-test (paper eq. 16) and mean summaries."""

import math

import numpy as np


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
