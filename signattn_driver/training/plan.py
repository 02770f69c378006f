"""Order of the training episodes in an epoch: a function of (seed, epoch) only (exact resume)."""

import numpy as np

from signattn_driver.training.config import TrainConfig


def epoch_plan(episodes, lanes: int, seed: int, epoch: int, config: TrainConfig) -> list:
    """Order of the training episodes in one epoch, as groups of `lanes` parallel episodes.

    Returns:
        list of groups; each group is a list of `lanes` lanes, a lane a list of item keys
        (window id, brightness gain, flip), all lanes padded with window id -1 to the longest.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(episodes.episodes)).tolist()
    order += [-1] * (-len(order) % lanes)
    gains = 1.0 + config.brightness_jitter * rng.uniform(-1, 1, len(order)) \
        if config.augment else np.ones(len(order))
    flips = rng.random(len(order)) < 0.5 if config.flip else np.zeros(len(order), bool)
    groups = []
    for g in range(0, len(order), lanes):
        ids = order[g:g + lanes]
        length = max(len(episodes.episodes[e]) for e in ids if e >= 0)
        group = []
        for j, e in enumerate(ids):
            windows = episodes.episodes[e] if e >= 0 else []
            keys = [(w, float(gains[g + j]), bool(flips[g + j])) for w in windows]
            group.append(keys + [(-1, 1.0, False)] * (length - len(keys)))
        groups.append(group)
    return groups
