"""Data of a training run: open and split the datasets, cut episodes, fingerprint the split."""

from dataclasses import dataclass
import hashlib
import logging
import os
from pathlib import Path

import torch

from signattn_driver.data.dataset import DatasetError, open_datasets
from signattn_driver.data.sequences import Episodes, make_episodes, SequenceIndex
from signattn_driver.route_command import FOLLOW_LANE
from signattn_driver.training.config import TrainConfig, TrainingError

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """Opened data of a run: the index, the split and the training episodes."""

    index: SequenceIndex
    train_segments: list
    val_segments: list
    episodes: object          # sequences.Episodes over train_segments
    fingerprint: str          # changes when the data or the split changes
    roundabout_commands: str | None = None   # how the sets' navigator told roundabouts

    @property
    def vehicle(self):
        """Return the vehicle profile stored in checkpoints (of the first dataset)."""
        return self.index.datasets[0].vehicle

    @property
    def smoothing_alpha(self) -> float:
        """Return alpha_s of eq. 2 the labels were made with (of the first dataset)."""
        return float(self.index.datasets[0].manifest['smoothing_alpha'])


def prepare_data(data_dirs: list, config: TrainConfig,
                 command_model: bool = False) -> PreparedData:
    """Open and split the datasets; fails before any training work.

    Args:
        data_dirs: dataset folders.
        config: the run's settings (camera, split, episodes).
        command_model: the model takes route commands: the sets must tell roundabouts alike,
            and `roundabout_commands` says how.

    Raises:
        TrainingError: no data folders, a folder that is not a complete dataset, an unreadable
            drive, no frames of the camera, a split that leaves nothing to train on, or (for a
            command model) sets that tell roundabouts differently.
    """
    if not data_dirs:
        raise TrainingError('no training data given (--data DIR ...)')
    try:
        datasets = open_datasets([Path(d) for d in data_dirs])
        index = SequenceIndex(datasets, camera=config.camera, splits=('train', 'val'))
        train, val = index.split(config.val_split, config.val_fraction, config.val_drives,
                                 config.block_s, config.guard_s, config.seed)
    except (DatasetError, ValueError, OSError) as err:
        raise TrainingError(str(err)) from err
    vehicles = {ds.vehicle for ds in datasets}
    if len(vehicles) > 1:
        log.warning('datasets use different vehicles %s; checkpoints record %s',
                    sorted(v.name for v in vehicles), datasets[0].vehicle.name)
    episodes = make_episodes(train, config.sequence_length, config.episode_windows)
    if config.command_repeat > 1:
        episodes = repeat_command_episodes(index, train, episodes, config.command_repeat)
    lanes = config.batch_size * int(os.environ.get('WORLD_SIZE', '1'))
    if len(episodes.episodes) < lanes:
        log.warning('%d training episodes for %d lanes: some lanes stay empty; lower '
                    'batch_size or episode_windows', len(episodes.episodes), lanes)
    h = hashlib.sha256()
    for seg in (*train, None, *val):
        h.update(b'|' if seg is None else
                 f'{index.roots[seg.dataset]}/{seg.drive}:{seg.rows.tobytes().hex()};'.encode())
    if not val:
        log.warning('no validation frames (val_fraction 0?): best.pt will be the last weights')
    log.info('train: %d frames in %d segments, %d episodes; val: %d frames in %d segments',
             episodes.frames, len(train), len(episodes.episodes), sum(map(len, val)), len(val))
    scheme = roundabout_scheme([ds.manifest for ds in datasets]) if command_model else None
    return PreparedData(index, train, val, episodes, h.hexdigest(), scheme)


def roundabout_scheme(manifests: list) -> str | None:
    """Return how the simulated sets told roundabouts: 'per_exit', 'whole' or None.

    A set simulated with route commands records `RouteConfig` in its manifest; one recorded
    before `roundabout_commands` existed told roundabouts 'whole'. Sets without route commands
    (converted drives, older simulations) say nothing. A command model trained on both schemes
    would learn two meanings of one command at roundabouts, so that is refused.

    Raises:
        TrainingError: the sets disagree.
    """
    schemes = set()
    for manifest in manifests:
        route = manifest.get('simulation', {}).get('sim', {}).get('route')
        if route is not None:
            schemes.add(route.get('roundabout_commands', 'whole'))
    if len(schemes) > 1:
        raise TrainingError(f'the datasets tell roundabouts differently '
                            f'({", ".join(sorted(schemes))}): simulate them again with one '
                            f'--roundabout-commands, or keep the drives the per-exit scheme '
                            f'keeps (benchmarks/per_exit_subset.py)')
    return schemes.pop() if schemes else None


def repeat_command_episodes(index: SequenceIndex, segments: list, episodes: Episodes,
                            repeat: int) -> Episodes:
    """Episodes with every episode that holds a turn command listed `repeat` times.

    A turn command (left, straight, right) is in force on a few frames before and inside each
    junction; follow-lane covers the rest. Listing those episodes more often gives each command
    branch more updates per epoch without changing any frame or label.
    """
    commands = [index.labels(seg)['route_command'] for seg in segments]
    turns = [e for e in episodes.episodes
             if any((commands[s][a:b] != FOLLOW_LANE).any()
                    for s, a, b in (episodes.windows[w] for w in e))]
    log.info('command_repeat %d: %d of %d episodes hold a turn command', repeat, len(turns),
             len(episodes.episodes))
    return Episodes(episodes.windows, episodes.episodes + turns * (repeat - 1),
                    episodes.sequence_length)


def make_loader(dataset, batches, config: TrainConfig, device: torch.device):
    """Build the DataLoader over `dataset` with the given batch sampler (lists of item keys)."""
    # An own generator: creating the iterator must not consume the global RNG (exact resume).
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=batches, num_workers=config.num_workers,
        pin_memory=device.type == 'cuda', generator=torch.Generator().manual_seed(0),
        prefetch_factor=4 if config.num_workers else None)
