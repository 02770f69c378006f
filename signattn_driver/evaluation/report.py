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
    ylabels = {'deletion': 'steering error vs label [deg]',
               'insertion': 'steering error vs label [deg]',
               'deletion_change': '|u_masked - u_unmasked| [deg]',
               'insertion_change': '|u_masked - u_unmasked| [deg]'}
    for kind in ('deletion', 'insertion', 'deletion_change', 'insertion_change'):
        rows = [(c, m, s[kind]) for c, m, s in _entries(report) if kind in s]
        if not rows:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, upto in zip(axes, (25.0, 100.0)):
            keep = levels <= upto
            for c, m, s in rows:
                ax.plot(levels[keep], np.asarray(s['curve_deg'])[keep], label=f'{c}: {m}')
            ax.set_xlabel('pixels revealed [%]' if kind.startswith('insertion')
                          else 'pixels masked [%]')
            ax.set_ylabel(ylabels[kind])
            ax.set_title(f'{kind}, 0-{upto:g} %')
            ax.grid(alpha=0.3)
        axes[1].legend(fontsize=7)
        fig.tight_layout()
        name = f'{kind}_curves.png'
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        written.append(name)
    rows = [(c, m, s) for c, m, s in _entries(report) if 'deletion' in s]
    if rows:
        fig, axes = plt.subplots(1, 2, figsize=(2 * max(4, 0.9 * len(rows) + 2), 4))
        for ax, kind, title in ((axes[0], 'deletion_change', 'output change (headline)'),
                                (axes[1], 'deletion', 'error vs label (paper)')):
            means = [s.get(kind, {}).get('auc_25_deg_pct_summary', {}).get('mean', math.nan)
                     for _, _, s in rows]
            sems = [s.get(kind, {}).get('auc_25_deg_pct_summary', {}).get('sem', math.nan)
                    for _, _, s in rows]
            ax.bar(range(len(rows)), means, yerr=sems, capsize=3, color='tab:red')
            ax.set_xticks(range(len(rows)), [f'{c}\n{m}' for c, m, _ in rows], fontsize=7)
            ax.set_ylabel('deletion AUC 0-25 % [deg x %]')
            ax.set_title(f'{title}: mean of frames +- SEM', fontsize=9)
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
        f'Deletion: fills {", ".join(cfg.get("fills") or [cfg["deletion"]["fill"]])}, '
        f'steps of {cfg["deletion"]["step_percent"]} %'
        f', LSTM state mode {cfg["mode"]} ("carried": state from the unmasked previous frames; '
        '"sequence": whole window masked).', *_commands_lines(report), '',
        'Units: errors in degrees of steering-wheel angle (|theta(u_pred) - theta_label|, eq. 3 '
        'inverted at the smoothed speed); AUC in deg x percentage point, trapezoid over x in '
        'percent masked. Deletion AUC: higher = the map found what the model uses. Insertion '
        'AUC (start from the fill, reveal the top pixels): lower = better.', '',
        '## Accuracy', '',
        '| checkpoint | attention | binarize | bits | T | MAE [deg] | RMSE [deg] | MAE u [1/m] | '
        'RMSE u [1/m] |', '|---|---|---|---|---|---|---|---|---|']
    for c, e in report['checkpoints'].items():
        a, mc = e['accuracy'], e['model_config']
        lines.append(f'| {c} | {mc["attention"]} | {mc.get("binarize", "deterministic")} | '
                     f'{mc["quant_bits"]} | {mc["temperature"]} | '
                     f'{_fmt(a["mae_steering_deg"])} | {_fmt(a["rmse_steering_deg"])} | '
                     f'{_fmt(a["mae_u_per_m"], 5)} | {_fmt(a["rmse_u_per_m"], 5)} |')
    lines += _by_command_table(report)
    lines += ['', 'Paper (Table 2, Udacity test set, 5,279 frames): MAE 4.67 deg (sign), '
              '4.94 (soft), 4.77 (none).', '']
    sat = {c: e['sign_saturation']['mean'] for c, e in report['checkpoints'].items()
           if e.get('sign_saturation', {}).get('n')}
    if sat:
        lines += ['Sign saturation (share of |kappa L alpha x| >= 1 on the unmasked frames; in '
                  'mode mean_field a saturated sign ignores alpha): ' + ', '.join(
                      f'{c} {_fmt(v, 3)}' for c, v in sat.items()) + '.', '']
    lines += _agreement_table(report)
    if not cfg.get('curves', True):
        return '\n'.join(lines)
    fills = cfg.get('fills') or [cfg['deletion']['fill']]
    for fill in fills:
        lines += _faithfulness_table(report, fill)
    areas = {c: e['mask_area_share']['mean'] for c, e in report['checkpoints'].items()
             if 'mask_area_share' in e}
    if areas:
        lines += ['', f'Mass in mask: share of the map inside the ground-truth mask; a uniform '
                  f'map scores the mask area, {_fmt(next(iter(areas.values())), 3)}.']
    lines += ['', 'Paper (Fig. 6b, deletion AUC 0-25 % against the label): 162 sign attention, '
              '141 soft attention, 140 Grad-CAM, 154 LIME; error at 25 %: 8.35, 7.43, 6.63, '
              '6.33 deg.', '']
    for metric, words in (('deletion_change_auc_25', 'output-change deletion AUC 0-25 %; '
                           'diff > 0: a moves the output more'),
                          ('insertion_change_auc_25', 'output-change insertion AUC 0-25 %; '
                           'diff < 0: a restores the output sooner')):
        for fill in (fills if metric.startswith('deletion') else fills[:1]):
            lines += _paired_table(report, metric, fill, words)
    lines += ['', "## Welch's t-tests (unpaired, the paper's eq. 16; per-frame deletion AUC "
              '0-25 % against the label)', '',
              'Kept only to reproduce the paper\'s comparison: the frames are shared and '
              'dependent, so the paired batch-means t-test above is the test to read.', '',
              '| a | b | mean a | mean b | t | df | p |', '|---|---|---|---|---|---|---|']
    for t in report['tests']:
        if t['metric'] == 'deletion_auc_25':
            lines.append(f'| {t["a"]} | {t["b"]} | {_fmt(t["mean_a"], 1)} | '
                         f'{_fmt(t["mean_b"], 1)} | {_fmt(t["t"])} | {_fmt(t["df"], 1)} | '
                         f'{_fmt(t["p"], 3)} |')
    lines += ['', 'All paired comparisons (also AUC 0-100 %, every fill, across checkpoints) are '
              'in report.json ("paired").', '']
    for name in report.get('figures', []):
        lines += [f'![{name}]({name})', '']
    return '\n'.join(lines)


def _commands_lines(report: dict) -> list:
    """One line: which route commands the frames carry and which checkpoints were fed them."""
    counts = report['data'].get('route_commands')
    if not counts:
        return []
    fed = {c: e['route_commands']['source'] for c, e in report['checkpoints'].items()
           if e.get('route_commands', {}).get('fed')}
    recorded = ', '.join(f'{name} {n}' for name, n in counts.items())
    if not fed:
        return [f'Route commands recorded on these frames: {recorded}; no checkpoint takes '
                'commands (camera only).']
    if 'recorded' not in fed.values():
        return [f'Route commands withheld: {", ".join(fed)} (command models) ran under '
                f'follow-lane on every frame; recorded on these frames: {recorded}.']
    return [f'Route commands fed to {", ".join(fed)} (command models), each frame its recorded '
            f'command (follow-lane where the set has none): {recorded}.']


def _by_command_table(report: dict) -> list:
    """MAE per recorded route command, when the frames carry more than follow-lane."""
    names = list((report['data'].get('route_commands') or {}).items())
    names = [name for name, n in names if n]
    if len(names) < 2:
        return []
    lines = ['', 'MAE [deg] by the recorded route command of the frame (frames):', '',
             '| checkpoint | fed | ' + ' | '.join(names) + ' |',
             '|---|---|' + '---|' * len(names)]
    for c, e in report['checkpoints'].items():
        by = e.get('accuracy_by_command', {})
        fed = e.get('route_commands', {}).get('source') or 'none (camera only)'
        cells = [f'{_fmt(by[n]["mae_steering_deg"])} ({by[n]["frames"]})' if n in by else 'n/a'
                 for n in names]
        lines.append(f'| {c} | {fed} | ' + ' | '.join(cells) + ' |')
    if not any('headline_by_command' in e for e in report['checkpoints'].values()):
        return lines
    lines += ['', 'Output-change deletion AUC 0-25 % (primary fill, deg x %) by recorded route '
              'command, mean of per-frame AUCs:', '',
              '| checkpoint | method | ' + ' | '.join(names) + ' |',
              '|---|---|' + '---|' * len(names)]
    for c, e in report['checkpoints'].items():
        for m, by in e.get('headline_by_command', {}).items():
            cells = [_fmt(by[n]['mean'], 1) if n in by else 'n/a' for n in names]
            lines.append(f'| {c} | {m} | ' + ' | '.join(cells) + ' |')
    return lines


def _agreement_table(report: dict) -> list:
    """Every map against |phi| (and |phi at uniform alpha| where alpha acts on u)."""
    lines = ['', '## Agreement with the contribution map phi', '',
             'phi splits u_t exactly over the 10x20 cells (sum phi + bias = u). Spearman of the '
             'map with |phi| over the 200 cells; top 10 %: share of sum |phi| held by the map\'s '
             '20 highest cells, and that share over the one |phi|\'s own top 20 hold (ratio); '
             'modal cell: the cell most often ranked first, and how often. Means over frames. '
             'Where alpha acts on u, "uniform" judges against phi at alpha = 1/L (same frame and '
             'state): agreement with phi itself is partly built in there.', '',
             '| checkpoint | alpha acts | method | Spearman | top 5 % share | top 10 % share | '
             'ratio top 10 % | modal cell (share) | |phi| modal (share) | Spearman, uniform | '
             'ratio top 10 %, uniform |', '|---|---|---|---|---|---|---|---|---|---|---|']
    for c, e in report['checkpoints'].items():
        block = e.get('contribution')
        if not block:
            continue
        for m, entry in block['methods'].items():
            a, u = entry['vs_phi'], entry.get('vs_phi_uniform_alpha', {})
            lines.append(
                f'| {c} | {"yes" if block["alpha_acts"] else "no"} | {m} | '
                f'{_fmt(a["spearman"])} | {_fmt(a["share_top5"])} | {_fmt(a["share_top10"])} | '
                f'{_fmt(a["ratio_top10"])} | {tuple(a["modal_cell"])} ({_fmt(a["modal_share"])})'
                f' | {tuple(a["phi_modal_cell"])} ({_fmt(a["phi_modal_share"])}) | '
                f'{_fmt(u.get("spearman"))} | {_fmt(u.get("ratio_top10"))} |')
    return lines


def _faithfulness_table(report: dict, fill: str) -> list:
    """Headline table of one deletion fill: output-change AUCs first, the paper's curve after."""
    lines = ['', f'## Faithfulness, fill {fill}', '',
             'Output change |u_masked - u_unmasked| (deletion: higher = more faithful; '
             'insertion: lower = better), and the paper\'s error against the label. AUC 0-25 % '
             'in deg x %, mean of per-frame AUCs +- SEM.', '',
             '| checkpoint | method | Δu del. AUC 0-25 % | Δu del. AUC 0-100 % | '
             'Δu ins. AUC 0-25 % | Δu ins. AUC 0-100 % | label del. AUC 0-25 % (paper) | '
             'above 0 % level | error at 25 % [deg] | ms / frame | mass in mask |',
             '|---|---|---|---|---|---|---|---|---|---|---|']

    def pm(block, lim):
        s = block.get(f'auc_{lim}_deg_pct_summary', {})
        if not s:
            return 'n/a'
        return f'{_fmt(s.get("mean"), 1)} +- {_fmt(s.get("sem"), 1)}'

    for c, m, s in _entries(report):
        f = s.get('fills', {}).get(fill, s)
        dc, ic = f.get('deletion_change', {}), f.get('insertion_change', {})
        de = f.get('deletion', {})
        above = de.get('auc_25_deg_pct_above_baseline_summary', {}).get('mean')
        share = s.get('mask_share', {}).get('mean')
        lines.append(f'| {c} | {m} | {pm(dc, 25)} | {pm(dc, 100)} | {pm(ic, 25)} | '
                     f'{pm(ic, 100)} | {pm(de, 25)} | {_fmt(above, 1)} | '
                     f'{_fmt(de.get("error_at_25_pct_deg"))} | '
                     f'{_fmt(1e3 * s["seconds_per_frame"], 1)} | {_fmt(share, 3)} |')
    return lines


def _paired_table(report: dict, metric: str, fill: str, words: str) -> list:
    """Paired batch-means t-test rows of one metric and fill (pairs within a checkpoint first)."""
    def shown(t):
        ca, ma = t['a'].split('/', 1)
        cb, mb = t['b'].split('/', 1)
        return ca == cb or ma == mb == 'attention'   # across checkpoints: attention only

    rows = [t for t in report.get('paired', []) if t['metric'] == metric and t['fill'] == fill
            and shown(t)]
    if not rows:
        return []
    lines = ['', f'## Paired comparisons: {words} (fill {fill})', '',
             'Per-frame differences a - b on the same frames; a - b, 95 % CI and p from a t-test '
             'on the mean differences of independent units (the contiguous runs of frames, or '
             'batches of a single run; df = units - 1; n_eff: frames the SE is worth); Wilcoxon '
             'signed-rank p as a check (assumes independent frames).', '',
             '| a | b | mean a | mean b | a - b | 95 % CI | p (batch t) | units (n_eff) | '
             'p (Wilcoxon) |', '|---|---|---|---|---|---|---|---|---|']
    for t in rows:
        lines.append(f'| {t["a"]} | {t["b"]} | {_fmt(t["mean_a"], 1)} | {_fmt(t["mean_b"], 1)} '
                     f'| {_fmt(t["mean_diff"], 1)} | [{_fmt(t["ci_low"], 1)}, '
                     f'{_fmt(t["ci_high"], 1)}] | {_fmt(t["p"], 4)} | {t["units"]} '
                     f'({_fmt(t["n_effective"], 0)}) | '
                     f'{_fmt(t["wilcoxon_p"], 4)} |')
    return lines


def sweep_figure(values: list, rows: list, xlabel: str, path: Path, log_x: bool = False):
    """Faithfulness and accuracy against a swept parameter (like the paper's Figs. 7 and 9).

    Args:
        values: swept values (x).
        rows: per value a dict with auc_mean/auc_sem (output-change deletion AUC of the
            attention map), random_auc_mean/random_auc_sem (the floor), label_auc_mean/
            label_auc_sem (the paper's AUC against the label) and mae_deg.
        xlabel: axis label.
        path: PNG to write.
        log_x: logarithmic x axis (temperature).
    """
    plt = _plt()

    def col(key):
        return [math.nan if r.get(key) is None else r[key] for r in rows]

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 3.8))
    a.errorbar(values, col('auc_mean'), yerr=col('auc_sem'), marker='o', capsize=3,
               label='attention')
    a.errorbar(values, col('random_auc_mean'), yerr=col('random_auc_sem'), marker='s',
               capsize=3, ls='--', color='grey', label='random floor')
    a.set_ylabel('|Δu| deletion AUC 0-25 % [deg x %]')
    a.legend(fontsize=8)
    b.errorbar(values, col('label_auc_mean'), yerr=col('label_auc_sem'), marker='o', capsize=3)
    b.set_ylabel('deletion AUC vs label 0-25 % [deg x %]')
    c.plot(values, col('mae_deg'), marker='o')
    c.set_ylabel('MAE [deg]')
    for ax, tag in ((a, '(a) output change'), (b, '(b) paper metric'), (c, '(c) accuracy')):
        ax.set_xlabel(xlabel)
        ax.set_title(tag)
        ax.grid(alpha=0.3)
        if log_x:
            ax.set_xscale('log')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
