"""Figures (matplotlib, Agg) and Markdown for evaluation and sweep reports.

Input is the report dict of signattn_driver.evaluation.evaluate.evaluate (or of a sweep);
nothing here
runs a model.
"""

import math
from pathlib import Path

import numpy as np

from signattn_driver.evaluation.explanations import blur_for_display


def _plt():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _entries(report: dict):
    """Yield (checkpoint, method, summary) for every evaluated pair."""
    for c, e in report['checkpoints'].items():
        for m, s in e['methods'].items():
            yield c, m, s


def _fmt(v, digits=2):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return 'n/a'
    if isinstance(v, float) and (abs(v) >= 1e4 or 0 < abs(v) < 10 ** -digits):
        return f'{v:.3g}'
    return f'{v:.{digits}f}'


def figures(report: dict, examples: dict, out_dir: Path) -> list:
    """Write deletion/insertion curves (Fig. 6a), AUC bars (Fig. 6b) and map overlays.

    Args:
        report: evaluation report dict (levels_percent, checkpoints).
        examples: {checkpoint: {'hsv': [(80, 160, 3) uint8], 'maps': {method: [(80, 160)]}}}.
        out_dir: folder for the PNGs.

    Returns:
        File names written, relative to out_dir.
    """
    plt = _plt()
    out_dir = Path(out_dir)
    levels = np.asarray(report['levels_percent'])
    written = []
    for kind in ('deletion', 'insertion'):
        rows = [(c, m, s[kind]) for c, m, s in _entries(report) if kind in s]
        if not rows:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, upto in zip(axes, (25.0, 100.0)):
            keep = levels <= upto
            for c, m, s in rows:
                ax.plot(levels[keep], np.asarray(s['curve_deg'])[keep], label=f'{c}: {m}')
            ax.set_xlabel('pixels masked [%]' if kind == 'deletion' else 'pixels revealed [%]')
            ax.set_ylabel('steering error [deg]')
            ax.set_title(f'{kind}, 0-{upto:g} %')
            ax.grid(alpha=0.3)
        axes[1].legend(fontsize=7)
        fig.tight_layout()
        name = f'{kind}_curves.png'
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        written.append(name)
    rows = [(c, m, s['deletion']) for c, m, s in _entries(report) if 'deletion' in s]
    if rows:
        fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(rows) + 2), 4))
        means = [s['auc_25_deg_pct_summary']['mean'] for _, _, s in rows]
        sems = [s['auc_25_deg_pct_summary']['sem'] for _, _, s in rows]
        ax.bar(range(len(rows)), means, yerr=sems, capsize=3, color='tab:red')
        ax.set_xticks(range(len(rows)), [f'{c}\n{m}' for c, m, _ in rows], fontsize=7)
        ax.set_ylabel('deletion AUC 0-25 % [deg x %]')
        ax.set_title('deletion AUC (mean of frames, +- SEM)')
        fig.tight_layout()
        fig.savefig(out_dir / 'auc_bars.png', dpi=110)
        plt.close(fig)
        written.append('auc_bars.png')
    for c, ex in examples.items():
        if ex['hsv']:
            name = f'overlays_{c}.png'
            _overlays(plt, ex, out_dir / name, c)
            written.append(name)
    return written


def _overlays(plt, ex: dict, path: Path, title: str):
    import cv2
    methods = list(ex['maps'])
    n = len(ex['hsv'])
    fig, axes = plt.subplots(n, len(methods) + 1, figsize=(2.4 * (len(methods) + 1), 1.4 * n),
                             squeeze=False)
    for i, hsv in enumerate(ex['hsv']):
        rgb = cv2.cvtColor(np.ascontiguousarray(hsv), cv2.COLOR_HSV2RGB)
        axes[i, 0].imshow(rgb)
        for j, m in enumerate(methods, start=1):
            heat = blur_for_display(ex['maps'][m][i])   # display only (paper Fig. 4)
            axes[i, j].imshow(rgb)
            axes[i, j].imshow(heat, cmap='jet', alpha=0.5)
            if i == 0:
                axes[i, j].set_title(m, fontsize=8)
        if i == 0:
            axes[i, 0].set_title('input', fontsize=8)
    for ax in axes.flat:
        ax.axis('off')
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(report: dict) -> str:
    """Render an evaluation report dict as Markdown (tables, paper numbers, figures)."""
    d, cfg = report['data'], report['config']
    n = next(iter(report['checkpoints'].values()))['frames'] if report['checkpoints'] else 0
    lines = [
        '# Evaluation report', '',
        f'Data: `{d["path"]}`, split(s) {", ".join(d["splits"])}, camera {d["camera"]}, '
        f'{n} frames in {d["runs"]} runs. Device: {report["device"]}.',
        f'Deletion: fill {cfg["deletion"]["fill"]}, steps of {cfg["deletion"]["step_percent"]} %'
        f', LSTM state mode {cfg["mode"]} ("carried": state from the unmasked previous frames; '
        '"sequence": whole window masked).', '',
        'Units: errors in degrees of steering-wheel angle (|theta(u_pred) - theta_label|, eq. 3 '
        'inverted at the smoothed speed); AUC in deg x percentage point, trapezoid over x in '
        'percent masked. Deletion AUC: higher = the map found what the model uses. Insertion '
        'AUC (start from the fill, reveal the top pixels): lower = better.', '',
        '## Accuracy', '',
        '| checkpoint | attention | bits | T | MAE [deg] | RMSE [deg] | MAE u [1/m] | '
        'RMSE u [1/m] |', '|---|---|---|---|---|---|---|---|']
    for c, e in report['checkpoints'].items():
        a, mc = e['accuracy'], e['model_config']
        lines.append(f'| {c} | {mc["attention"]} | {mc["quant_bits"]} | {mc["temperature"]} | '
                     f'{_fmt(a["mae_steering_deg"])} | {_fmt(a["rmse_steering_deg"])} | '
                     f'{_fmt(a["mae_u_per_m"], 5)} | {_fmt(a["rmse_u_per_m"], 5)} |')
    lines += ['', 'Paper (Table 2, Udacity test set, 5,279 frames): MAE 4.67 deg (sign), '
              '4.94 (soft), 4.77 (none).', '', '## Deletion and insertion', '',
              '| checkpoint | method | del. AUC 0-25 % | +- SEM | del. AUC 0-100 % | '
              'error at 25 % [deg] | ins. AUC 0-25 % | ins. AUC 0-100 % | ms / frame | '
              'mass in mask |', '|---|---|---|---|---|---|---|---|---|---|']
    for c, m, s in _entries(report):
        de, ins = s.get('deletion', {}), s.get('insertion', {})
        share = s.get('mask_share', {}).get('mean')
        lines.append(
            f'| {c} | {m} | {_fmt(de.get("auc_25_deg_pct"), 1)} | '
            f'{_fmt(de.get("auc_25_deg_pct_summary", {}).get("sem"), 1)} | '
            f'{_fmt(de.get("auc_100_deg_pct"), 0)} | {_fmt(de.get("error_at_25_pct_deg"))} | '
            f'{_fmt(ins.get("auc_25_deg_pct"), 1)} | {_fmt(ins.get("auc_100_deg_pct"), 0)} | '
            f'{_fmt(1e3 * s["seconds_per_frame"], 1)} | {_fmt(share, 3)} |')
    areas = {c: e['mask_area_share']['mean'] for c, e in report['checkpoints'].items()
             if 'mask_area_share' in e}
    if areas:
        lines += ['', f'Mass in mask: share of the map inside the ground-truth mask; a uniform '
                  f'map scores the mask area, {_fmt(next(iter(areas.values())), 3)}.']
    lines += ['', 'Paper (Fig. 6b, deletion AUC 0-25 %): 162 sign attention, 141 soft '
              'attention, 140 Grad-CAM, 154 LIME; error at 25 %: 8.35, 7.43, 6.63, 6.33 deg.',
              '', '## Welch\'s t-tests (per-frame deletion AUC 0-25 %)', '',
              '| a | b | mean a | mean b | t | df | p |', '|---|---|---|---|---|---|---|']
    for t in report['tests']:
        if t['metric'] == 'deletion_auc_25':
            lines.append(f'| {t["a"]} | {t["b"]} | {_fmt(t["mean_a"], 1)} | '
                         f'{_fmt(t["mean_b"], 1)} | {_fmt(t["t"])} | {_fmt(t["df"], 1)} | '
                         f'{_fmt(t["p"], 3)} |')
    lines += ['', 'All pairs, also for AUC 0-100 % and insertion, are in report.json '
              '("tests").', '']
    for name in report.get('figures', []):
        lines += [f'![{name}]({name})', '']
    return '\n'.join(lines)


def sweep_figure(values: list, rows: list, xlabel: str, path: Path, log_x: bool = False):
    """AUC and MAE against a swept parameter (paper Figs. 7 and 9).

    Args:
        values: swept values (x).
        rows: per value a dict with auc_mean, auc_sem, mae_deg.
        xlabel: axis label.
        path: PNG to write.
        log_x: logarithmic x axis (temperature).
    """
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.errorbar(values, [r['auc_mean'] for r in rows], yerr=[r['auc_sem'] for r in rows],
               marker='o', capsize=3)
    a.set_ylabel('deletion AUC 0-25 % [deg x %]')
    b.plot(values, [r['mae_deg'] for r in rows], marker='o')
    b.set_ylabel('MAE [deg]')
    for ax, tag in ((a, '(a)'), (b, '(b)')):
        ax.set_xlabel(xlabel)
        ax.set_title(tag)
        ax.grid(alpha=0.3)
        if log_x:
            ax.set_xscale('log')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
