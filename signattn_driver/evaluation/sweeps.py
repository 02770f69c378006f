"""Parameter sweeps of the paper: quantization bits (Fig. 7) and softmax temperature (Fig. 9).

For each value, one model is trained (signattn_driver.training.loop.train, run folder
OUT/runs/<param>_<value>) in fp32 (`amp` forced off: bf16 autocast keeps <= 8 significant bits
of conv5, so a bits sweep above ~10 bits would measure bf16 instead of Q), with the same
configuration file and step budget for every value; `jobs` > 1 trains several values at once in
separate processes on one device. All models are then evaluated together on the same frames
(signattn_driver.evaluation.evaluate.evaluate, OUT/report/). The sweep writes OUT/sweep.md,
OUT/sweep.json and OUT/sweep_<param>.png: the output-change deletion AUC 0-25 % (mean of frames
+- SEM; the headline faithfulness measure) of the attention map and of the random floor, the
paper's deletion AUC against the label, and the MAE against the value; paired batch-means t-tests
on per-frame AUCs compare every value with the reference (bits 10, T = 1) and with the
random floor.

A finished run (its sweep_result.json exists) is not trained again, so an interrupted sweep
continues where it stopped.
"""

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
import json
import logging
import multiprocessing
import os
from pathlib import Path

from signattn_driver.errors import EvaluationError
from signattn_driver.evaluation.evaluate import EvalConfig, evaluate
from signattn_driver.evaluation.report import sweep_figure
from signattn_driver.evaluation.comparisons import paired_on_frames
from signattn_driver.paths import config_path

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
    'temperature': SweepSpec('temperature', (0.1, 0.3, 1.0, 3.0, 10.0), 1.0,
                             'softmax temperature T', True),
}


class SweepError(EvaluationError):
    """A sweep that cannot run (unknown parameter, bad values)."""


def _tag(key: str, value) -> str:
    return f'{key}_{value:g}' if isinstance(value, float) else f'{key}_{value}'


def train_value(key: str, value, config_yaml, overrides: dict, data_dirs: list, run_dir: str,
                threads: int = 0, progress: bool = False) -> dict:
    """Train one sweep point in fp32 and write its sweep_result.json (a process-pool task).

    Args:
        key: ModelConfig field swept.
        value: its value.
        config_yaml: run configuration file or None.
        overrides: further config fields (max_steps, device, ...); `amp` is forced off.
        data_dirs: training datasets.
        run_dir: run folder.
        threads: torch CPU threads of this process (0: torch's default).
        progress: progress bar.

    Returns:
        The run entry {'value', 'checkpoint', 'steps', 'val_metrics'}.
    """
    import torch
    from signattn_driver.training.loop import load_run_config, train
    if threads:
        torch.set_num_threads(threads)
    run_dir = Path(run_dir)
    model_config, train_config = load_run_config(
        config_yaml, {**(overrides or {}), key: value, 'amp': False})
    LOG.info('training %s = %s in %s', key, value, run_dir)
    result = train(model_config, train_config, data_dirs, run_dir,
                   resume=(run_dir / 'last.pt').is_file(), progress=progress)
    ckpt = result.get('best_checkpoint') or result['last_checkpoint']
    entry = {'value': value, 'checkpoint': str(ckpt), 'steps': result['steps'],
             'val_metrics': result.get('metrics', {})}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / 'sweep_result.json').write_text(json.dumps(entry, indent=1, default=str))
    return entry


def sweep(kind: str, data_dirs, out_dir, values=None, config_yaml=None, tiny: bool = False,
          overrides: dict | None = None, eval_data=None, methods=('attention', 'random'),
          device: str = 'auto', limit_frames: int | None = None,
          eval_config: EvalConfig | None = None, progress: bool = False,
          jobs: int = 1) -> dict:
    """Train one model per value (fp32), evaluate them together and write the sweep report.

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
        eval_data: dataset to evaluate on (default: data_dirs[0]; split from eval_config).
        methods: saliency methods evaluated on every model; the first is the one swept, a
            'random' among them is the floor.
        device: evaluation device.
        limit_frames: evaluate about this many frames.
        eval_config: EvalConfig for everything else.
        progress: progress bars.
        jobs: values trained at once, each in its own process (on the same device); CPU threads
            are shared out between them.

    Returns:
        The sweep summary dict (also OUT/sweep.json).
    """
    from signattn_driver.training.config import PAPER_CONFIG, TINY_CONFIG
    spec, values = _checked(kind, values, jobs)
    out_dir = Path(out_dir)
    data_dirs = [str(d) for d in data_dirs]
    if config_yaml is None:
        config_yaml = config_path(TINY_CONFIG if tiny else PAPER_CONFIG)
    config_yaml = str(config_yaml)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    entries, todo = _finished_runs(spec, values, out_dir)
    entries.update(_train_runs(spec, todo, config_yaml, overrides, data_dirs, jobs, progress))
    runs = [entries[v] for v in values]
    report = evaluate([r['checkpoint'] for r in runs], eval_data or data_dirs[0], methods,
                      out_dir / 'report', device=device, limit_frames=limit_frames,
                      config=eval_config, progress=progress)
    summary = summarize(kind, runs, report, methods[0])
    _write_summary(summary, spec, out_dir)
    return summary


def _checked(kind: str, values, jobs: int):
    """Return (SweepSpec, list of values) of a sweep request, or raise SweepError."""
    if kind not in SWEEPS:
        raise SweepError(f'unknown sweep {kind!r}; choose from {list(SWEEPS)}')
    if jobs < 1:
        raise SweepError(f'jobs must be >= 1, got {jobs}')
    spec = SWEEPS[kind]
    values = list(values) if values else list(spec.values)
    if not values:
        raise SweepError('no values to sweep')
    return spec, values


def _finished_runs(spec: SweepSpec, values: list, out_dir: Path):
    """Return ({value: run entry} of the runs already trained, [(value, run folder)] to train)."""
    entries, todo = {}, []
    for value in values:
        run_dir = out_dir / 'runs' / _tag(spec.key, value)
        marker = run_dir / 'sweep_result.json'
        if marker.is_file():
            LOG.info('%s: already trained, reusing', run_dir)
            entries[value] = json.loads(marker.read_text())
        else:
            todo.append((value, run_dir))
    return entries, todo


def _train_runs(spec: SweepSpec, todo: list, config_yaml: str, overrides: dict,
                data_dirs: list, jobs: int, progress: bool) -> dict:
    """Train the (value, run folder) pairs of `todo`; return {value: run entry}.

    With `jobs` > 1 and several runs to do, up to `jobs` run at once in spawned processes that
    share out the CPU threads; otherwise one after the other in this process.
    """
    entries = {}
    if jobs == 1 or len(todo) <= 1:
        for value, run_dir in todo:
            entries[value] = train_value(spec.key, value, config_yaml, overrides, data_dirs,
                                         str(run_dir), progress=progress)
    elif todo:
        threads = max(1, (os.cpu_count() or 1) // min(jobs, len(todo)))
        # spawn: CUDA cannot be used in a forked child, and every run starts clean.
        ctx = multiprocessing.get_context('spawn')
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx) as pool:
            futures = {value: pool.submit(train_value, spec.key, value, config_yaml, overrides,
                                          data_dirs, str(run_dir), threads)
                       for value, run_dir in todo}
            for value, fut in futures.items():
                entries[value] = fut.result()
    return entries


def _write_summary(summary: dict, spec: SweepSpec, out_dir: Path):
    """Write OUT/sweep.json, OUT/sweep_<kind>.png and OUT/sweep.md."""
    kind = summary['sweep']
    (out_dir / 'sweep.json').write_text(json.dumps(summary, indent=1, default=str))
    sweep_figure([r['value'] for r in summary['rows']], summary['rows'], spec.label,
                 out_dir / f'sweep_{kind}.png', log_x=spec.log_x)
    (out_dir / 'sweep.md').write_text(markdown(summary))


def _auc(entry: dict, method: str, kind: str):
    block = entry['methods'].get(method, {}).get(kind)
    if not block:
        return None, {}
    return block['auc_25_deg_pct_per_frame'], block['auc_25_deg_pct_summary']


def summarize(kind: str, runs: list, report: dict, method: str = 'attention') -> dict:
    """Rows per value (output-change and label AUCs, MAE) and paired comparisons."""
    spec = SWEEPS[kind]
    frames = report['frames']
    entries = list(report['checkpoints'].values())
    rows, per_frame, floor = [], [], []
    for run, e in zip(runs, entries):
        change, s = _auc(e, method, 'deletion_change')
        _, label = _auc(e, method, 'deletion')
        rand, rs = _auc(e, 'random', 'deletion_change')
        per_frame.append(change)
        floor.append(rand)
        rows.append({'value': run['value'], 'checkpoint': run['checkpoint'],
                     'steps': run.get('steps'),
                     'auc_mean': s['mean'], 'auc_sem': s['sem'], 'auc_std': s['std'],
                     'random_auc_mean': rs.get('mean'), 'random_auc_sem': rs.get('sem'),
                     'label_auc_mean': label.get('mean'), 'label_auc_sem': label.get('sem'),
                     'auc_100': e['methods'][method]['deletion_change']['auc_100_deg_pct'],
                     'mae_deg': e['accuracy']['mae_steering_deg'],
                     'mae_u_per_m': e['accuracy']['mae_u_per_m'], 'frames': s['n'],
                     'sign_saturation': e.get('sign_saturation', {}).get('mean')})
    tests = []
    values = [r['value'] for r in rows]
    ref = [i for i, v in enumerate(values) if v == spec.reference]
    for i, v in enumerate(values):
        if ref and i != ref[0]:
            tests.append({'a': v, 'b': spec.reference, 'kind': 'vs reference',
                          **paired_on_frames(frames, per_frame[i], per_frame[ref[0]])})
        if floor[i] is not None and method != 'random':
            tests.append({'a': v, 'b': 'random', 'kind': 'vs random floor',
                          **paired_on_frames(frames, per_frame[i], floor[i])})
    best = max(rows, key=lambda r: r['auc_mean'] if r['auc_mean'] == r['auc_mean'] else -1e300)
    return {'sweep': kind, 'parameter': spec.key, 'method': method, 'reference': spec.reference,
            'metric': 'output-change deletion AUC 0-25 % (|u_masked - u_unmasked|, deg x %)',
            'rows': rows, 'tests': tests, 'best_value_by_auc': best['value'],
            'units': report['units'], 'report': 'report/report.md'}


def markdown(summary: dict) -> str:
    """Render a sweep summary as Markdown."""
    p = summary['parameter']
    lines = [f'# Sweep of {p}', '',
             f'Method: {summary["method"]}, trained in fp32. Headline: output-change deletion '
             f'AUC 0-25 % (|u_masked - u_unmasked| in deg x percentage point, mean of per-frame '
             f'AUCs; higher = more faithful), with the random floor (10x20 cells) on the same '
             f'model; the paper\'s AUC against the label for comparison; MAE in steering-wheel '
             f'degrees. Full report: [{summary["report"]}]({summary["report"]}).', '',
             f'| {p} | Δu AUC 0-25 % | +- SEM | random floor | label AUC 0-25 % | '
             f'Δu AUC 0-100 % | MAE [deg] | sign saturation | frames |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in summary['rows']:
        lines.append(f'| {r["value"]} | {_f(r["auc_mean"], 1)} | {_f(r["auc_sem"], 1)} | '
                     f'{_f(r["random_auc_mean"], 1)} | {_f(r["label_auc_mean"], 1)} | '
                     f'{_f(r["auc_100"], 0)} | {_f(r["mae_deg"], 2)} | '
                     f'{_f(r["sign_saturation"], 3)} | {r["frames"]} |')
    lines += ['', f'Highest output-change AUC at {p} = {summary["best_value_by_auc"]}. Paper '
              '(AUC against the label): bits, highest at 10 (Fig. 7a); temperature, T = 0.1 vs '
              'T = 1 not significant (Welch p = 0.193).', '',
              '## Paired comparisons (per-frame output-change AUC 0-25 %, batch-means t-test)', '',
              '| a | b | test | mean a | mean b | a - b | 95 % CI | p | units (df) | '
              'p (Wilcoxon) |',
              '|---|---|---|---|---|---|---|---|---|---|']
    for t in summary['tests']:
        lines.append(f'| {t["a"]} | {t["b"]} | {t["kind"]} | {_f(t["mean_a"], 1)} | '
                     f'{_f(t["mean_b"], 1)} | {_f(t["mean_diff"], 1)} | '
                     f'[{_f(t["ci_low"], 1)}, {_f(t["ci_high"], 1)}] | {_f(t["p"], 4)} | '
                     f'{t["units"]} ({t["df"]}) | {_f(t["wilcoxon_p"], 4)} |')
    lines += ['', f'![sweep](sweep_{summary["sweep"]}.png)', '']
    return '\n'.join(lines)


def _f(v, digits: int) -> str:
    if v is None or v != v:
        return 'n/a'
    return f'{v:.{digits}f}'
