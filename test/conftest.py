"""Shared fixtures: the tiny config (config/train_tiny.yaml), checkpoints, ROS 2 isolation."""

import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from signattn_driver import checkpoint
from signattn_driver.model import ModelConfig, SteeringNet
from signattn_driver.paths import config_path
from signattn_driver.training.config import MODEL_KEYS, TINY_CONFIG

# DDS discovery stays on loopback for every test, whatever the caller's shell says.
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'


def tiny_settings(**overrides) -> dict:
    """Return config/train_tiny.yaml (the one CPU-sized run config) with `overrides` applied."""
    settings = yaml.safe_load(config_path(TINY_CONFIG).read_text())
    settings.update(overrides)
    return settings


def tiny_config(**overrides) -> ModelConfig:
    """Return the ModelConfig of config/train_tiny.yaml (the paper's structure, CPU-sized)."""
    settings = tiny_settings(**overrides)
    return ModelConfig(**{k: v for k, v in settings.items() if k in MODEL_KEYS})


@pytest.fixture
def tiny_model():
    """Build a seeded tiny "sign" model in eval mode."""
    torch.manual_seed(0)
    return SteeringNet(tiny_config()).eval()


@pytest.fixture
def tiny_checkpoint(tmp_path, tiny_model):
    """Save a tiny checkpoint and return its path."""
    return checkpoint.save(tmp_path / 'tiny.pt', tiny_model, vehicle={'name': 'mkz'})


@pytest.fixture
def camera_frames():
    """Make eight 480x640 BGR uint8 frames with structure (sky, road, a line) and noise."""
    rng = np.random.default_rng(0)
    frames = []
    for i in range(8):
        f = np.zeros((480, 640, 3), np.uint8)
        f[:240] = (200, 160, 120)
        f[240:] = (80, 90, 85)
        f[240:, 100 + 20 * i:110 + 20 * i] = 255
        f = np.clip(f.astype(int) + rng.integers(-20, 21, f.shape), 0, 255).astype(np.uint8)
        frames.append(f)
    return frames


_next_domain = [int(os.environ.get('SIGNATTN_TEST_DOMAIN_BASE', '60'))]


@pytest.fixture
def ros_domain_id(monkeypatch):
    """Give this test a ROS_DOMAIN_ID (1..101) of its own, exported to subprocesses."""
    domain = 1 + (_next_domain[0] + os.getpid()) % 101
    _next_domain[0] += 1
    monkeypatch.setenv('ROS_DOMAIN_ID', str(domain))
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    return domain


@pytest.fixture(scope='session')
def pip_prefix(tmp_path_factory) -> Path:
    """`pip install .` of this source tree into a fresh prefix (the layout `make install` makes).

    Tests that start the package's executables or launch file use it, so they run this tree's
    code rather than a copy installed earlier.
    """
    pytest.importorskip('pip', reason='pip is needed to install the package into a prefix')
    prefix = tmp_path_factory.mktemp('pip_prefix')
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--no-build-isolation',
         # --ignore-installed: never uninstall the copy `make install` put in the venv
         '--ignore-installed', '--no-warn-script-location', '--prefix', str(prefix), str(root)],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return prefix


def prefix_site_packages(prefix: Path) -> Path:
    """Return the site-packages directory under a pip `--prefix` that holds signattn_driver."""
    return next(p for p in prefix.glob('lib*/python*/*-packages')
                if (p / 'signattn_driver').is_dir())
