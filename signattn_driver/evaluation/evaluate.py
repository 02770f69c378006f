"""Offline evaluation of checkpoints: accuracy, deletion/insertion metrics, timing, a report.

    evaluate(['runs/a/best.pt', 'runs/b/best.pt'], 'data/udacity', ['attention', 'gradcam'],
             'reports/cmp')
    -> reports/cmp/report.md, report.json and PNG figures

Frames: the dataset's drives of split `split` ('test'; 'val', then all drives, with a warning,
when a set has none), camera 'center', in stamp order, cut into time-contiguous segments
(signattn_driver.data.sequences). Each segment is run through the unmasked model frame by frame,
with (h_0, c_0) = f_init(frame 0) (eq. 13-14); every frame is explained and masked with the
state its unmasked predecessors produced (see signattn_driver.evaluation.deletion).
`limit_frames` picks
evenly spaced windows of `window_frames` frames instead, each preceded by `warmup_frames`
unmasked frames that set up the LSTM state. All checkpoints see the same frames, so their
per-frame AUC populations can be compared.

Route commands (evaluation.route_commands): a command model (ModelConfig.num_commands > 0) is
fed the recorded command of every frame (the dataset's `route_command` column; follow-lane
where a set has none), in the unmasked run that carries the LSTM state, its explanations
(attention, phi, Grad-CAM, LIME) and its masked copies; `route_commands=False` feeds follow-lane
throughout instead. A camera-only model is fed none and runs as before. report.json says what
was fed: `data.route_commands` (recorded commands of the scored frames), `frames.route_command`
(recorded, per frame), each checkpoint's `route_commands`; `accuracy_by_command` and
`headline_by_command` split the MAE and the headline AUC by recorded command.
`sign_saturation` alone still sees follow-lane (model.sign_saturation takes no command).

Agreement with the contribution map (every frame scored, also without curves): phi_t, the
exact split of u_t over the 10x20 cells (model.explain_step), is computed with the same state;
each method's map is averaged over each cell's 8x8 pixels (attention: alpha itself) and judged
against |phi| by evaluation.contribution_agreement (Spearman, top 5 %/10 % shares, modal cell).
Where alpha acts on u ('soft', 'mean_field', 'gated') phi grows where alpha is high, so the
agreement is partly built in: every map is also judged against phi at uniform alpha (same frame
and state, alpha = 1/L); the paper mode (alpha inert) is the clean test.

Units: u in 1/m; errors in degrees of steering-wheel angle, |theta(u_pred) - theta_label| with
theta from eq. 3 inverted at the frame's smoothed speed (Udacity's steering_wheel_angle, what the
paper's MAE table reports); AUCs in degree x percentage point (x in percent masked).

Curves (per method and per deletion fill): `deletion`/`insertion` are the paper's error against
the label; `deletion_change`/`insertion_change` the output change |u_masked - u_unmasked|, the
headline faithfulness measure. Methods are compared on per-frame paired differences with a
batch-means t-test over contiguous frames (`paired` in report.json; evaluation.comparisons);
Welch's unpaired test (`tests`) is kept only for the paper's comparison.
"""

from dataclasses import dataclass, field, replace
import json
import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from signattn_driver import checkpoint as ckpt_io
from signattn_driver.evaluation import report as report_io
from signattn_driver.evaluation.comparisons import paired_comparisons, welch_tests
from signattn_driver.evaluation.contribution_study import uniform_contribution
from signattn_driver.data.dataset import Dataset, DatasetError
from signattn_driver.evaluation.deletion import (deletion_curves, deletion_curves_sequence,
                                                 DeletionConfig, FILLS)
from signattn_driver.device import resolve_device
from signattn_driver.errors import EvaluationError
from signattn_driver.evaluation.explanations import (compute_maps, ExplainConfig, mass_inside,
                                                     METHODS)
from signattn_driver.preprocessing import hsv_u8_to_input
from signattn_driver.data.sequences import read_window, SequenceIndex
from signattn_driver.evaluation.report_blocks import checkpoint_entry, plain, report_header
from signattn_driver.evaluation.route_commands import (command_counts, commands_for,
                                                       commands_to_feed, recorded_commands,
                                                       step_with)
from signattn_driver.vehicle import steering_wheel_error_deg

LOG = logging.getLogger(__name__)
MODES = ('carried', 'sequence')
# Curve kinds: the paper's error against the label, and the output change (the headline).
CURVES = ('deletion', 'insertion', 'deletion_change', 'insertion_change')


@dataclass
class EvalConfig:
    """What to evaluate and how; defaults reproduce the paper's protocol."""

    methods: tuple = ('attention', 'gradcam', 'lime', 'random')
    split: str = 'test'
    camera: str = 'center'
    limit_frames: int | None = None   # evenly spaced windows instead of every frame
    window_frames: int = 20           # frames per evaluated window with limit_frames
    warmup_frames: int = 100          # unmasked frames before a window (5 s at 20 Hz)
    mode: str = 'carried'             # 'sequence': mask every frame of a window (see deletion)
    deletion: DeletionConfig = field(default_factory=DeletionConfig)
    # Deletion fills to score, each with its own curves; default (deletion.fill,). The first
    # fill is the primary one whose curves also sit at the top of each method's entry.
    fills: tuple | None = None
    explain: ExplainConfig = field(default_factory=ExplainConfig)
    examples: int = 4                 # frames shown in the overlay figure
    figures: bool = True
    # False: no deletion/insertion curves, only the (cheap) agreement of every map with phi.
    curves: bool = True
    # Feed a route-command model each frame's recorded command (follow-lane where a set has
    # none); False withholds them (follow-lane throughout: the model without its navigator).
    route_commands: bool = True

    def __post_init__(self):
        """Check methods and mode before any model is loaded."""
        self.methods = tuple(self.methods)
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise EvaluationError(f'unknown methods {bad}; choose from {list(METHODS)}')
        if self.mode not in MODES:
            raise EvaluationError(f'mode must be one of {MODES}, got {self.mode!r}')
        if self.limit_frames is not None and self.limit_frames < 1:
            raise EvaluationError('limit_frames must be >= 1')
        self.fills = tuple(self.fills or (self.deletion.fill,))
        bad = [f for f in self.fills if f not in FILLS]
        if bad:
            raise EvaluationError(f'unknown fills {bad}; choose from {list(FILLS)}')


@dataclass
class Run:
    """Frames [warm, stop) of a segment; [start, stop) are scored, [warm, start) only warm up."""

    segment: object
    warm: int
    start: int
    stop: int
    carry: bool = False   # start from the previous run's final state (back-to-back chunks)


def _index(data_dir, split: str, camera: str):
    dataset = Dataset(data_dir)
    for splits in ((split,), ('val',), ('train', 'val', 'test')):
        try:
            index = SequenceIndex([dataset], camera=camera, splits=splits)
        except DatasetError:
            continue
        if splits != (split,):
            LOG.warning('%s has no %r drives of camera %r; evaluating on %s instead', data_dir,
                        split, camera, 'val' if splits == ('val',) else 'all drives')
        return index, splits
    raise EvaluationError(f'{data_dir}: no frames of camera {camera!r} in any split')


def plan_runs(segments: list, limit_frames: int | None, window_frames: int,
              warmup_frames: int) -> list:
    """Cut segments into runs: every frame, or evenly spaced windows totalling limit_frames."""
    chunks = []
    for seg in segments:
        for a in range(0, len(seg), window_frames):
            chunks.append(Run(seg, a, a, min(a + window_frames, len(seg)), carry=a > 0))
    total = sum(c.stop - c.start for c in chunks)
    if limit_frames is None or limit_frames >= total:
        return chunks
    n = math.ceil(limit_frames / window_frames)
    picks = np.unique(np.linspace(0, len(chunks) - 1, n).round().astype(int)).tolist()
    # Short tail chunks can leave frames over: top up with the chunks not picked, in order.
    picks += [i for i in range(len(chunks)) if i not in set(picks)]
    runs, left = [], limit_frames
    for i in picks:
        c = chunks[i]
        stop = min(c.stop, c.start + left)
        runs.append(Run(c.segment, max(0, c.start - warmup_frames), c.start, stop))
        left -= stop - c.start
        if left <= 0:
            break
    return runs


def _label(paths) -> list:
    names = [Path(p).stem for p in paths]
    if len(set(names)) < len(names):
        names = [f'{Path(p).parent.name}_{Path(p).stem}' for p in paths]
    if len(set(names)) < len(names):
        names = [f'{i}_{n}' for i, n in enumerate(names)]
    return names


@torch.inference_mode()
def _unmasked(model, x: torch.Tensor, state, commands: torch.Tensor | None = None):
    """Run frames (T, 3, 80, 160) one by one; return u (T,), states before each, final state.

    commands: (T,) route command of each frame for a command model, or None.
    """
    if state is None:
        state = model.initial_state(x[:1])
    before_h, before_c, us = [], [], []
    for t in range(len(x)):
        before_h.append(state[0])
        before_c.append(state[1])
        command = None if commands is None else commands[t:t + 1]
        u, _, state = step_with(model.step, x[t:t + 1], state, command)
        us.append(u)
    return torch.cat(us), (torch.cat(before_h), torch.cat(before_c)), state


def _evaluate_checkpoint(model, runs, index, device, config: EvalConfig, progress: bool):
    from tqdm import tqdm
    per = {m: {'seconds': 0.0, 'mask_share': [],
               'fills': {f: {k: [] for k in CURVES} for f in config.fills}}
           for m in config.methods}
    rows = {'u_label': [], 'u_pred': [], 'deg_per_u': [], 'drive': [], 'stamp_ns': [],
            'mask_area': [], 'run': [], 'sign_saturation': [], 'route_command': []}
    examples = {'hsv': [], 'maps': {m: [] for m in config.methods}}
    agree = {'phi': [], 'phi_uniform': [], 'recon': [], 'maps': {m: [] for m in config.methods}}
    levels = None
    state = None
    for run_id, r in enumerate(tqdm(runs, desc='windows', unit='win', disable=not progress,
                                    leave=False)):
        seg = r.segment
        drive = index.datasets[seg.dataset].drive(seg.drive)
        win = read_window(drive, seg.rows[r.warm:r.stop])
        x_all = hsv_u8_to_input(torch.from_numpy(win['frames']).to(device))
        recorded = recorded_commands(win)                                 # (T,) int64
        fed = commands_to_feed(recorded, config.route_commands)
        commands_all = commands_for(model, fed, device)                   # None: camera only
        state = state if r.carry else None
        u_all, before, state = _unmasked(model, x_all, state, commands_all)
        s = r.start - r.warm
        x, u_pred = x_all[s:], u_all[s:]
        commands = None if commands_all is None else commands_all[s:]
        before = tuple(b[s:] for b in before)
        hsv = win['frames'][s:]
        u_label = win['inverse_radius_per_m'][s:].astype(np.float64)
        # steering-wheel degrees per 1/m of error in u at each frame's speed
        deg_per_u = steering_wheel_error_deg(1.0, 0.0, win['speed_smoothed_mps'][s:],
                                             index.vehicle(seg))
        masks = None
        if drive.mask_chunks:
            rows_ = seg.rows[r.start:r.stop]
            masks = torch.from_numpy(np.stack([drive.masks(int(i), int(i) + 1)[0]
                                               for i in rows_]))
            rows['mask_area'] += (masks > 0).flatten(1).double().mean(1).tolist()
        rows['u_label'] += u_label.tolist()
        rows['u_pred'] += u_pred.double().cpu().tolist()
        rows['deg_per_u'] += deg_per_u.tolist()
        rows['drive'] += [seg.drive] * len(x)
        rows['stamp_ns'] += [int(v) for v in win['stamp_ns'][s:]]
        # Windows are contiguous in time; the paired test never joins frames of two windows.
        rows['run'] += [run_id] * len(x)
        rows['route_command'] += recorded[s:].tolist()
        saturation = model.sign_saturation(x, before, commands)
        rows['sign_saturation'] += saturation.double().cpu().tolist()
        with torch.inference_mode():
            explained = model.explain_step(x, before, commands)
            agree['phi'].append(explained.contribution.cpu())
            agree['phi_uniform'].append(uniform_contribution(model, x, before, commands).cpu())
            rebuilt = explained.contribution.sum((-2, -1)) + explained.bias
            agree['recon'].append((rebuilt - u_pred).abs().max().item())
        need = config.examples - len(examples['hsv'])
        if need > 0:
            examples['hsv'] += list(hsv[:need])
        for method in config.methods:
            maps, secs = compute_maps(method, model, x, before, hsv, config.explain,
                                      seed_offset=len(rows['u_label']), commands=commands)
            per[method]['seconds'] += secs
            if need > 0:
                examples['maps'][method] += list(maps[:need].numpy())
            agree['maps'][method].append(explained.alpha.cpu() if method == 'attention'
                                         else cell_means(maps))
            if masks is not None:
                per[method]['mask_share'] += mass_inside(maps, masks).tolist()
            if not config.curves:
                continue
            for fill in config.fills:
                dcfg = replace(config.deletion, fill=fill)
                if config.mode == 'carried':
                    res = deletion_curves(model, x, maps, u_label, before, dcfg, deg_per_u,
                                          commands)
                else:
                    res = deletion_curves_sequence(model, x, maps, u_label, None, dcfg,
                                                   deg_per_u, commands)
                change_del, change_ins = res.output_change()
                curves = per[method]['fills'][fill]
                curves['deletion'].append(res.deletion)
                curves['deletion_change'].append(change_del)
                if res.insertion is not None:
                    curves['insertion'].append(res.insertion)
                    curves['insertion_change'].append(change_ins)
            levels = res.levels_percent
    return per, rows, examples, levels, agree


def cell_means(maps: torch.Tensor) -> torch.Tensor:
    """Mean of full-resolution maps (N, 80, 160) over each map cell's 8x8 pixels: (N, 10, 20)."""
    return F.avg_pool2d(maps[:, None].float(), 8)[:, 0]


def evaluate(checkpoints, data_dir, methods=None, out_dir='reports/eval', device='auto',
             limit_frames=None, config: EvalConfig | None = None, progress: bool = False) -> dict:
    """Evaluate checkpoints on a dataset and write report.md, report.json and figures.

    Args:
        checkpoints: checkpoint paths (signattn_driver.checkpoint format).
        data_dir: dataset folder (signattn_driver.data.dataset format).
        methods: saliency methods (explanation.METHODS); overrides config.methods.
        out_dir: report folder (created).
        device: 'auto' | 'cpu' | 'cuda' | 'cuda:N'.
        limit_frames: evaluate about this many frames (evenly spaced windows); overrides config.
        config: EvalConfig for everything else.
        progress: show tqdm bars (CLI).

    Returns:
        The report dict also written to report.json.

    Raises:
        EvaluationError, checkpoint.CheckpointError, dataset.DatasetError.
    """
    changes = {}
    if methods is not None:
        changes['methods'] = tuple(methods)
    if limit_frames is not None:
        changes['limit_frames'] = limit_frames
    # A copy: the caller's config is never changed (replace() runs __post_init__'s checks).
    config = replace(config or EvalConfig(), **changes)
    checkpoints = [Path(p) for p in checkpoints]
    if not checkpoints:
        raise EvaluationError('give at least one checkpoint')
    dev = resolve_device(device)
    index, splits = _index(data_dir, config.split, config.camera)
    runs = plan_runs(index.segments, config.limit_frames, config.window_frames,
                     config.warmup_frames)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = _label(checkpoints)
    report = report_header(data_dir, splits, index, runs, config, dev)
    all_examples = {}
    for name, path in zip(names, checkpoints):
        model, ckpt = ckpt_io.load_model(path, map_location='cpu')
        model.to(dev)
        LOG.info('evaluating %s (%s) on %d runs', name, ckpt.config.attention, len(runs))
        per, rows, examples, levels, agree = _evaluate_checkpoint(model, runs, index, dev,
                                                                  config, progress)
        report['checkpoints'][name] = checkpoint_entry(path, ckpt, rows, per, levels, agree,
                                                       config)
        report.setdefault('frames', {'drive': rows['drive'], 'stamp_ns': rows['stamp_ns'],
                                     'u_label': rows['u_label'], 'run': rows['run'],
                                     'route_command': rows['route_command']})
        # The same frames for every checkpoint: their recorded commands, fed or not.
        report['data'].setdefault('route_commands', command_counts(rows['route_command']))
        all_examples[name] = examples
        del model
    report['levels_percent'] = [] if levels is None else levels.tolist()
    if config.curves:
        report['tests'] = welch_tests(report)
        report['paired'] = paired_comparisons(report, config.fills, config.methods)
    if config.figures and config.curves:
        report['figures'] = report_io.figures(report, all_examples, out_dir)
    (out_dir / 'report.json').write_text(json.dumps(plain(report), indent=1))
    (out_dir / 'report.md').write_text(report_io.markdown(report))
    return report
