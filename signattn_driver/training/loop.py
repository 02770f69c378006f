"""Training of SteeringNet on converted drives (paper Sec. IV-A; Kim & Canny 2017).

    datasets -> SequenceIndex -> train/val segments -> episodes of `episode_windows` windows of
    `sequence_length` frames -> lanes: `batch_size` episodes run side by side; each step is one
    window of every lane: L1(u) + entropy_weight * H(alpha) -> Adam; the LSTM state is carried
    (detached) to the next window of the same episodes and rebuilt from the first frame
    (eq. 13-14) when the next group of episodes starts.

Data order, augmentation and validation are functions of (seed, epoch) only, and last.pt holds
the optimizer state, the RNG states, the carried LSTM state and the position in the epoch, so
`resume=True` continues exactly where the run stopped. Under `torchrun --nproc_per_node=N`
(WORLD_SIZE > 1) every process takes its own `batch_size` lanes of each group of episodes
(DistributedDataParallel); only rank 0 writes the run folder.

Run folder: config.yaml (the resolved config, a valid --config file), run.yaml (data, versions,
world size), metrics.csv, TensorBoard events when tensorboard is installed, last.pt, best.pt.
"""

import collections
import csv
from dataclasses import dataclass
import hashlib
import logging
import math
import os
from pathlib import Path
import time

import numpy as np
import torch
import torch.distributed as torch_dist
import yaml

from signattn_driver import checkpoint
from signattn_driver.data.dataset import DatasetError, open_datasets
from signattn_driver.device import resolve_device
from signattn_driver.model import entropy_of_attention, ModelConfig, SteeringNet
from signattn_driver.preprocessing import hsv_u8_to_input
from signattn_driver.data.sequences import DriveSequences, make_episodes, SequenceIndex
from signattn_driver.training.config import (config_to_yaml, load_run_config, TrainConfig,
                                             TrainingError)
from signattn_driver.vehicle import steering_from_inverse_radius

__all__ = ['TrainConfig', 'TrainingError', 'load_run_config', 'train', 'predict_segments',
           'validation_metrics', 'prepare_data']

METRIC_COLUMNS = ('step', 'epoch', 'phase', 'loss', 'mae_u_per_m', 'mae_steering_deg',
                  'entropy_nats', 'frames', 'frames_per_s', 'data_wait_share', 'wall_s')
# Settings that may change when a run is resumed; any other change is refused.
RESUMABLE_CHANGES = ('max_steps', 'val_every', 'log_every', 'num_workers', 'device')
log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """Opened data of a run: the index, the split and the training episodes."""

    index: SequenceIndex
    train_segments: list
    val_segments: list
    episodes: object          # sequences.Episodes over train_segments
    fingerprint: str          # changes when the data or the split changes

    @property
    def vehicle(self):
        """Return the vehicle profile stored in checkpoints (of the first dataset)."""
        return self.index.datasets[0].vehicle


def prepare_data(data_dirs: list, config: TrainConfig) -> PreparedData:
    """Open and split the datasets; fails before any training work.

    Raises:
        TrainingError: no data folders, a folder that is not a complete dataset, an unreadable
            drive, no frames of the camera, or a split that leaves nothing to train on.
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
    return PreparedData(index, train, val, episodes, h.hexdigest())


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


def _augment(frames: torch.Tensor, u: torch.Tensor, gain: torch.Tensor, flip: torch.Tensor):
    """Label-honest augmentation on the device.

    frames (B, T, 80, 160, 3) uint8 HSV: V scaled by gain (B,) (brightness; u unchanged);
    lanes with flip (B,) mirrored left-right with u negated (a mirrored road turns the other
    way with the same curvature).
    """
    if bool((gain != 1).any()):
        v = (frames[..., 2].float() * gain.view(-1, 1, 1, 1)).round().clamp(0, 255)
        frames = torch.cat([frames[..., :2], v.to(torch.uint8)[..., None]], dim=-1)
    if bool(flip.any()):
        frames = torch.where(flip.view(-1, 1, 1, 1, 1), frames.flip(-2), frames)
        u = torch.where(flip[:, None], -u, u)
    return frames, u


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16,
                          enabled=amp and device.type == 'cuda')


def _loader(dataset, batches: list, config: TrainConfig, device: torch.device):
    # An own generator: creating the iterator must not consume the global RNG (exact resume).
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=batches, num_workers=config.num_workers,
        pin_memory=device.type == 'cuda', generator=torch.Generator().manual_seed(0),
        prefetch_factor=4 if config.num_workers else None)


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
    for (ids, k), batch in zip(plan, _loader(data, batches, config, device)):
        x = hsv_u8_to_input(batch['frames'].to(device, non_blocking=True))   # (B, T, 3, 80, 160)
        with _autocast(device, config.amp):
            u, attention, state = model(x, None if k == 0 else state)
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
        theta = steering_from_inverse_radius(u_pred, w['speed_smoothed_mps'], vehicle)
        err_deg.append(np.degrees(np.abs(theta - w['steering_wheel_smoothed_rad'])))
    err_u, err_deg = np.concatenate(err_u), np.concatenate(err_deg)
    return {'mae_u_per_m': float(err_u.mean()), 'mae_steering_deg': float(err_deg.mean()),
            'frames': int(len(err_u))}


@dataclass
class _Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self):
        if self.enabled:
            torch_dist.barrier()

    def gather(self, t: torch.Tensor, device: torch.device) -> list:
        """All ranks' copies of a same-shaped tensor, on the CPU."""
        if not self.enabled:
            return [t.cpu()]
        t = t.to(device)
        out = [torch.empty_like(t) for _ in range(self.world)]
        torch_dist.all_gather(out, t)
        return [o.cpu() for o in out]


def _setup(config: TrainConfig):
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world <= 1:
        return _Distributed(), resolve_device(config.device)
    d = _Distributed(int(os.environ['RANK']), world, int(os.environ.get('LOCAL_RANK', '0')))
    use_cuda = config.device != 'cpu' and torch.cuda.is_available()
    device = torch.device(f'cuda:{d.local_rank}') if use_cuda else torch.device('cpu')
    if use_cuda:
        torch.cuda.set_device(device)
    d.owns_group = not torch_dist.is_initialized()
    if d.owns_group:
        torch_dist.init_process_group('nccl' if use_cuda else 'gloo')
    return d, device


def _check_run_dir(out_dir: Path, resume: bool, model_config: ModelConfig,
                   config: TrainConfig, data: PreparedData) -> dict | None:
    """Refuse to overwrite a run; on resume, load last.pt and check it fits this run."""
    last = out_dir / 'last.pt'
    if not resume:
        if last.exists():
            raise TrainingError(f'{out_dir} already holds a run; pass --resume to continue it '
                                f'or choose another --out')
        return None
    if not last.is_file():
        raise TrainingError(f'--resume: no {last} to continue from')
    try:
        ckpt = checkpoint.load(last)
    except checkpoint.CheckpointError as err:
        raise TrainingError(f'--resume: {err}') from err
    if ckpt.config != model_config:
        raise TrainingError(f'--resume: the model config differs from the run in {out_dir}: '
                            f'{ckpt.config} vs {model_config}')
    old = ckpt.metadata.get('train_config', {})
    new = config.to_dict()
    changed = sorted(k for k in new if k not in RESUMABLE_CHANGES and old.get(k) != new[k])
    if changed:
        raise TrainingError(f'--resume: {changed} differ from the run in {out_dir}; only '
                            f'{list(RESUMABLE_CHANGES)} may change')
    resume_state = ckpt.metadata.get('resume', {})
    if resume_state.get('data_fingerprint') != data.fingerprint:
        raise TrainingError('--resume: the training data or its split changed since the run '
                            'started')
    return {'checkpoint': ckpt, **resume_state}


class _MetricsLog:
    """metrics.csv (+ TensorBoard when importable), written by rank 0 only."""

    def __init__(self, run_dir: Path, keep_until_step: int, enabled: bool):
        self.path = run_dir / 'metrics.csv'
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        rows = []
        if self.path.exists():   # a resumed run drops rows written after its last.pt
            with open(self.path, newline='') as f:
                rows = [r for r in csv.DictReader(f) if int(r['step']) <= keep_until_step]
        with open(self.path, 'w', newline='') as f:
            w = csv.DictWriter(f, METRIC_COLUMNS)
            w.writeheader()
            w.writerows(rows)
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(run_dir / 'tensorboard'), purge_step=keep_until_step + 1)
        except Exception as err:  # tensorboard not installed: the CSV is enough
            log.debug('no TensorBoard events: %s', err)

    def write(self, **row):
        if not self.enabled:
            return
        with open(self.path, 'a', newline='') as f:
            csv.DictWriter(f, METRIC_COLUMNS).writerow(
                {k: row.get(k, '') for k in METRIC_COLUMNS})
        if self.tb is not None:
            for k, v in row.items():
                if k not in ('step', 'epoch', 'phase') and isinstance(v, (int, float)):
                    self.tb.add_scalar(f'{row["phase"]}/{k}', v, row['step'])

    def close(self):
        if self.tb is not None:
            self.tb.close()


def train(model_config: ModelConfig, train_config: TrainConfig, data_dirs: list, out_dir,
          resume: bool = False, progress: bool = True) -> dict:
    """Train a model and write the run folder.

    Args:
        model_config: the network (attention 'sign' | 'soft' | 'none', sizes, ...).
        train_config: how to train.
        data_dirs: dataset folders written by the converter or the simulator.
        out_dir: run folder (created; must not hold a run unless `resume`).
        resume: continue the run in `out_dir` from its last.pt, exactly.
        progress: show a tqdm progress bar (rank 0).

    Returns:
        {'best_checkpoint', 'last_checkpoint', 'run_dir': paths, 'metrics': final validation
        metrics (mae_u_per_m, mae_steering_deg, frames, entropy_nats, step), 'best_metrics',
        'steps': optimizer steps done, 'train_loss': last logged training loss}.

    Raises:
        TrainingError: bad config, unreadable data or a run folder that does not fit; raised
            before any training work.
    """
    out_dir = Path(out_dir)
    data = prepare_data(data_dirs, train_config)
    resumed = _check_run_dir(out_dir, resume, model_config, train_config, data)
    try:
        dist, device = _setup(train_config)
    except ValueError as err:
        raise TrainingError(str(err)) from err
    cfg = train_config
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True   # fixed input size; see docs on exactness
    torch.manual_seed(cfg.seed)
    model = SteeringNet(model_config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    pos = {'step': 0, 'epoch': 0, 'group': 0, 'window': 0}
    best = {'value': math.inf, 'metrics': {}, 'step': -1}
    carry = None
    if dist.rank:
        torch.manual_seed(cfg.seed + dist.rank)   # own dropout masks per process
    if resumed is not None:
        ckpt = resumed['checkpoint']
        model.load_state_dict(ckpt.state_dict)
        optimizer.load_state_dict(ckpt.metadata['optimizer'])
        pos = dict(resumed['position'])
        best = dict(resumed['best'])
        if resumed['world_size'] != dist.world:
            raise TrainingError(f'--resume: the run used {resumed["world_size"]} processes, '
                                f'this one has {dist.world}')
        torch.set_rng_state(resumed['rng_cpu'][dist.rank])
        if device.type == 'cuda' and resumed.get('rng_cuda'):
            torch.cuda.set_rng_state(resumed['rng_cuda'][dist.rank])
        if resumed.get('carry_h') is not None:
            carry = (resumed['carry_h'][dist.rank].to(device),
                     resumed['carry_c'][dist.rank].to(device))
        log.info('resuming %s at step %d', out_dir, pos['step'])
    if dist.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / 'config.yaml').write_text(config_to_yaml(model_config, cfg))
        (out_dir / 'run.yaml').write_text(yaml.safe_dump({
            'data': [str(Path(d).resolve()) for d in data_dirs], 'world_size': dist.world,
            'device': str(device), 'torch': str(torch.__version__), 'resumed_at_step': pos['step'],
            'train_frames': data.episodes.frames,
            'val_frames': sum(map(len, data.val_segments))}, sort_keys=False))
    dist.barrier()
    net = model
    if dist.enabled:
        # init_h/init_c are unused when the state is carried, the attention MLP with "none".
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == 'cuda' else None,
            find_unused_parameters=True)
    metrics_log = _MetricsLog(out_dir, pos['step'], dist.main)
    trainer = _Trainer(net, model, optimizer, data, cfg, device, dist, out_dir, metrics_log,
                       pos, best, carry)
    try:
        result = trainer.run(progress)
    finally:
        metrics_log.close()
        if dist.owns_group:
            torch_dist.destroy_process_group()
    return result


class _Trainer:
    """The training loop; state lives here so that checkpoints can capture all of it."""

    def __init__(self, net, model, optimizer, data, config, device, dist, out_dir, metrics_log,
                 pos, best, carry):
        self.net, self.model, self.optimizer = net, model, optimizer
        self.data, self.cfg, self.device, self.dist = data, config, device, dist
        self.out_dir, self.metrics_log = out_dir, metrics_log
        self.pos, self.best, self.carry = pos, best, carry
        self.dataset = DriveSequences(data.index, data.train_segments, data.episodes)
        self.last_metrics = {}
        self.train_loss = float('nan')

    def _keys(self, where: collections.deque):
        """Yield this rank's lane keys per step, from the saved position on, epoch after epoch.

        Runs in the main process (the DataLoader asks it for indices ahead of time); `where`
        receives the matching (group, window, group length) of every batch, in order.
        """
        cfg, dist = self.cfg, self.dist
        epoch, first_group, first_window = self.pos['epoch'], self.pos['group'], \
            self.pos['window']
        lo = dist.rank * cfg.batch_size
        while True:
            plan = epoch_plan(self.data.episodes, cfg.batch_size * dist.world, cfg.seed, epoch,
                              cfg)
            for g in range(first_group, len(plan)):
                lanes = plan[g][lo:lo + cfg.batch_size]
                for k in range(first_window if g == first_group else 0, len(lanes[0])):
                    where.append((epoch, g, k, len(lanes[0])))
                    yield [lane[k] for lane in lanes]
            epoch, first_group, first_window = epoch + 1, 0, 0

    def _batches(self):
        """Yield ((epoch, group, window, group length), batch) forever, one DataLoader."""
        where = collections.deque()
        loader = _loader(self.dataset, self._keys(where), self.cfg, self.device)
        for batch in loader:
            yield where.popleft(), batch

    def _step(self, batch, new_group: bool):
        cfg, device = self.cfg, self.device
        frames = batch['frames'].to(device, non_blocking=True)        # (B, T, 80, 160, 3) uint8
        u = batch['inverse_radius_per_m'].to(device, non_blocking=True)             # (B, T)
        valid = batch['valid'].to(device, non_blocking=True)                        # (B, T)
        frames, u = _augment(frames, u, batch['gain'].to(device), batch['flip'].to(device))
        x = hsv_u8_to_input(frames)                                   # (B, T, 3, 80, 160)
        state = None if new_group or self.carry is None else self.carry
        with _autocast(device, cfg.amp):
            pred, attention, state = self.net(x, state)
        weight = valid.float()
        n = weight.sum().clamp_min(1.0)
        loss_u = ((pred.float() - u).abs() * weight).sum() / n       # L1 on u (1/m)
        loss = loss_u
        entropy = None
        if self.model.config.attention != 'none':
            p = attention.float().flatten(2).clamp_min(1e-12)          # (B, T, 200)
            entropy = (-(p * p.log()).sum(-1) * weight).sum() / n
            if cfg.entropy_weight > 0:
                loss = loss + cfg.entropy_weight * entropy
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.carry = tuple(s.detach() for s in state)   # truncated BPTT
        return loss_u.detach(), entropy.detach() if entropy is not None else None

    def validate(self) -> dict:
        """Metrics on the validation segments (every rank computes them; rank 0 logs)."""
        if not self.data.val_segments:
            return {}
        preds, entropy = predict_segments(self.model, self.data.index, self.data.val_segments,
                                          self.cfg, self.device)
        metrics = validation_metrics(self.data.index, self.data.val_segments, preds)
        metrics['entropy_nats'] = entropy
        metrics['step'] = self.pos['step']
        return metrics

    def _save(self, name: str, metrics: dict, full: bool):
        dist = self.dist
        extra = {}
        if full:
            h = c = None
            if self.carry is not None:
                h = dist.gather(self.carry[0], self.device)
                c = dist.gather(self.carry[1], self.device)
            rng_cpu = dist.gather(torch.get_rng_state(), self.device)
            rng_cuda = (dist.gather(torch.cuda.get_rng_state(), self.device)
                        if self.device.type == 'cuda' else None)
            extra = {'optimizer': self.optimizer.state_dict(), 'resume': {
                'position': dict(self.pos), 'best': dict(self.best), 'world_size': dist.world,
                'rng_cpu': rng_cpu, 'rng_cuda': rng_cuda, 'carry_h': h, 'carry_c': c,
                'data_fingerprint': self.data.fingerprint}}
        if dist.main:
            checkpoint.save(self.out_dir / name, self.model, vehicle=self.data.vehicle.to_dict(),
                            metrics=metrics, train_config=self.cfg.to_dict(),
                            step=self.pos['step'], data=self.data.index.roots, **extra)

    def _checkpoint(self):
        metrics = self.validate()
        self.last_metrics = metrics
        if metrics:
            self.metrics_log.write(phase='val', epoch=self.pos['epoch'], **metrics)
        value = metrics.get(self.cfg.best_metric, -float(self.pos['step']))
        if value < self.best['value'] or not metrics:
            self.best = {'value': value, 'metrics': metrics, 'step': self.pos['step']}
            self._save('best.pt', metrics, full=False)
        self._save('last.pt', metrics, full=True)
        self.dist.barrier()

    def run(self, progress: bool) -> dict:
        cfg, pos = self.cfg, self.pos
        bar = None
        if progress and self.dist.main:
            from tqdm import tqdm
            bar = tqdm(total=cfg.max_steps, initial=pos['step'], unit='step', dynamic_ncols=True)
        losses, entropies = [], []
        wait_s = busy_s = 0.0
        frames_done = 0
        checkpointed_at = -1
        start = time.perf_counter()
        tick = time.perf_counter()
        batches = self._batches()
        try:
            while pos['step'] < cfg.max_steps:
                (epoch, group, window, length), batch = next(batches)
                got = time.perf_counter()
                wait_s += got - tick
                loss, entropy = self._step(batch, new_group=window == 0)
                frames_done += int(batch['valid'].sum())
                pos['step'] += 1
                pos['epoch'], pos['group'], pos['window'] = \
                    (epoch, group, window + 1) if window + 1 < length else (epoch, group + 1, 0)
                losses.append(loss)
                if entropy is not None:
                    entropies.append(entropy)
                if pos['step'] % cfg.log_every == 0 or pos['step'] == cfg.max_steps:
                    self.train_loss = float(torch.stack(losses).mean())   # syncs the device
                    tock = time.perf_counter()
                    busy_s += tock - got
                    total = wait_s + busy_s
                    self.metrics_log.write(
                        step=pos['step'], epoch=pos['epoch'], phase='train',
                        loss=self.train_loss, mae_u_per_m=self.train_loss,
                        entropy_nats=float(torch.stack(entropies).mean()) if entropies else '',
                        frames=frames_done, frames_per_s=frames_done / max(total, 1e-9),
                        data_wait_share=wait_s / max(total, 1e-9),
                        wall_s=time.perf_counter() - start)
                    losses, entropies = [], []
                    wait_s = busy_s = 0.0
                    frames_done = 0
                    if bar is not None:
                        bar.set_postfix(loss=f'{self.train_loss:.3g}', epoch=pos['epoch'])
                else:
                    busy_s += time.perf_counter() - got
                if bar is not None:
                    bar.update(1)
                if pos['step'] % cfg.val_every == 0:
                    self._checkpoint()
                    checkpointed_at = pos['step']
                tick = time.perf_counter()
        finally:
            batches.close()
            if bar is not None:
                bar.close()
        if checkpointed_at != pos['step']:
            self._checkpoint()
        return {'best_checkpoint': self.out_dir / 'best.pt',
                'last_checkpoint': self.out_dir / 'last.pt', 'run_dir': self.out_dir,
                'metrics': self.last_metrics, 'best_metrics': self.best['metrics'],
                'steps': pos['step'], 'train_loss': self.train_loss}
