"""Parameter sweeps of the paper: quantization bits (Fig. 7) and softmax temperature (Fig. 9).

For each value, one model is trained (signattn_driver.training.loop.train, run folder
OUT/runs/<param>_<value>) and all models are evaluated together on the same frames
(signattn_driver.evaluation.evaluate.evaluate, OUT/report/). The sweep then writes OUT/sweep.md,
OUT/sweep.json and OUT/sweep_<param>.png: deletion AUC 0-25 % (mean of frames +- SEM) and MAE
against the value, and Welch's t-tests between per-frame AUC populations of every value and the
reference (bits 10, T = 1; the paper's T = 0.1 vs T = 1 gave p = 0.193) and of neighbours.

A finished run (its sweep_result.json exists) is not trained again, so an interrupted sweep
continues where it stopped.
"""

from dataclasses import dataclass
import json
import logging
from pathlib import Path

from signattn_driver.evaluation.evaluate import EvalConfig, evaluate
from signattn_driver.paths import config_path
from signattn_driver.evaluation.report import sweep_figure
from signattn_driver.evaluation.statistics import welch_t_test

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepSpec:
    """One sweepable parameter."""

    key: str            # ModelConfig field
    values: tuple
    reference: float    # the value the others are tested against
    label: str
    log_x: bool


SWEEPS = {
    'bits': SweepSpec('quant_bits', tuple(range(2, 25, 2)), 10, 'quantization bits n', False),
    'temperature': SweepSpec('temperature', (0.1, 0.5, 1.0, 2.0, 5.0), 1.0,
                             'softmax temperature T', True),
}


class SweepError(RuntimeError):
    """A sweep that cannot run (unknown parameter, bad values)."""


def _tag(key: str, value) -> str:
    return f'{key}_{value:g}' if isinstance(value, float) else f'{key}_{value}'


def sweep(kind: str, data_dirs, out_dir, values=None, config_yaml=None, tiny: bool = False,
          overrides: dict | None = None, eval_data=None, methods=('attention',),
          device: str = 'auto', limit_frames: int | None = None,
          eval_config: EvalConfig | None = None, progress: bool = False) -> dict:
    """Train one model per value, evaluate them together and write the sweep report.

    Args:
        kind: 'bits' or 'temperature' (SWEEPS).
        data_dirs: training dataset folders.
        out_dir: sweep folder.
        values: values to sweep (default: the paper's, SWEEPS[kind].values).
        config_yaml: run configuration (training.config.load_run_config); default
            config/train_tiny.yaml with `tiny`, else config/train_paper.yaml (as `signattn
            train`, whose defaults equal it).
        tiny: use config/train_tiny.yaml (CPU-sized) unless config_yaml is given.
        overrides: further config fields (e.g. max_steps, device, attention).
        eval_data: dataset to evaluate on (default: data_dirs[0]; split 'test').
        methods: saliency methods evaluated on every model.
        device: evaluation device.
        limit_frames: evaluate about this many frames.
        eval_config: EvalConfig for everything else.
        progress: progress bars.

    Returns:
        The sweep summary dict (also OUT/sweep.json).
    """
    from signattn_driver.training.config import PAPER_CONFIG, TINY_CONFIG
    from signattn_driver.training.loop import load_run_config, train
    if kind not in SWEEPS:
        raise SweepError(f'unknown sweep {kind!r}; choose from {list(SWEEPS)}')
    spec = SWEEPS[kind]
    values = list(values) if values else list(spec.values)
    if not values:
        raise SweepError('no values to sweep')
    out_dir = Path(out_dir)
    data_dirs = [str(d) for d in data_dirs]
    if config_yaml is None:
        config_yaml = config_path(TINY_CONFIG if tiny else PAPER_CONFIG)
    runs = []
    for value in values:
        run_dir = out_dir / 'runs' / _tag(spec.key, value)
        marker = run_dir / 'sweep_result.json'
        if marker.is_file():
            LOG.info('%s: already trained, reusing', run_dir)
            runs.append(json.loads(marker.read_text()))
            continue
        model_config, train_config = load_run_config(
            config_yaml, {**(overrides or {}), spec.key: value})
        LOG.info('training %s = %s in %s', spec.key, value, run_dir)
        result = train(model_config, train_config, data_dirs, run_dir,
                       resume=(run_dir / 'last.pt').is_file(), progress=progress)
        ckpt = result.get('best_checkpoint') or result['last_checkpoint']
        entry = {'value': value, 'checkpoint': str(ckpt), 'steps': result['steps'],
                 'val_metrics': result.get('metrics', {})}
        run_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(entry, indent=1, default=str))
        runs.append(entry)
    report = evaluate([r['checkpoint'] for r in runs], eval_data or data_dirs[0], methods,
                      out_dir / 'report', device=device, limit_frames=limit_frames,
                      config=eval_config, progress=progress)
    summary = summarize(kind, runs, report, methods[0])
    (out_dir / 'sweep.json').write_text(json.dumps(summary, indent=1, default=str))
    sweep_figure([r['value'] for r in summary['rows']], summary['rows'], spec.label,
                 out_dir / f'sweep_{kind}.png', log_x=spec.log_x)
    (out_dir / 'sweep.md').write_text(markdown(summary))
    return summary


def summarize(kind: str, runs: list, report: dict, method: str = 'attention') -> dict:
    """Rows per value (AUC, MAE) and Welch's t-tests, from an evaluation report."""
    spec = SWEEPS[kind]
    entries = list(report['checkpoints'].values())
    rows, per_frame = [], []
    for run, e in zip(runs, entries):
        d = e['methods'][method]['deletion']
        s = d['auc_25_deg_pct_summary']
        per_frame.append(d['auc_25_deg_pct_per_frame'])
        rows.append({'value': run['value'], 'checkpoint': run['checkpoint'],
                     'auc_mean': s['mean'], 'auc_sem': s['sem'], 'auc_std': s['std'],
                     'auc_100': d['auc_100_deg_pct'],
                     'mae_deg': e['accuracy']['mae_steering_deg'],
                     'mae_u_per_m': e['accuracy']['mae_u_per_m'], 'frames': s['n']})
    tests = []
    values = [r['value'] for r in rows]
    ref = [i for i, v in enumerate(values) if v == spec.reference]
    for i, v in enumerate(values):
        if ref and i != ref[0]:
            tests.append({'a': v, 'b': spec.reference, 'kind': 'vs reference',
                          **welch_t_test(per_frame[i], per_frame[ref[0]])})
        if i > 0 and not (ref and ref[0] in (i - 1, i)):   # else already tested above
            tests.append({'a': values[i - 1], 'b': v, 'kind': 'neighbours',
                          **welch_t_test(per_frame[i - 1], per_frame[i])})
    best = max(rows, key=lambda r: r['auc_mean'] if r['auc_mean'] == r['auc_mean'] else -1e300)
    return {'sweep': kind, 'parameter': spec.key, 'method': method, 'reference': spec.reference,
            'rows': rows, 'tests': tests, 'best_value_by_auc': best['value'],
            'units': report['units'], 'report': 'report/report.md'}


def markdown(summary: dict) -> str:
    """Render a sweep summary as Markdown."""
    p = summary['parameter']
    lines = [f'# Sweep of {p}', '',
             f'Method: {summary["method"]}; deletion AUC 0-25 % in deg x percentage point '
             f'(mean of per-frame AUCs); MAE in steering-wheel degrees. Full report: '
             f'[{summary["report"]}]({summary["report"]}).', '',
             f'| {p} | AUC 0-25 % | +- SEM | AUC 0-100 % | MAE [deg] | frames |',
             '|---|---|---|---|---|---|']
    for r in summary['rows']:
        lines.append(f'| {r["value"]} | {r["auc_mean"]:.1f} | {r["auc_sem"]:.1f} | '
                     f'{r["auc_100"]:.0f} | {r["mae_deg"]:.2f} | {r["frames"]} |')
    lines += ['', f'Highest AUC at {p} = {summary["best_value_by_auc"]}. Paper: bits, highest '
              'AUC at 10 (Fig. 7a); temperature, T = 0.1 vs T = 1 not significant (p = 0.193).',
              '', "## Welch's t-tests (per-frame AUC 0-25 %)", '',
              '| a | b | test | mean a | mean b | t | p |', '|---|---|---|---|---|---|---|']
    for t in summary['tests']:
        lines.append(f'| {t["a"]} | {t["b"]} | {t["kind"]} | {t["mean_a"]:.1f} | '
                     f'{t["mean_b"]:.1f} | {t["t"]:.2f} | {t["p"]:.3g} |')
    lines += ['', f'![sweep](sweep_{summary["sweep"]}.png)', '']
    return '\n'.join(lines)
