"""The report.json blocks of an evaluation: header, accuracy, curves, agreement, commands.

Everything here turns per-frame records of `evaluation.evaluate` into the report's summaries;
nothing here runs a model. Units as in evaluate's module docstring.
"""

from dataclasses import asdict
import math
from pathlib import Path

import numpy as np
import torch

from signattn_driver.evaluation.contribution_agreement import (per_frame_agreement,
                                                               summarize_agreement)
from signattn_driver.evaluation.deletion import auc
from signattn_driver.evaluation.route_commands import command_counts, commands_to_feed
from signattn_driver.evaluation.statistics import summary
from signattn_driver.route_command import ROUTE_COMMANDS

AUC_LIMITS = (25.0, 100.0)   # the paper's Fig. 6 spans 0-25 % masked
# The headline faithfulness measure: per-frame output-change deletion AUC 0-25 %.
HEADLINE, HEADLINE_AUC = 'deletion_change', 'auc_25_deg_pct_per_frame'
PAPER = {
    'mae_steering_deg': {'sign (proposed)': 4.67, 'soft (Kim & Canny)': 4.94, 'none': 4.77},
    'deletion_auc_25_deg_pct': {'sign attention (proposed)': 162, 'soft attention': 141,
                                'gradcam': 140, 'lime': 154},
    'error_at_25_pct_deg': {'sign attention (proposed)': 8.35, 'soft attention': 7.43,
                            'gradcam': 6.63, 'lime': 6.33},
}


def contribution_block(agree: dict, model_config) -> dict:
    """Agreement of every method with |phi| and |phi at uniform alpha| (see module docstring)."""
    phi = torch.cat(agree['phi']).double().numpy()
    phi_uniform = torch.cat(agree['phi_uniform']).double().numpy()
    acting = model_config.attention == 'soft' or (
        model_config.attention == 'sign' and model_config.binarize in ('mean_field', 'gated'))
    block = {'alpha_acts': acting, 'frames': len(phi),
             'max_abs_reconstruction_error_per_m': float(max(agree['recon'])),
             'mean_abs_phi_sum_per_m': float(np.abs(phi).sum((1, 2)).mean()),
             'methods': {}}
    for method, chunks in agree['maps'].items():
        maps = torch.cat(chunks).double().numpy()
        entry = {'vs_phi': summarize_agreement(maps, phi)}
        if acting:
            entry['vs_phi_uniform_alpha'] = summarize_agreement(maps, phi_uniform)
        frame = per_frame_agreement(maps, phi)
        entry['per_frame'] = {k: np.round(frame[k], 5).tolist()
                              for k in ('spearman', 'share_top10', 'ratio_top10')}
        block['methods'][method] = entry
    return block


def curve_block(curves: np.ndarray, levels: np.ndarray) -> dict:
    """Mean curve, per-frame AUCs and summaries of (N, K) curves in degrees."""
    block = {'curve_deg': curves.mean(0).tolist(), 'curve_std_deg': curves.std(0).tolist()}
    j = int(np.argmin(np.abs(levels - 25.0)))
    for lim in AUC_LIMITS:
        per_frame = auc(levels, curves, lim)
        key = f'auc_{int(lim)}_deg_pct'
        block[key] = float(auc(levels, curves.mean(0), lim))
        block[f'{key}_per_frame'] = per_frame.tolist()
        block[f'{key}_summary'] = summary(per_frame)
        # Area above the zero-deletion level (0 for the output change, which starts at 0).
        above = auc(levels, curves - curves[:, :1], lim)
        block[f'{key}_above_baseline_summary'] = summary(above)
    block['error_at_25_pct_deg'] = float(curves[:, j].mean())
    return block


def method_summary(entry: dict, levels: np.ndarray, n_frames: int) -> dict:
    """Summarise one method's timing, curves per fill (primary fill on top) and mask share."""
    out = {'seconds_per_frame': entry['seconds'] / max(1, n_frames), 'fills': {}}
    for fill, kinds in entry['fills'].items():
        out['fills'][fill] = {kind: curve_block(np.concatenate(c), levels)
                              for kind, c in kinds.items() if c}
    out.update(next(iter(out['fills'].values())))    # the primary fill, as before
    if entry['mask_share']:
        out['mask_share'] = summary(entry['mask_share'])
    return out


def report_header(data_dir, splits, index, runs, config, dev) -> dict:
    """Describe the data, settings and units of a report, before any checkpoint.

    Args:
        data_dir: the dataset folder.
        splits: the splits evaluated.
        index: their data.sequences.SequenceIndex.
        runs: the evaluated runs (evaluate.plan_runs).
        config: the evaluate.EvalConfig it runs with.
        dev: the torch device.
    """
    return {
        'data': {'path': str(data_dir), 'splits': list(splits), 'camera': config.camera,
                 'segments': len(index.segments), 'runs': len(runs)},
        'config': plain(asdict(config)), 'device': str(dev),
        'units': {'u': '1/m', 'error': 'deg of steering-wheel angle (eq. 3 inverted at the '
                  'smoothed speed)', 'auc': 'deg x percentage point (x = percent masked, '
                  'trapezoid)', 'time': 's per frame'},
        'paper': PAPER, 'checkpoints': {}, 'tests': [],
    }


def checkpoint_entry(path, ckpt, rows, per, levels, agree, config) -> dict:
    """Build one checkpoint's part of the report: accuracy, methods' curves, phi agreement.

    `route_commands` says what the model was fed (`route_commands_block`);
    `accuracy_by_command` splits the accuracy by each frame's recorded command, and
    `headline_by_command` each method's headline AUC (primary fill) likewise.
    """
    n = len(rows['u_label'])
    err_u = np.asarray(rows['u_pred']) - np.asarray(rows['u_label'])
    err_deg = err_u * np.asarray(rows['deg_per_u'])
    recorded = np.asarray(rows['route_command'], np.int64)
    entry = {
        'path': str(path), 'sha256': ckpt.file_sha256, 'model_config': ckpt.config.to_dict(),
        'frames': n,
        'accuracy': accuracy(err_u, err_deg),
        'accuracy_by_command': {name: {'frames': int((recorded == c).sum()),
                                       **accuracy(err_u[recorded == c], err_deg[recorded == c])}
                                for c, name in enumerate(ROUTE_COMMANDS) if (recorded == c).any()},
        'methods': {m: method_summary(per[m], levels, n) for m in config.methods},
        'contribution': contribution_block(agree, ckpt.config),
        'u_pred': rows['u_pred'],
        'route_commands': route_commands_block(rows['route_command'], ckpt.config.num_commands,
                                               config.route_commands),
    }
    if config.curves:
        entry['headline_by_command'] = {
            m: {name: summary(np.asarray(s[HEADLINE][HEADLINE_AUC])[recorded == c])
                for c, name in enumerate(ROUTE_COMMANDS) if (recorded == c).any()}
            for m, s in entry['methods'].items()}
    if rows['mask_area']:
        entry['mask_area_share'] = summary(rows['mask_area'])
    if ckpt.config.attention == 'sign':
        # Share of |kappa L alpha x| >= 1 on the unmasked frames: hardtanh saturated in
        # 'mean_field' (alpha inert there), a plain sign elsewhere.
        entry['sign_saturation'] = summary(rows['sign_saturation'])
    return entry


def accuracy(err_u: np.ndarray, err_deg: np.ndarray) -> dict:
    """MAE and RMSE of per-frame errors in u (1/m) and in steering-wheel degrees, (N,) each."""
    return {'mae_u_per_m': float(np.abs(err_u).mean()),
            'rmse_u_per_m': float(np.sqrt((err_u ** 2).mean())),
            'mae_steering_deg': float(np.abs(err_deg).mean()),
            'rmse_steering_deg': float(np.sqrt((err_deg ** 2).mean()))}


def route_commands_block(recorded, num_commands: int, use_recorded: bool = True) -> dict:
    """Say what a checkpoint was fed over the scored frames.

    Args:
        recorded: (N,) recorded command of each scored frame.
        num_commands: the checkpoint's ModelConfig.num_commands (0: camera only).
        use_recorded: EvalConfig.route_commands.

    Returns:
        {'fed': bool, 'source': 'recorded' | 'follow_lane' | None, 'counts': {name: frames}
        fed, or None for a camera-only model}.
    """
    if not num_commands:
        return {'fed': False, 'source': None, 'counts': None}
    return {'fed': True, 'source': 'recorded' if use_recorded else 'follow_lane',
            'counts': command_counts(commands_to_feed(recorded, use_recorded))}


def plain(obj):
    """Make obj JSON-safe: tuples to lists, NaN/inf to None, numpy scalars to Python."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj
