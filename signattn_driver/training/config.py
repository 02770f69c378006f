"""Training hyper-parameters and the run configuration (YAML + command-line overrides).

A run is configured by one flat YAML mapping whose keys are the field names of `ModelConfig`
and of `TrainConfig` (the two share no names), e.g. config/train_tiny.yaml:

    lstm_hidden: 64
    sequence_length: 10
    max_steps: 200

Flags given on the command line override the file; everything else keeps its default. The run
folder stores the resolved mapping as config.yaml, which is itself a valid --config file.

Two configs ship: config/train_paper.yaml (PAPER_CONFIG), whose values are exactly the defaults
of ModelConfig and TrainConfig (a test compares them), used by `signattn train` and `signattn
sweep` when no --config is given; and config/train_tiny.yaml (TINY_CONFIG), the one CPU-sized
config that `--tiny`, the tests and the benchmarks start from.
"""

from dataclasses import asdict, dataclass, field, fields
import math
from pathlib import Path

import yaml

from signattn_driver.data.sequences import SPLIT_MODES
from signattn_driver.errors import ConfigError, SignattnError
from signattn_driver.model import ModelConfig

BEST_METRICS = ('mae_steering_deg', 'mae_u_per_m')
ALIGN_TARGETS = ('phi', 'phi_uniform')   # TrainConfig.align_target
PAPER_CONFIG = 'train_paper.yaml'     # under config/ (signattn_driver.paths.config_path)
TINY_CONFIG = 'train_tiny.yaml'


class TrainingError(SignattnError):
    """A training run that cannot start or continue: bad config, unreadable data, bad run dir."""


@dataclass
class TrainConfig:
    """How to train; defaults follow the paper (Sec. IV-A) where it states a value."""

    sequence_length: int = 20    # T: frames per truncated-BPTT window (1 s at 20 Hz)
    episode_windows: int = 10    # LSTM state carried (detached) across this many windows
    batch_size: int = 16         # episodes in parallel (per process under torchrun)
    max_steps: int = 50000       # optimizer updates; one update per window of each lane
    lr: float = 1e-4             # Adam (paper)
    weight_decay: float = 0.0
    grad_clip: float = 1.0       # max global gradient norm; 0 disables clipping
    val_every: int = 1000        # steps between validations (and last.pt/best.pt writes)
    val_split: str = 'drive'     # 'drive' | 'time_blocks' (see signattn_driver.data.sequences)
    val_fraction: float = 0.1    # share of drives / blocks held out; 0: no validation
    val_drives: list = field(default_factory=list)  # 'drive' split: hold out these by name
    block_s: float = 60.0        # 'time_blocks' block length
    guard_s: float = 2.0         # 'time_blocks' gap between training and validation frames
    best_metric: str = 'mae_steering_deg'  # validation metric that selects best.pt
    entropy_weight: float = 0.0  # Kim & Canny attention-entropy penalty, "soft" only
    # KL(|phi| / sum|phi| || alpha) per frame, phi the exact contribution map in eval mode with
    # the target detached: pulls alpha towards the cells that carry u (docs/model.md).
    align_weight: float = 0.0
    # The alignment term's target: 'phi' (|phi| of the model's own alpha; where alpha acts,
    # phi grows where alpha is high, so the target follows alpha) or 'phi_uniform' (|phi| of
    # the same frame and state at alpha = 1/L, which alpha cannot move).
    align_target: str = 'phi'
    # lr of the per-cell attention bias (ModelConfig.attention_position_bias); 0: `lr`. Adam
    # moves a parameter by about lr per step, so at lr 3e-4 the bias can drift only 0.3 nats
    # in 1,000 steps, where |phi|'s mean share spans several nats across the rows.
    position_bias_lr: float = 0.0
    # lr of the attention gain's weights (ModelConfig.attention_gain); 0: `lr`. At lr 3e-4 a
    # 1,500-step fine-tune moved the gain mostly as one constant (sd 0.035 over frames).
    attention_gain_lr: float = 0.0
    # Route-command models: an episode in which a turn command (left, straight, right) is in
    # force on any frame appears this many times per epoch (1: once, like every other episode).
    command_repeat: int = 1
    # Route-command models: the L1 loss weight of a frame on which a turn command is in force
    # (follow-lane frames weigh 1). L1 fits the median, which under-steers the long, wide
    # turns that few frames carry (docs/simulation.md#the-route-command-model).
    turn_weight: float = 1.0
    # Route-command models: the probability that a training episode sees follow-lane in place
    # of its recorded commands on every frame (drawn per episode, the same on every window of
    # it, reproducibly from seed, epoch and group). The follow-lane branch then also learns the
    # junctions, where the expert turns unannounced; the loss weights keep the recorded commands.
    command_dropout: float = 0.0
    # Keep the convolutional encoder's weights fixed (fine-tuning the attention, LSTM and head
    # on top of a trained encoder); its backward pass, most of a step's cost, is skipped.
    freeze_encoder: bool = False
    camera: str = 'center'
    augment: bool = False        # brightness jitter of V per episode (label unchanged)
    brightness_jitter: float = 0.2   # V gain drawn uniformly from 1 +- this
    flip: bool = False           # mirror half of the episodes and negate u (see docs)
    num_workers: int = 6         # DataLoader worker processes (a GPU run; tiny config: 1)
    seed: int = 0
    device: str = 'auto'
    amp: bool = True             # bf16 autocast on CUDA (ignored on the CPU)
    log_every: int = 50          # steps between metrics.csv rows of training loss
    init_checkpoint: str = ''    # start from these weights (fine-tuning, DAgger); '' = random
    # Distillation: a trained checkpoint run beside the student on the same frames, commands
    # and windows (eval mode, its own carried state); distill_weight x L1(u, u_teacher) joins
    # the loss (training.teacher). Both set, or neither.
    teacher_checkpoint: str = ''
    distill_weight: float = 0.0

    def __post_init__(self):
        """Coerce YAML-friendly values and reject impossible settings."""
        self.val_drives = [str(d) for d in (self.val_drives or [])]
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f'{f.name} must be an integer, got {value!r}')
            if f.type is float:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ConfigError(f'{f.name} must be a number, got {value!r}')
                setattr(self, f.name, float(value))
            if f.type is bool and not isinstance(value, bool):
                raise ConfigError(f'{f.name} must be true or false, got {value!r}')
        positive = ('sequence_length', 'batch_size', 'max_steps', 'val_every', 'log_every')
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f'{name} must be >= 1, got {getattr(self, name)}')
        if self.command_repeat < 1:
            raise ConfigError(f'command_repeat must be >= 1, got {self.command_repeat}')
        if not (self.turn_weight > 0 and math.isfinite(self.turn_weight)):
            raise ConfigError(f'turn_weight must be > 0, got {self.turn_weight}')
        if not 0.0 <= self.command_dropout < 1.0:
            raise ConfigError(f'command_dropout must be in [0, 1), got {self.command_dropout}')
        if self.episode_windows < 1 or self.num_workers < 0:
            raise ConfigError('episode_windows must be >= 1 and num_workers >= 0')
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f'lr must be > 0, got {self.lr}')
        if min(self.weight_decay, self.grad_clip, self.entropy_weight, self.align_weight,
               self.position_bias_lr, self.attention_gain_lr, self.distill_weight) < 0:
            raise ConfigError('weight_decay, grad_clip, entropy_weight, align_weight, '
                              'position_bias_lr, attention_gain_lr and distill_weight must be '
                              '>= 0')
        if bool(self.teacher_checkpoint) != (self.distill_weight > 0):
            raise ConfigError('teacher_checkpoint and distill_weight > 0 go together (got '
                              f'{self.teacher_checkpoint!r} and {self.distill_weight})')
        if self.align_target not in ALIGN_TARGETS:
            raise ConfigError(f'align_target must be one of {ALIGN_TARGETS}, '
                              f'got {self.align_target!r}')
        if self.val_split not in SPLIT_MODES:
            raise ConfigError(f'val_split must be one of {SPLIT_MODES}, got {self.val_split!r}')
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f'val_fraction must be in [0, 1), got {self.val_fraction}')
        if not self.block_s > 0 or self.guard_s < 0:
            raise ConfigError('block_s must be > 0 and guard_s >= 0')
        if self.best_metric not in BEST_METRICS:
            raise ConfigError(f'best_metric must be one of {BEST_METRICS}')
        if not 0.0 <= self.brightness_jitter < 1.0:
            raise ConfigError('brightness_jitter must be in [0, 1)')

    def to_dict(self) -> dict:
        """Plain-types dict for checkpoints and YAML."""
        return asdict(self)


MODEL_KEYS = tuple(f.name for f in fields(ModelConfig))
TRAIN_KEYS = tuple(f.name for f in fields(TrainConfig))
assert not set(MODEL_KEYS) & set(TRAIN_KEYS), 'config field names must be unique'


def load_run_config(yaml_path, overrides: dict | None = None):
    """Resolve the model and training configs of a run.

    Args:
        yaml_path: flat YAML mapping of ModelConfig/TrainConfig field names, or None.
        overrides: same keys; values that are None are ignored (unset command-line flags).

    Returns:
        (ModelConfig, TrainConfig).

    Raises:
        TrainingError: unreadable file, unknown key, or a value the configs reject.
    """
    values = {}
    if yaml_path is not None:
        path = Path(yaml_path)
        try:
            loaded = yaml.safe_load(path.read_text())
        except OSError as err:
            raise TrainingError(f'cannot read config {path}: {err}') from err
        except yaml.YAMLError as err:
            raise TrainingError(f'{path}: not valid YAML: {err}') from err
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise TrainingError(f'{path}: expected a mapping of config keys, got '
                                f'{type(loaded).__name__}')
        values.update(loaded)
        where = str(path)
    else:
        where = 'overrides'
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = sorted(set(values) - set(MODEL_KEYS) - set(TRAIN_KEYS))
    if unknown:
        raise TrainingError(f'{where}: unknown config key(s) {unknown}; valid keys are the '
                            f'model fields {list(MODEL_KEYS)} and the training fields '
                            f'{list(TRAIN_KEYS)}')
    try:
        model = ModelConfig(**{k: v for k, v in values.items() if k in MODEL_KEYS})
        train = TrainConfig(**{k: v for k, v in values.items() if k in TRAIN_KEYS})
    except (TypeError, ValueError) as err:
        raise TrainingError(f'{where}: invalid config: {err}') from err
    if train.entropy_weight > 0 and model.attention != 'soft':
        raise TrainingError(f'{where}: entropy_weight applies to attention "soft" only '
                            f'(got attention {model.attention!r})')
    return model, train


def config_to_yaml(model: ModelConfig, train: TrainConfig) -> str:
    """Flat YAML of both configs, loadable again with `load_run_config`."""
    return yaml.safe_dump({**model.to_dict(), **train.to_dict()}, sort_keys=False)
