"""Checkpoints: a plain dict of tensors and built-in types, loaded with `weights_only=True`.

Layout (FORMAT_VERSION 1):
    {'format': 'signattn_driver', 'format_version': 1,
     'model_config': ModelConfig.to_dict(), 'state_dict': {name: tensor},
     'state_dict_sha256': hex digest over names, shapes, dtypes and bytes,
     'preprocessing': preprocessing.PREPROCESSING, ...metadata (vehicle, metrics, ...)}
Loading never needs the training code: the model is rebuilt from 'model_config'.
"""

from dataclasses import dataclass, field
import hashlib
import os
from pathlib import Path
import pickle
import warnings
import zipfile

import torch

from signattn_driver.errors import SignattnError
from signattn_driver.model import ModelConfig, SteeringNet
from signattn_driver.preprocessing import PREPROCESSING, PREPROCESSING_VERSION

FORMAT = 'signattn_driver'
FORMAT_VERSION = 1
_RESERVED = ('format', 'format_version', 'model_config', 'state_dict', 'state_dict_sha256')


class CheckpointError(SignattnError):
    """A checkpoint that is missing, unreadable, modified or does not fit the model."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: model config, weights and everything else that was saved."""

    path: Path
    config: ModelConfig
    state_dict: dict
    metadata: dict = field(default_factory=dict)
    file_sha256: str = ''

    def build_model(self) -> SteeringNet:
        """Rebuild the network from the config and load the weights (strict)."""
        model = SteeringNet(self.config)
        try:
            model.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as err:
            raise CheckpointError(f'{self.path}: weights do not fit the model config '
                                  f'{self.config}: {err}') from err
        return model


def state_dict_digest(state_dict: dict) -> str:
    """SHA-256 over parameter names, shapes, dtypes and raw bytes."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f'{name}|{tuple(t.shape)}|{t.dtype}|'.encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b'')
    return h.hexdigest()


def save(path, model: SteeringNet, **metadata) -> Path:
    """Write `model` and `metadata` atomically (a crash never leaves a half-written file).

    Args:
        path: destination file (conventionally *.pt).
        model: the network; its config is stored so that loading can rebuild it.
        **metadata: extra entries of plain types or tensors (vehicle, metrics, optimizer, ...).

    Returns:
        The path written.
    """
    clash = set(metadata) & set(_RESERVED)
    if clash:
        raise ValueError(f'metadata keys {sorted(clash)} are reserved')
    state_dict = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        'format': FORMAT,
        'format_version': FORMAT_VERSION,
        'model_config': model.config.to_dict(),
        'state_dict': state_dict,
        'state_dict_sha256': state_dict_digest(state_dict),
        'preprocessing': dict(PREPROCESSING),
        **metadata,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp{os.getpid()}')
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def _check_container(path: Path):
    """Refuse files that are not torch zip archives before torch.load sees them.

    `checkpoint.save` always writes torch's zip format; a legacy or plain pickle would only be
    refused by the weights-only unpickler after a torch UserWarning, so it is named here.
    """
    if zipfile.is_zipfile(path):
        return
    with open(path, 'rb') as f:
        head = f.read(4)
    if head.startswith(b'PK'):
        raise CheckpointError(f'{path}: damaged or truncated checkpoint (a zip archive without '
                              f'its directory)')
    if head[:1] == b'\x80':   # pickle protocol >= 2
        raise CheckpointError(f'{path}: refused to load: a plain pickle file, not a torch zip '
                              f'checkpoint (unpickling it could run code); write checkpoints '
                              f'with `signattn train` or checkpoint.save')
    raise CheckpointError(f'{path}: not a checkpoint (not a torch zip/pickle file)')


def load(path, map_location='cpu') -> Checkpoint:
    """Read and verify a checkpoint written by `save`.

    Raises:
        CheckpointError: missing or truncated file, a file that is not a signattn_driver
            checkpoint, one holding pickled code, weights changed after saving, or an
            unsupported format or preprocessing version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'checkpoint not found: {path}')
    try:
        _check_container(path)
    except OSError as err:
        raise CheckpointError(f'{path}: cannot be read ({err.strerror or err})') from err
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')   # the refusal below says it in one line
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if 'Weights only load failed' in str(err):
            raise CheckpointError(f'{path}: refused to load: it holds objects other than '
                                  f'tensors and plain data (weights_only=True)') from err
        raise CheckpointError(f'{path}: not a checkpoint file (unpickling failed)') from err
    except Exception as err:  # torch raises many types for damaged or foreign files
        detail = str(err).strip().splitlines()[0][:120] if str(err).strip() else ''
        raise CheckpointError(f'{path}: not a checkpoint file, or truncated '
                              f'({type(err).__name__}: {detail})') from err
    if not isinstance(payload, dict) or payload.get('format') != FORMAT:
        raise CheckpointError(f'{path}: not a signattn_driver checkpoint')
    if payload.get('format_version') != FORMAT_VERSION:
        raise CheckpointError(f'{path}: format version {payload.get("format_version")} is not '
                              f'supported (this version reads {FORMAT_VERSION})')
    state_dict = payload.get('state_dict')
    if not isinstance(state_dict, dict):
        raise CheckpointError(f'{path}: no state_dict')
    if state_dict_digest(state_dict) != payload.get('state_dict_sha256'):
        raise CheckpointError(f'{path}: weights were modified after saving (SHA-256 mismatch)')
    version = payload.get('preprocessing', {}).get('version')
    if version != PREPROCESSING_VERSION:
        raise CheckpointError(f'{path}: trained with preprocessing version {version}, this '
                              f'package implements version {PREPROCESSING_VERSION}')
    try:
        config = ModelConfig(**payload['model_config'])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f'{path}: invalid model_config: {err}') from err
    metadata = {k: v for k, v in payload.items() if k not in _RESERVED}
    return Checkpoint(path, config, state_dict, metadata, _file_sha256(path))


def load_model(path, map_location='cpu') -> tuple[SteeringNet, Checkpoint]:
    """Load a checkpoint and return (model in eval mode, checkpoint)."""
    ckpt = load(path, map_location=map_location)
    model = ckpt.build_model()
    model.eval()
    return model, ckpt


def initial_weights(ckpt: Checkpoint, model: SteeringNet) -> dict:
    """Return a checkpoint's weights shaped to start training `model` (`--init-checkpoint`).

    A camera-only checkpoint (num_commands 0) into a route-command model: every command's head
    row is a copy of the camera-only head and the command embeddings are zero, so the command
    model starts out steering exactly as the checkpoint did, whatever the command (conditional
    imitation fine-tuning then separates the branches). A checkpoint without the per-cell
    attention bias (attention_position_bias) or the attention gain (attention_gain) into a
    model with them: those weights start at zero, so the model starts out with the
    checkpoint's attention and strength (g = 1). Otherwise the weights are returned as saved;
    `load_state_dict` says whether they fit.
    """
    state = dict(ckpt.state_dict)
    for key, value in model.state_dict().items():
        if key not in state and key.startswith(('attention.position_bias', 'alpha_gain.')):
            state[key] = torch.zeros_like(value)
    commands = model.config.num_commands
    if ckpt.config.num_commands or not commands:
        return state
    state['head.weight'] = state['head.weight'].repeat(commands, 1)    # (commands, d_in)
    state['head.bias'] = state['head.bias'].repeat(commands)
    state.update({k: torch.zeros_like(v) for k, v in model.state_dict().items()
                  if k.startswith('command_')})
    return state
