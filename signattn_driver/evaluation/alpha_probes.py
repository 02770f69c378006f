"""Probes of what alpha does inside a trained network, without retraining it.

    memory_view(model, drives)        # how much of each cell the LSTM reads, against alpha = 1/L
    score_swap(model, drives)         # the same weights under each attention score
    alpha_ablation(model, drives)     # which part of alpha the accuracy uses

Each streams the drives as the node does (`contribution_study.trace_drives`: one frame at a
time from f_init of each segment, eval mode) and reports accuracy or mass, not phi agreement
alone: they ask what a score's alpha is worth to the command, where contribution_study asks
whether the map shows what the command is made of (docs/model.md, "A score read from the head").
"""

import dataclasses

import numpy as np
import torch

from signattn_driver.evaluation.contribution_agreement import summarize_agreement
from signattn_driver.evaluation.contribution_study import (
    accuracy, cell_index, frame_command, trace_drives)
from signattn_driver.model import MAP_HEIGHT, MAP_WIDTH, NUM_LOCATIONS


@torch.inference_mode()
def memory_view(model, drives: list, every: int = 5, faded: float = 0.1,
                commands: bool = True) -> dict:
    """How much of each cell reaches the LSTM as alpha shapes it, against alpha = 1/L.

    X^_t feeds both the head and the LSTM. Where alpha acts, a cell with small alpha reaches
    the memory faintly (mean_field: hardtanh(kappa L alpha x), so about L alpha times its
    uniform size). For every `every`-th frame, streamed as the node runs (a command model hears
    the recorded commands, or follow-lane throughout if `commands` is False), the mass of a
    cell is sum_c |X^_t[l, c]|, with the frame's alpha (and gain) and with alpha = 1/L.

    Returns:
        {'memory_input': what this model's LSTM reads ('attended' or 'uniform'),
         'row_share_attended' / 'row_share_uniform': mean share of the mass per map row (10,),
         'mass_ratio': mean over frames of total attended mass / total uniform mass,
         'faded_cells': mean share of cells whose attended mass is below `faded` x their
            uniform mass (what alpha all but hides from an 'attended' memory),
         'frames': n}.
    """
    model.eval()
    rows_att, rows_uni, ratio, hidden = [], [], [], []
    for d in drives:
        state = None
        for t in range(len(d.inputs)):
            x = d.inputs[t:t + 1]
            command = frame_command(model, d, t, commands)
            out = model.explain_step(x, state, command)
            if t % every == 0:
                feats = model.encode(x)
                acting = out.alpha.flatten(1)
                if out.gain is not None:
                    acting = acting * out.gain[:, None]
                flat = torch.full_like(acting, 1.0 / NUM_LOCATIONS)
                mass = [model.attend(feats, a).view(1, NUM_LOCATIONS, -1).abs().sum(-1)[0]
                        for a in (acting, flat)]
                att, uni = (m.double().view(MAP_HEIGHT, MAP_WIDTH).numpy() for m in mass)
                rows_att.append(att.sum(1) / max(att.sum(), 1e-12))
                rows_uni.append(uni.sum(1) / max(uni.sum(), 1e-12))
                ratio.append(att.sum() / max(uni.sum(), 1e-12))
                hidden.append(float((att < faded * uni)[uni > 0].mean()) if (uni > 0).any()
                              else 0.0)
            state = out.state
    return {'memory_input': model.config.memory_input,
            'row_share_attended': np.mean(rows_att, 0).tolist(),
            'row_share_uniform': np.mean(rows_uni, 0).tolist(),
            'mass_ratio': float(np.mean(ratio)), 'faded_cells': float(np.mean(hidden)),
            'frames': len(ratio)}


SWAPS = ('learned', 'head', 'both', 'uniform')


def score_swap(model, drives: list, commands: bool = True) -> dict:
    """Run one network with each attention score in turn: what its own alpha is worth.

    The same weights (a checkpoint keeps the learned score's weights under every score) with
    attention_score 'learned', 'head' and 'both', and with alpha = 1/L ('uniform': T -> inf),
    no retraining. Where alpha acts, this says how much of the network's accuracy rests on
    the alpha it was trained with, and what another score's map would cost or agree.

    Returns:
        {score: {accuracy (see `accuracy`), 'alpha_vs_phi': summarize_agreement, 'own': bool}}.
    """
    own = model.config
    out = {}
    try:
        for score in SWAPS:
            model.config = (dataclasses.replace(own, temperature=float('inf'))
                            if score == 'uniform'
                            else dataclasses.replace(own, attention_score=score))
            trace = trace_drives(model, drives, uniform_reference=False, commands=commands)
            out[score] = {**accuracy(trace), 'own': score == own.attention_score,
                          'alpha_vs_phi': summarize_agreement(trace['alpha'], trace['phi'])}
    finally:
        model.config = own
    return out


def alpha_ablation(model, drives: list, cell=(9, 0), gains=(1.0, 0.7, 0.4),
                   commands: bool = True) -> dict:
    """Replace how alpha acts, keep the weights: which part of a score's alpha the accuracy uses.

    Each variant changes only the attention that acts on the features (`SteeringNet._acting`);
    the map reported and the rest of the step are unchanged. For every score in
    ('learned', 'head') and every gain g in `gains`:
      '<score> x g':               g alpha (a global strength on that score's map);
      'learned, cell emptied':     the learned alpha with `cell`'s weight set to 0, the others
                                   as they were (what parking there leaves to the others);
      'learned, cell renormalised': the same, rescaled to sum to 1 (the shape without the
                                   strength that parking took away);
      'flat x g':                  g / L on every cell.

    Returns:
        {variant: accuracy (see `accuracy`)}.
    """
    own_config = model.config
    index = cell_index(cell)

    def emptied(renormalise):
        def acting(alpha, h, route):
            kept = torch.cat([alpha[:, :index], torch.zeros_like(alpha[:, :1]),
                              alpha[:, index + 1:]], 1)
            return kept / kept.sum(-1, keepdim=True) if renormalise else kept
        return acting

    variants = {}
    for g in gains:
        for score in ('learned', 'head'):
            variants[f'{score} x {g:g}'] = (score, lambda a, h, r, g=g: a * g)
        variants[f'flat x {g:g}'] = ('learned',
                                     lambda a, h, r, g=g: torch.full_like(a, g / a.shape[-1]))
    variants['learned, cell emptied'] = ('learned', emptied(False))
    variants['learned, cell renormalised'] = ('learned', emptied(True))
    out = {}
    try:
        for name, (score, acting) in variants.items():
            model.config = dataclasses.replace(own_config, attention_score=score)
            model._acting = acting
            out[name] = accuracy(trace_drives(model, drives, uniform_reference=False,
                                              commands=commands))
    finally:
        model.config = own_config
        model.__dict__.pop('_acting', None)      # back to the class's method
    return {'cell': list(cell), 'variants': out}
