"""Validation: the model over whole segments (state carried as the node does) and its errors."""

import numpy as np
import torch

from signattn_driver.data.sequences import DriveSequences, make_episodes, SequenceIndex
from signattn_driver.model import entropy_of_attention, SteeringNet
from signattn_driver.preprocessing import hsv_u8_to_input
from signattn_driver.training.config import TrainConfig
from signattn_driver.training.data import make_loader
from signattn_driver.training.distributed import autocast
from signattn_driver.vehicle import steering_wheel_error_deg


@torch.inference_mode()
def predict_segments(model: SteeringNet, index: SequenceIndex, segments: list,
                     config: TrainConfig, device: torch.device):
    """Run the model over whole segments, state carried from each segment's first frame.

    This is what `Predictor` computes frame by frame, batched over segments.

    Returns:
        (u list of (n_i,) float64 arrays, mean attention entropy in nats or nan for "none").
    """
    was_training = model.training
    model.eval()
    episodes = make_episodes(segments, config.sequence_length, 0)
    data = DriveSequences(index, segments, episodes)
    order = sorted(range(len(episodes.episodes)), key=lambda e: -len(episodes.episodes[e]))
    batches, plan = [], []
    for g in range(0, len(order), config.batch_size):
        ids = order[g:g + config.batch_size]
        length = len(episodes.episodes[ids[0]])
        for k in range(length):
            batches.append([episodes.episodes[e][k] if k < len(episodes.episodes[e]) else -1
                            for e in ids])
            plan.append((ids, k))
    outputs = [[] for _ in segments]
    entropy_sum, entropy_n = 0.0, 0
    state = None
    for (ids, k), batch in zip(plan, make_loader(data, batches, config, device)):
        x = hsv_u8_to_input(batch['frames'].to(device, non_blocking=True))   # (B, T, 3, 80, 160)
        with autocast(device, config.amp):
            commands = batch['route_command'].to(device) if model.config.num_commands else None
            u, attention, state = model(x, None if k == 0 else state, commands=commands)
        valid = batch['valid']
        u = u.float().cpu()
        for lane, e in enumerate(ids):
            if k < len(episodes.episodes[e]):
                outputs[e].append(u[lane][valid[lane]].double().numpy())
        if model.config.attention != 'none':
            p = attention.float()[valid.to(device)]
            entropy_sum += float(entropy_of_attention(p)) * len(p)
            entropy_n += len(p)
    model.train(was_training)
    us = [np.concatenate(o) if o else np.zeros(0) for o in outputs]
    return us, (entropy_sum / entropy_n if entropy_n else float('nan'))


def validation_metrics(index: SequenceIndex, segments: list, predictions: list) -> dict:
    """MAE of u (1/m) and of the steering-wheel angle (deg, eq. 3 inverted with the speed)."""
    err_u, err_deg = [], []
    for seg, u_pred in zip(segments, predictions):
        w = index.labels(seg)
        vehicle = index.vehicle(seg)
        err_u.append(np.abs(u_pred - w['inverse_radius_per_m']))
        # the label u is eq. 3 of the smoothed angle and speed, so this is the angle's error
        err_deg.append(np.abs(steering_wheel_error_deg(u_pred, w['inverse_radius_per_m'],
                                                       w['speed_smoothed_mps'], vehicle)))
    err_u, err_deg = np.concatenate(err_u), np.concatenate(err_deg)
    return {'mae_u_per_m': float(err_u.mean()), 'mae_steering_deg': float(err_deg.mean()),
            'frames': int(len(err_u))}
