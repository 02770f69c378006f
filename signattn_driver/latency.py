"""Latency summaries: one set of percentiles and one key spelling for every report.

Keys are `<prefix>p50_ms`, `<prefix>p99_ms` (and with `mean_and_max`, `<prefix>mean_ms`,
`<prefix>max_ms`): the drive node's /diagnostics (`decode_p50_ms`), live evaluation and the
demo (`latency_p50_ms`) and the benchmarks (`p50_ms`, `latency_p99_ms`) all read this way.
"""

import math

import numpy as np

PERCENTILES = (50, 99)


def latency_summary(latency_ms, prefix: str = '', percentiles=PERCENTILES,
                    mean_and_max: bool = False) -> dict:
    """Summarize latencies in ms as percentiles (NaN for no values).

    Args:
        latency_ms: (N,) latencies in milliseconds (any sequence of numbers).
        prefix: put before every key, e.g. 'latency_' or 'decode_'.
        percentiles: which percentiles, as numbers in [0, 100].
        mean_and_max: also the mean and the maximum.

    Returns:
        {f'{prefix}p{q}_ms': float for q in percentiles} (+ mean_ms, max_ms).
    """
    values = np.asarray(latency_ms, np.float64).reshape(-1)
    empty = values.size == 0
    out = {f'{prefix}p{q:g}_ms': math.nan if empty else float(np.percentile(values, q))
           for q in percentiles}
    if mean_and_max:
        out[f'{prefix}mean_ms'] = math.nan if empty else float(values.mean())
        out[f'{prefix}max_ms'] = math.nan if empty else float(values.max())
    return out
