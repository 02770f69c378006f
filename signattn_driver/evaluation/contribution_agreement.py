"""How well a saliency map agrees with the exact contribution map phi (model.explain_step).

phi (N, 10, 20) splits each command u exactly over the map cells; |phi| says how much of u
each cell carries. A map that explains the command should rank cells as |phi| does and put its
top cells where |phi|'s mass is. Per frame:

- spearman: rank correlation of the map with |phi| over the 200 cells;
- share_top{p}: the part of sum|phi| held by the map's top p % cells;
- best_top{p}: the same for |phi|'s own top p % (the ceiling), and ratio_top{p} = share / best.
Over frames: modal_cell (the cell most often ranked first) and modal_share (how often).
"""

import numpy as np
from scipy.stats import rankdata

TOP_PERCENTS = (5, 10)


def _top_share(ranking: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    """Share of weight (N, L) >= 0 in the k cells with the highest ranking (N, L), per frame."""
    top = np.argpartition(-ranking, k - 1, axis=1)[:, :k]
    return np.take_along_axis(weight, top, 1).sum(1) / np.maximum(weight.sum(1), 1e-30)


def modal_cell(maps: np.ndarray) -> tuple[tuple[int, int], float]:
    """Return the (row, col) most often ranked first in maps (N, 10, 20), and how often."""
    n, h, w = maps.shape
    counts = np.bincount(maps.reshape(n, -1).argmax(1), minlength=h * w)
    cell = int(counts.argmax())
    return (cell // w, cell % w), float(counts[cell] / n)


def per_frame_agreement(maps: np.ndarray, phi: np.ndarray,
                        top_percents=TOP_PERCENTS) -> dict[str, np.ndarray]:
    """Per-frame agreement of saliency maps (N, 10, 20) with contribution maps phi (N, 10, 20).

    Returns:
        name -> (N,) float64 array: spearman, share_top{p}, best_top{p}, ratio_top{p}.
    """
    maps = np.asarray(maps, np.float64).reshape(len(maps), -1)
    weight = np.abs(np.asarray(phi, np.float64)).reshape(len(phi), -1)
    if maps.shape != weight.shape:
        raise ValueError(f'maps {maps.shape} and phi {weight.shape} differ in shape')
    cells = maps.shape[1]
    # Ties (a flat map, Grad-CAM's zeros) get average ranks; a constant map has no correlation.
    rm, rw = rankdata(maps, axis=1), rankdata(weight, axis=1)
    rm -= rm.mean(1, keepdims=True)
    rw -= rw.mean(1, keepdims=True)
    denom = np.sqrt((rm ** 2).sum(1) * (rw ** 2).sum(1))
    out = {'spearman': np.where(denom > 0, (rm * rw).sum(1) / np.where(denom > 0, denom, 1),
                                np.nan)}
    for p in top_percents:
        k = max(1, round(cells * p / 100))
        share, best = _top_share(maps, weight, k), _top_share(weight, weight, k)
        out[f'share_top{p}'], out[f'best_top{p}'] = share, best
        out[f'ratio_top{p}'] = share / np.maximum(best, 1e-30)
    return out


def summarize_agreement(maps: np.ndarray, phi: np.ndarray) -> dict:
    """Means of `per_frame_agreement` plus the modal cell of the maps and of |phi|.

    The ratio of means (mean share / mean best) is what "the map's top 10 % hold x of what
    |phi|'s own top 10 % hold" means over a drive; the per-frame ratio's mean is beside it.
    """
    frame = per_frame_agreement(maps, phi)
    ranked = frame['spearman'][np.isfinite(frame['spearman'])]   # a flat map ranks nothing
    summary = {'frames': len(maps), 'spearman': float(ranked.mean()) if ranked.size else np.nan}
    for p in TOP_PERCENTS:
        share, best = frame[f'share_top{p}'].mean(), frame[f'best_top{p}'].mean()
        summary[f'share_top{p}'] = float(share)
        summary[f'best_top{p}'] = float(best)
        summary[f'ratio_top{p}'] = float(share / best)
    summary['modal_cell'], summary['modal_share'] = modal_cell(np.asarray(maps))
    summary['phi_modal_cell'], summary['phi_modal_share'] = modal_cell(np.abs(np.asarray(phi)))
    return summary
