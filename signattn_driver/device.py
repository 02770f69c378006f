"""Resolve a device string once ('auto' picks CUDA when there is one)."""

import torch

from signattn_driver.errors import ConfigError


def resolve_device(device: str = 'auto') -> torch.device:
    """Map 'auto' | 'cpu' | 'cuda' | 'cuda:N' to a torch.device that exists here.

    Raises:
        ConfigError (a ValueError): unknown string, or CUDA asked for but not available.
    """
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ConfigError(f'unknown device {device!r} (use auto, cpu, cuda or cuda:N)') from err
    if dev.type == 'cuda':
        if not torch.cuda.is_available():
            raise ConfigError(f'device {device!r} asked for, but CUDA is not available here')
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f'device {device!r}: only {torch.cuda.device_count()} GPU(s)')
    elif dev.type != 'cpu':
        raise ConfigError(f'unsupported device {device!r} (use auto, cpu, cuda or cuda:N)')
    return dev
