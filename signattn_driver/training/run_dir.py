"""The run folder: refusing to overwrite, checking a resume fits, metrics.csv and TensorBoard.

metrics.csv has one row per `log_every` training steps (phase 'train': `loss`, the objective
minimized, and `l1_u_per_m`, its L1 term on the augmented training windows) and one per
validation (phase 'val': `mae_u_per_m`, `mae_steering_deg` on the validation segments).
"""

import csv
import logging
from pathlib import Path

from signattn_driver import checkpoint
from signattn_driver.model import ModelConfig
from signattn_driver.training.config import TrainConfig, TrainingError
from signattn_driver.training.data import PreparedData

METRIC_COLUMNS = ('step', 'epoch', 'phase', 'loss', 'l1_u_per_m', 'mae_u_per_m',
                  'mae_steering_deg', 'entropy_nats', 'frames', 'frames_per_s',
                  'data_wait_share', 'wall_s')
# Settings that may change when a run is resumed; any other change is refused.
RESUMABLE_CHANGES = ('max_steps', 'val_every', 'log_every', 'num_workers', 'device')
log = logging.getLogger(__name__)


def check_run_dir(out_dir: Path, resume: bool, model_config: ModelConfig,
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


class MetricsLog:
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
        """Append one row (missing columns stay empty)."""
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
        """Close the TensorBoard writer."""
        if self.tb is not None:
            self.tb.close()
