"""Measurements around the contribution map phi: streaming it over drives, probing the attention.

    drives = open_drives('outputs/phi/heldout/dataset', 'val')
    trace = trace_drives(model, drives)                 # alpha, phi, u, labels of every frame
    agreement_report(trace)                             # alpha vs |phi| (contribution_agreement)
    diagnose_attention(model, drives)                   # why alpha piles onto one cell
    reach_of_frame(model, drives)                       # how far a frame reaches through h_t

Every function runs the model as the node does: one frame at a time from (h_0, c_0) =
f_init(frame 0) of each time-contiguous segment, in eval mode (dropout off, expected signs), so
phi is exactly what `SteeringNet.explain_step` and `Predictor.step_full` return.
"""

from dataclasses import dataclass
import logging

import numpy as np
import torch

from signattn_driver.data.dataset import Dataset
from signattn_driver.data.sequences import SequenceIndex
from signattn_driver.evaluation.contribution_agreement import modal_cell, summarize_agreement
from signattn_driver.evaluation.statistics import paired_batch_test
from signattn_driver.model import MAP_HEIGHT, MAP_WIDTH, NUM_LOCATIONS
from signattn_driver.preprocessing import hsv_u8_to_input
from signattn_driver.vehicle import steering_from_inverse_radius

LOG = logging.getLogger(__name__)


@dataclass
class DriveFrames:
    """One time-contiguous segment: network input and labels."""

    drive: str
    inputs: torch.Tensor          # (T, 3, 80, 160) float network input
    u_label: np.ndarray           # (T,) 1/m
    deg_per_u: np.ndarray         # (T,) steering-wheel degrees per 1/m at the frame's speed
    route_command: np.ndarray     # (T,) uint8 route command in force (follow-lane if unrecorded)


def open_drives(data_dir, split: str = 'val', camera: str = 'center',
                max_frames: int | None = None) -> list:
    """Read every segment of a split of a dataset into memory (uint8 -> network input).

    Args:
        data_dir: dataset folder (manifest.json).
        split: manifest split to read.
        camera: camera name.
        max_frames: stop after about this many frames (whole segments, in dataset order).

    Returns:
        list of DriveFrames.
    """
    index = SequenceIndex([Dataset(data_dir)], camera=camera, splits=(split,))
    out, total = [], 0
    for seg in index.segments:
        win = index.window(seg, 0, len(seg))
        deg = np.degrees(steering_from_inverse_radius(1.0, win['speed_smoothed_mps'],
                                                      index.vehicle(seg)))
        out.append(DriveFrames(seg.drive, hsv_u8_to_input(torch.from_numpy(win['frames'])),
                               win['inverse_radius_per_m'].astype(np.float64), deg,
                               np.asarray(win['route_command'], dtype=np.int64)))
        total += len(seg)
        if max_frames is not None and total >= max_frames:
            break
    return out


def step_parts(model, feats: torch.Tensor, alpha: torch.Tensor, h: torch.Tensor,
               command=None):
    """Return u (B,) and phi (B, 10, 20) of one step with a given attention (B, L).

    The same arithmetic as `SteeringNet._step` (eq. 10) with alpha replaced: what the command
    would be had the attention been `alpha` for this frame and state. `command` (B,) is the
    route command of a command model (None: follow-lane; camera-only models ignore it).
    """
    phi, bias = model.contribution_with(feats, alpha, h, command)
    return phi.sum((-2, -1)) + bias, phi


def uniform_contribution(model, inputs: torch.Tensor, state, commands=None) -> torch.Tensor:
    """Return phi (B, 10, 20) of frames (B, 3, 80, 160) from `state` with alpha = 1/L.

    Where alpha acts on u ('soft', 'mean_field', 'gated') phi grows where alpha is high, so a
    map's agreement with phi is partly built in; phi at uniform alpha is free of that.
    `commands` (B,): each frame's route command for a command model (None: follow-lane).
    """
    feats = model.encode(inputs)
    if state is None:
        state = model.initial_state_from_features(feats)
    flat = feats.new_full(feats.shape[:2], 1.0 / NUM_LOCATIONS)
    return step_parts(model, feats, flat, state[0], commands)[1]


def frame_command(model, drive, t: int, commands: bool):
    """Return frame t's recorded route command (1,) for a command model, else None."""
    if not (commands and model.config.num_commands):
        return None
    return torch.tensor([int(drive.route_command[t])])


@torch.inference_mode()
def trace_drives(model, drives: list, uniform_reference: bool = True,
                 commands: bool = True, saturation: bool = False) -> dict:
    """Run each segment frame by frame and keep u, alpha and phi of every frame.

    Args:
        model: SteeringNet, in eval mode.
        drives: from `open_drives`.
        uniform_reference: also compute phi_uniform, phi of the same frame and state with
            alpha = 1/L (the reference for models whose alpha acts on u).
        commands: a command model gets each frame's recorded route command (datasets without
            the column record follow-lane); False: follow-lane on every frame. Camera-only
            models ignore it.
        saturation: also keep each frame's share of saturated sign inputs,
            |kappa L alpha x| >= 1 (`SteeringNet.sign_saturation`; NaN without a sign path).

    Returns:
        dict of numpy arrays over all N frames: u_pred, u_label, deg_per_u (N,); alpha, phi,
        bias as (N, 10, 20) / (N,); phi_uniform (N, 10, 20) and sign_saturation (N,) when
        asked; gain (N,) for a model with an attention gain (`Explained.gain`); drive (N,)
        names; first (N,) True on each segment's first frame.
    """
    model.eval()
    keep = {k: [] for k in ('u_pred', 'alpha', 'phi', 'bias', 'phi_uniform',
                            'sign_saturation', 'gain')}
    drive_names, first, labels, deg = [], [], [], []
    for d in drives:
        state = None
        for t in range(len(d.inputs)):
            x = d.inputs[t:t + 1]
            command = frame_command(model, d, t, commands)
            if uniform_reference:
                keep['phi_uniform'].append(uniform_contribution(model, x, state, command))
            if saturation:
                keep['sign_saturation'].append(model.sign_saturation(x, state, command))
            out = model.explain_step(x, state, command)
            state = out.state
            keep['u_pred'].append(out.u)
            keep['alpha'].append(out.alpha)
            keep['phi'].append(out.contribution)
            keep['bias'].append(out.bias)
            if out.gain is not None:
                keep['gain'].append(out.gain)
        drive_names += [d.drive] * len(d.inputs)
        first += [True] + [False] * (len(d.inputs) - 1)
        labels.append(d.u_label)
        deg.append(d.deg_per_u)
    trace = {k: torch.cat(v).double().numpy() for k, v in keep.items() if v}
    trace.update(u_label=np.concatenate(labels), deg_per_u=np.concatenate(deg),
                 drive=np.asarray(drive_names), first=np.asarray(first))
    return trace


TURNING_U_PER_M = 0.02   # |u| above this (a radius under 50 m) counts as a turn in `accuracy`


def accuracy(trace: dict) -> dict:
    """MAE of u (1/m) and of the steering-wheel angle (deg) over the traced frames.

    Also the steering MAE apart on frames where the label turns (|u_label| >
    TURNING_U_PER_M) and on the others, with the turning frames' count: under follow-lane a
    command model cannot know the turns a route takes, and this says where its error sits.
    """
    err = trace['u_pred'] - trace['u_label']
    deg = np.abs(err * trace['deg_per_u'])
    turning = np.abs(trace['u_label']) > TURNING_U_PER_M
    return {'mae_u_per_m': float(np.abs(err).mean()),
            'mae_steering_deg': float(deg.mean()),
            'turning_frames': int(turning.sum()),
            'mae_steering_deg_turning': float(deg[turning].mean()) if turning.any() else None,
            'mae_steering_deg_elsewhere': (float(deg[~turning].mean()) if (~turning).any()
                                           else None)}


def paired_error(trace: dict, reference: dict) -> dict:
    """Steering error of `trace` against `reference` on the same frames, paired (deg).

    Per frame, |error| in steering-wheel degrees of each model; their difference is tested
    with `paired_batch_test`, each contiguous segment one run (a drive's frames are one piece
    of evidence; with several segments every segment is one unit). mean_diff > 0: `trace`
    errs more. output_gap_deg: the mean |u - u_reference| in steering degrees, how far the two
    models steer apart whatever the label (a student against its teacher).

    Raises:
        ValueError: the traces are not of the same frames (labels or segments differ).
    """
    if (len(trace['u_label']) != len(reference['u_label'])
            or not np.array_equal(trace['u_label'], reference['u_label'])
            or not np.array_equal(trace['first'], reference['first'])):
        raise ValueError('paired_error needs two traces of the same frames')
    err = np.abs(trace['u_pred'] - trace['u_label']) * trace['deg_per_u']
    ref = np.abs(reference['u_pred'] - reference['u_label']) * reference['deg_per_u']
    gap = np.abs(trace['u_pred'] - reference['u_pred']) * trace['deg_per_u']
    return {**paired_batch_test(err, ref, runs=np.cumsum(trace['first'])),
            'output_gap_deg': float(gap.mean())}


def agreement_report(trace: dict) -> dict:
    """Judge alpha against |phi| (and |phi at uniform alpha|), with the MAE, per drive too."""
    out = {'frames': int(len(trace['alpha'])), 'drives': sorted(set(trace['drive'].tolist())),
           **accuracy(trace), 'alpha_vs_phi': summarize_agreement(trace['alpha'], trace['phi'])}
    if 'phi_uniform' in trace:
        out['alpha_vs_phi_uniform'] = summarize_agreement(trace['alpha'], trace['phi_uniform'])
    out['per_drive'] = {}
    for name in out['drives']:
        mine = trace['drive'] == name
        part = accuracy({k: trace[k][mine] for k in ('u_pred', 'u_label', 'deg_per_u')})
        out['per_drive'][name] = {
            'mae_u_per_m': part['mae_u_per_m'], 'mae_steering_deg': part['mae_steering_deg'],
            **summarize_agreement(trace['alpha'][mine], trace['phi'][mine])}
    out['effective_cells'] = {'alpha': effective_cells(trace['alpha']),
                              'phi': effective_cells(np.abs(trace['phi']))}
    out['alpha_peak_mass'] = peak_mass(trace['alpha'])
    if 'sign_saturation' in trace:
        out['sign_saturation'] = float(np.nanmean(trace['sign_saturation']))
    if 'gain' in trace:   # how much the attention gain varies from frame to frame
        g = trace['gain']
        out['attention_gain'] = {'mean': float(g.mean()), 'sd': float(g.std()),
                                 'p5': float(np.percentile(g, 5)),
                                 'p95': float(np.percentile(g, 95)),
                                 'per_drive_mean': {name: float(g[trace['drive'] == name].mean())
                                                    for name in out['drives']}}
    return out


def peak_mass(alpha: np.ndarray) -> dict:
    """Mean and median over frames of the attention's largest cell weight, alpha (N, 10, 20).

    A learned alpha that parks most of its mass on one cell scales every other cell's sign
    input kappa L alpha x down by about 1 - peak: a global gain on the sign path
    (docs/model.md, "Why alpha piled onto the bottom-left cell").
    """
    peak = alpha.reshape(len(alpha), -1).max(1)
    return {'mean': float(peak.mean()), 'median': float(np.median(peak))}


def effective_cells(maps: np.ndarray) -> float:
    """Mean over frames of exp(entropy) of maps (N, 10, 20) >= 0 normalised per frame."""
    p = maps.reshape(len(maps), -1)
    p = p / np.maximum(p.sum(1, keepdims=True), 1e-30)
    return float(np.exp(-(p * np.log(np.maximum(p, 1e-30))).sum(1)).mean())


def cell_index(cell) -> int:
    """Row-major index of a map cell (row, column)."""
    return int(cell[0]) * MAP_WIDTH + int(cell[1])


@torch.inference_mode()
def diagnose_attention(model, drives: list, cell=None) -> dict:
    """Probe why alpha's top cell is where it is (docs/model.md, "The contribution map").

    Per frame, with the state the unmasked stream produced:
    - feature norm ||x_l|| of every cell (conv5 output, 64 channels);
    - the state-free attention score w . tanh(W_g x_l) + b (h_{t-1} = 0) and alpha with h = 0;
    - alpha and |phi| shares of `cell` (default: alpha's modal cell);
    - the sink test: remove the cell's alpha and renormalise the rest (u changes when the mass
      parked there set the gain of every other cell), or remove it without renormalising (u
      changes when the cell itself carries u);
    - replicate instead of zero padding in every convolution (is the border an artifact of the
      padding?);
    - alpha's modal share on each segment's first 5 frames (f_init) against the rest.

    Returns:
        dict of scalars and (10, 20) maps as nested lists.
    """
    model.eval()
    alpha_maps, phi_maps, norms, free_scores, free_alpha = [], [], [], [], []
    u_all, u_renorm, u_removed, first = [], [], [], []
    states_h, feats_all = [], []
    for d in drives:
        state = None
        for t in range(len(d.inputs)):
            x = d.inputs[t:t + 1]
            feats = model.encode(x)                                          # (1, L, C)
            if state is None:
                state = model.initial_state_from_features(feats)
            states_h.append(state[0])
            feats_all.append(feats)
            out = model.explain_step(x, state)
            state = out.state
            alpha_maps.append(out.alpha.flatten(1))
            phi_maps.append(out.contribution.flatten(1))
            u_all.append(out.u)
            norms.append(feats.norm(dim=-1))
            att = model.attention
            score = att.score(torch.tanh(att.feature_proj(feats))).squeeze(-1)   # (1, L)
            free_scores.append(score)
            free_alpha.append(torch.softmax(score / model.config.temperature, -1))
            first.append(t < 5)
    alpha = torch.cat(alpha_maps)
    phi = torch.cat(phi_maps)
    if cell is None:
        cell = modal_cell(alpha.view(-1, MAP_HEIGHT, MAP_WIDTH).numpy())[0]
    k = cell_index(cell)
    feats = torch.cat(feats_all)
    h = torch.cat(states_h)
    a_renorm = alpha.clone()
    a_renorm[:, k] = 0
    a_removed = a_renorm.clone()
    a_renorm /= a_renorm.sum(1, keepdim=True)
    for lo in range(0, len(feats), 256):
        sl = slice(lo, lo + 256)
        u_renorm.append(step_parts(model, feats[sl], a_renorm[sl], h[sl])[0])
        u_removed.append(step_parts(model, feats[sl], a_removed[sl], h[sl])[0])
    u = torch.cat(u_all)
    mean_abs_u = float(u.abs().mean())
    norms = torch.cat(norms)
    free = torch.cat(free_scores)
    first = np.asarray(first)
    alpha_np = alpha.view(-1, MAP_HEIGHT, MAP_WIDTH).numpy()
    abs_phi = phi.abs()
    phi_share = abs_phi / abs_phi.sum(1, keepdim=True).clamp_min(1e-30)
    norm_map = norms.mean(0)
    free_map = free.mean(0)
    out = {
        'frames': int(len(alpha)), 'cell': list(cell),
        'alpha_modal': modal_cell(alpha_np), 'phi_modal': modal_cell(abs_phi.view(
            -1, MAP_HEIGHT, MAP_WIDTH).numpy()),
        'alpha_share_of_cell': float(alpha[:, k].mean()),
        'phi_share_of_cell': float(phi_share[:, k].mean()),
        'feature_norm_of_cell': float(norm_map[k]),
        'feature_norm_median_over_cells': float(norm_map.median()),
        'feature_norm_rank_of_cell': int((norm_map < norm_map[k]).sum()) + 1,
        'state_free_score_rank_of_cell': int((free_map > free_map[k]).sum()) + 1,
        'state_free_alpha_modal': modal_cell(torch.cat(free_alpha).view(
            -1, MAP_HEIGHT, MAP_WIDTH).numpy()),
        'mean_abs_u_per_m': mean_abs_u,
        'sink_renormalised_mean_abs_du_rel': float((torch.cat(u_renorm) - u).abs().mean())
        / mean_abs_u,
        'sink_removed_mean_abs_du_rel': float((torch.cat(u_removed) - u).abs().mean())
        / mean_abs_u,
        'alpha_modal_first_5_frames': modal_cell(alpha_np[first]) if first.any() else None,
        'alpha_modal_later_frames': modal_cell(alpha_np[~first]) if (~first).any() else None,
        'maps': {'feature_norm': norm_map.view(MAP_HEIGHT, MAP_WIDTH).tolist(),
                 'state_free_score': free_map.view(MAP_HEIGHT, MAP_WIDTH).tolist(),
                 'alpha_mean': alpha.mean(0).view(MAP_HEIGHT, MAP_WIDTH).tolist(),
                 'phi_share_mean': phi_share.mean(0).view(MAP_HEIGHT, MAP_WIDTH).tolist()},
    }
    out['replicate_padding'] = _padding_probe(model, drives, u, cell)
    return out


def _padding_probe(model, drives: list, u_zero_pad: torch.Tensor, cell) -> dict:
    """Return alpha's modal cell and |du| with replicate padding in every convolution."""
    convs = model.encoder.convs
    saved = [c.padding_mode for c in convs]
    try:
        for c in convs:
            c.padding_mode = 'replicate'
        trace = trace_drives(model, drives, uniform_reference=False)
    finally:
        for c, mode in zip(convs, saved):
            c.padding_mode = mode
    du = np.abs(trace['u_pred'] - u_zero_pad.double().numpy())
    k = cell_index(cell)
    return {'alpha_modal': modal_cell(trace['alpha']),
            'alpha_share_of_cell': float(trace['alpha'].reshape(len(du), -1)[:, k].mean()),
            'mean_abs_du_rel': float(du.mean() / np.abs(u_zero_pad.double().numpy()).mean()),
            'alpha_vs_phi': summarize_agreement(trace['alpha'], trace['phi'])}


@torch.inference_mode()
def reach_of_frame(model, drives: list, horizon: int = 5, every: int = 5) -> dict:
    """How much frame t reaches later commands through h_t, which phi_t does not include.

    For every `every`-th frame t of each segment (1 <= t, t + horizon < T), replace frame t by
    frame t-1 (a plausible frame that carries none of t's news), keep frames t+1.. unchanged,
    and record |delta u_{t+k}| for k = 0..horizon against the unchanged stream.

    Returns:
        {'k': [0..horizon], 'mean_abs_du_per_m': [...], 'relative_to_k0': mean |du_{t+k}| /
        mean |du_t|, 'median_ratio_per_frame': median over t of |du_{t+k}| / |du_t|,
        'cumulative_later_over_k0': sum_{k>=1} mean |du_{t+k}| / mean |du_t|, 'samples': n}.
    """
    model.eval()
    rows = []
    for d in drives:
        n = len(d.inputs)
        if n < horizon + 2:
            continue
        feats = torch.cat([model.encode(d.inputs[i:i + 256]) for i in range(0, n, 256)])
        state = model.initial_state_from_features(feats[:1])
        us, before = [], []
        for t in range(n):
            before.append(state)
            u, _, state = model.step_features(feats[t:t + 1], state)
            us.append(u)
        us = torch.cat(us)
        starts = list(range(1, n - horizon, every))
        h = torch.cat([before[t][0] for t in starts])
        c = torch.cat([before[t][1] for t in starts])
        idx = torch.tensor(starts)
        swapped = (h, c)
        du = []
        for k in range(horizon + 1):
            f = feats[idx - 1] if k == 0 else feats[idx + k]
            u, _, swapped = model.step_features(f, swapped)
            du.append((u - us[idx + k]).abs())
        rows.append(torch.stack(du, 1))
    du = torch.cat(rows).double().numpy()                              # (S, horizon + 1)
    mean = du.mean(0)
    ratio = du / np.maximum(du[:, :1], 1e-12)
    return {'k': list(range(horizon + 1)), 'samples': int(len(du)),
            'mean_abs_du_per_m': mean.tolist(), 'relative_to_k0': (mean / mean[0]).tolist(),
            'median_ratio_per_frame': np.median(ratio, 0).tolist(),
            'cumulative_later_over_k0': float(mean[1:].sum() / mean[0])}
