"""Training of SteeringNet on converted drives (paper Sec. IV-A; Kim & Canny 2017).

    datasets -> SequenceIndex -> train/val segments -> episodes of `episode_windows` windows of
    `sequence_length` frames -> lanes: `batch_size` episodes run side by side; each step is one
    window of every lane: L1(u) + entropy_weight * H(alpha) [+ align_weight * KL(|phi| / sum|phi|
    || alpha), the alignment term, phi at alpha or at 1/L per align_target] [+ distill_weight *
    L1(u, u_teacher), a teacher checkpoint on the same window (.teacher)] -> Adam; the LSTM
    state is carried (detached) to the next window of the same episodes and rebuilt from the
    first frame (eq. 13-14) when the next group of episodes starts.

Data order, augmentation and validation are functions of (seed, epoch) only, and last.pt holds
the optimizer state, the RNG states, the carried LSTM state and the position in the epoch, so
`resume=True` continues exactly where the run stopped. Under `torchrun --nproc_per_node=N`
(WORLD_SIZE > 1) every process takes its own `batch_size` lanes of each group of episodes
(DistributedDataParallel); only rank 0 writes the run folder.

Run folder: config.yaml (the resolved config, a valid --config file), run.yaml (data, versions,
world size), metrics.csv, TensorBoard events when tensorboard is installed, last.pt, best.pt.

The pieces: training.data (open and split the datasets), .plan (epoch order), .augment,
.distributed (torchrun), .run_dir (run folder, resume checks, metrics.csv), .validation.
"""

import collections
import logging
import math
from pathlib import Path
import time

import torch
import torch.distributed as torch_dist
import yaml

from signattn_driver import checkpoint
from signattn_driver.data.sequences import DriveSequences
from signattn_driver.model import entropy_of_attention, ModelConfig, SteeringNet
from signattn_driver.preprocessing import hsv_u8_to_input
from signattn_driver.route_command import roundabout_metadata
from signattn_driver.training.augment import augment, drop_route_commands, mirror_route_commands
from signattn_driver.training.config import (config_to_yaml, load_run_config, TrainConfig,
                                             TrainingError)
from signattn_driver.training.data import make_loader, prepare_data
from signattn_driver.training.losses import alignment_kl, steering_l1
from signattn_driver.training.distributed import autocast, setup
from signattn_driver.training.plan import epoch_plan
from signattn_driver.training.run_dir import check_run_dir, MetricsLog
from signattn_driver.training.teacher import Teacher
from signattn_driver.training.validation import predict_segments, validation_metrics

__all__ = ['TrainConfig', 'TrainingError', 'load_run_config', 'train', 'predict_segments',
           'validation_metrics', 'prepare_data']

log = logging.getLogger(__name__)


def _load_initial_weights(model: SteeringNet, path: str):
    """Start from a checkpoint's weights; its architecture must match (config may differ)."""
    try:
        ckpt = checkpoint.load(path)
    except checkpoint.CheckpointError as err:
        raise TrainingError(f'init_checkpoint: {err}') from err
    try:
        model.load_state_dict(checkpoint.initial_weights(ckpt, model))
    except RuntimeError as err:
        raise TrainingError(f'init_checkpoint {path}: its weights do not fit this model '
                            f'({str(err).splitlines()[0]})') from err
    log.info('initial weights from %s', path)


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
        'steps': optimizer steps done, 'train_loss': the objective (L1 of u plus the weighted
        attention entropy) averaged over the last logged steps}.

    Raises:
        TrainingError: bad config, unreadable data or a run folder that does not fit; raised
            before any training work.
    """
    out_dir = Path(out_dir)
    data = prepare_data(data_dirs, train_config, command_model=bool(model_config.num_commands))
    resumed = check_run_dir(out_dir, resume, model_config, train_config, data)
    dist, device = _start_processes(train_config)
    cfg = train_config
    torch.manual_seed(cfg.seed)
    model = SteeringNet(model_config).to(device)
    if cfg.freeze_encoder:
        model.encoder.requires_grad_(False)
    optimizer = torch.optim.Adam(_param_groups(model, cfg), lr=cfg.lr,
                                 weight_decay=cfg.weight_decay)
    if dist.rank:
        torch.manual_seed(cfg.seed + dist.rank)   # own dropout masks per process
    if cfg.init_checkpoint and resumed is None:
        _load_initial_weights(model, cfg.init_checkpoint)
    teacher = (Teacher.load(cfg.teacher_checkpoint, model_config, device)
               if cfg.teacher_checkpoint else None)
    pos, best, carry = _restore(resumed, model, optimizer, dist, device, out_dir, teacher)
    if dist.main:
        _write_run_files(out_dir, model_config, cfg, data_dirs, data, dist, device, pos['step'])
    dist.barrier()
    net = _parallel(model, dist, device)
    metrics_log = MetricsLog(out_dir, pos['step'], dist.main)
    trainer = _Trainer(net, model, optimizer, data, cfg, device, dist, out_dir, metrics_log,
                       pos, best, carry, teacher)
    try:
        return trainer.run(progress)
    finally:
        metrics_log.close()
        if dist.owns_group:
            torch_dist.destroy_process_group()


def _param_groups(model: SteeringNet, cfg: TrainConfig) -> list:
    """Return the trainable parameters' Adam groups, some at their own lr.

    The per-cell attention bias and the attention gain get position_bias_lr and
    attention_gain_lr where those are set.
    """
    own = {'attention.position_bias': cfg.position_bias_lr, 'alpha_gain.': cfg.attention_gain_lr}
    groups = [{'params': [p for n, p in model.named_parameters()
                          if p.requires_grad and not n.startswith(tuple(own))]}]
    for prefix, lr in own.items():
        params = [p for n, p in model.named_parameters()
                  if p.requires_grad and n.startswith(prefix)]
        if params:
            groups.append({'params': params, 'lr': lr or cfg.lr})
    return groups


def _start_processes(train_config: TrainConfig):
    """Return (Distributed, torch.device) of this process (torchrun or a single process)."""
    try:
        dist, device = setup(train_config)
    except ValueError as err:
        raise TrainingError(str(err)) from err
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True   # fixed input size; see docs on exactness
    return dist, device


def _restore(resumed, model: SteeringNet, optimizer, dist, device, out_dir: Path,
             teacher: Teacher | None = None):
    """Return the loop state (position, best, carried LSTM state), from last.pt when resuming.

    When `resumed` (check_run_dir's answer) is not None, the model, the optimizer, this
    rank's RNG states and the teacher's carried state are restored from it as well.
    """
    pos = {'step': 0, 'epoch': 0, 'group': 0, 'window': 0}
    best = {'value': math.inf, 'metrics': {}, 'step': -1}
    carry = None
    if resumed is None:
        return pos, best, carry
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
    if teacher is not None and resumed.get('teacher_h') is not None:
        teacher.carry = (resumed['teacher_h'][dist.rank].to(device),
                         resumed['teacher_c'][dist.rank].to(device))
    log.info('resuming %s at step %d', out_dir, pos['step'])
    return pos, best, carry


def _write_run_files(out_dir: Path, model_config: ModelConfig, cfg: TrainConfig, data_dirs,
                     data, dist, device, step: int):
    """Write config.yaml (the resolved config) and run.yaml (data, versions, world size)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'config.yaml').write_text(config_to_yaml(model_config, cfg))
    (out_dir / 'run.yaml').write_text(yaml.safe_dump({
        'data': [str(Path(d).resolve()) for d in data_dirs], 'world_size': dist.world,
        'device': str(device), 'torch': str(torch.__version__), 'resumed_at_step': step,
        'train_frames': data.episodes.frames,
        'val_frames': sum(map(len, data.val_segments))}, sort_keys=False))


def _parallel(model: SteeringNet, dist, device) -> torch.nn.Module:
    """Return the module the loop calls: `model`, wrapped in DDP under torchrun."""
    if not dist.enabled:
        return model
    # init_h/init_c are unused when the state is carried, the attention MLP with "none".
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == 'cuda' else None,
        find_unused_parameters=True)


class _Trainer:
    """The training loop; state lives here so that checkpoints can capture all of it."""

    def __init__(self, net, model, optimizer, data, config, device, dist, out_dir, metrics_log,
                 pos, best, carry, teacher=None):
        self.net, self.model, self.optimizer = net, model, optimizer
        self.teacher = teacher
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
        loader = make_loader(self.dataset, self._keys(where), self.cfg, self.device)
        for batch in loader:
            yield where.popleft(), batch

    def _step(self, batch, new_group: bool, episode: tuple = (0, 0)):
        """One optimizer step on a batch; `episode` is its (epoch, group), for command_dropout."""
        cfg, device = self.cfg, self.device
        frames = batch['frames'].to(device, non_blocking=True)        # (B, T, 80, 160, 3) uint8
        u = batch['inverse_radius_per_m'].to(device, non_blocking=True)             # (B, T)
        valid = batch['valid'].to(device, non_blocking=True)                        # (B, T)
        frames, u = augment(frames, u, batch['gain'].to(device), batch['flip'].to(device))
        x = hsv_u8_to_input(frames)                                   # (B, T, 3, 80, 160)
        state = None if new_group or self.carry is None else self.carry
        commands = None
        if self.model.config.num_commands:       # (B, T); a mirrored road swaps left and right
            commands = mirror_route_commands(batch['route_command'].to(device),
                                             batch['flip'].to(device))
        heard = commands          # what the model is told; the loss weights keep the recorded
        if commands is not None and cfg.command_dropout > 0:
            seed = hash((cfg.seed, self.dist.rank) + tuple(episode)) & 0xFFFF_FFFF_FFFF
            heard = drop_route_commands(commands, cfg.command_dropout, seed)
        align = cfg.align_weight > 0 and self.model.config.attention != 'none'
        with autocast(device, cfg.amp):
            out = self.net(x, state, commands=heard, contribution=align,
                           contribution_at_uniform=align and cfg.align_target == 'phi_uniform')
        pred, attention, state = out[:3]
        weight = valid.float()
        n = weight.sum().clamp_min(1.0)
        loss_u = steering_l1(pred.float(), u, weight, commands, cfg.turn_weight)
        loss = loss_u
        if self.teacher is not None:
            u_teacher = self.teacher.predict(x, heard, new_group)                  # (B, T)
            loss = loss + cfg.distill_weight * steering_l1(pred.float(), u_teacher, weight,
                                                           commands, cfg.turn_weight)
        entropy = None
        if self.model.config.attention != 'none':
            # The mean over the valid frames without a host sync: padding frames become a
            # one-hot map (entropy ~0) and the mean over all frames is rescaled to the n valid.
            one_hot = torch.zeros_like(attention[0, 0], dtype=torch.float32)   # (10, 20)
            one_hot[0, 0] = 1.0
            maps = torch.where(valid.bool()[..., None, None], attention.float(), one_hot)
            entropy = entropy_of_attention(maps) * (valid.numel() / n)
            if cfg.entropy_weight:   # > 0 sharpens (Kim & Canny); < 0 only in experiments
                loss = loss + cfg.entropy_weight * entropy
            if align:
                p = attention.float().flatten(2).clamp_min(1e-12)      # (B, T, 200)
                loss = loss + cfg.align_weight * alignment_kl(p, out[3], weight)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.carry = tuple(s.detach() for s in state)   # truncated BPTT
        return loss.detach(), loss_u.detach(), entropy.detach() if entropy is not None else None

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
            def gathered(carry):   # (h, c) of every rank, or (None, None) before any window
                return (None, None) if carry is None else tuple(
                    dist.gather(part, self.device) for part in carry)
            h, c = gathered(self.carry)
            teacher_h, teacher_c = gathered(self.teacher.carry if self.teacher else None)
            rng_cpu = dist.gather(torch.get_rng_state(), self.device)
            rng_cuda = (dist.gather(torch.cuda.get_rng_state(), self.device)
                        if self.device.type == 'cuda' else None)
            extra = {'optimizer': self.optimizer.state_dict(), 'resume': {
                'position': dict(self.pos), 'best': dict(self.best), 'world_size': dist.world,
                'rng_cpu': rng_cpu, 'rng_cuda': rng_cuda, 'carry_h': h, 'carry_c': c,
                'teacher_h': teacher_h, 'teacher_c': teacher_c,
                'data_fingerprint': self.data.fingerprint}}
        if self.data.roundabout_commands:
            # the navigator this model expects (drive-sim defaults to it)
            extra.update(roundabout_metadata(self.data.roundabout_commands))
        if dist.main:
            checkpoint.save(self.out_dir / name, self.model, vehicle=self.data.vehicle.to_dict(),
                            metrics=metrics, train_config=self.cfg.to_dict(),
                            step=self.pos['step'], data=self.data.index.roots,
                            smoothing_alpha=self.data.smoothing_alpha, **extra)

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
        losses, l1s, entropies = [], [], []
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
                loss, l1, entropy = self._step(batch, new_group=window == 0,
                                               episode=(epoch, group))
                frames_done += int(batch['valid'].sum())
                pos['step'] += 1
                pos['epoch'], pos['group'], pos['window'] = \
                    (epoch, group, window + 1) if window + 1 < length else (epoch, group + 1, 0)
                losses.append(loss)
                l1s.append(l1)
                if entropy is not None:
                    entropies.append(entropy)
                if pos['step'] % cfg.log_every == 0 or pos['step'] == cfg.max_steps:
                    self.train_loss = float(torch.stack(losses).mean())   # syncs the device
                    tock = time.perf_counter()
                    busy_s += tock - got
                    total = wait_s + busy_s
                    self.metrics_log.write(
                        step=pos['step'], epoch=pos['epoch'], phase='train',
                        loss=self.train_loss, l1_u_per_m=float(torch.stack(l1s).mean()),
                        entropy_nats=float(torch.stack(entropies).mean()) if entropies else '',
                        frames=frames_done, frames_per_s=frames_done / max(total, 1e-9),
                        data_wait_share=wait_s / max(total, 1e-9),
                        wall_s=time.perf_counter() - start)
                    losses, l1s, entropies = [], [], []
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
