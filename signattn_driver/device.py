"""Resolve a device string once ('auto' picks CUDA when there is one); the one device rule."""

import torch

from signattn_driver.choices import DEVICE_HELP, is_device_name
from signattn_driver.errors import ConfigError


def resolve_device(device: str = 'auto') -> torch.device:
    """Map 'auto' | 'cpu' | 'cuda' | 'cuda:N' to a torch.device that exists here.

    Raises:
        ConfigError (a ValueError): unknown string, or CUDA asked for but not available.
    """
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if not is_device_name(device):
        raise ConfigError(f'unknown device {device!r} (use {DEVICE_HELP})')
    dev = torch.device(device)
    if dev.type == 'cuda':
        if not torch.cuda.is_available():
            raise ConfigError(f'device {device!r} asked for, but CUDA is not available here')
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f'device {device!r}: only {torch.cuda.device_count()} GPU(s)')
    return dev
