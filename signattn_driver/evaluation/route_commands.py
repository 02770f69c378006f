"""The route commands an evaluation feeds a model: each frame's recorded command.

A route-command model (ModelConfig.num_commands > 0) is stepped, explained and masked under the
command the navigator gave at each frame: the dataset's `route_command` column (values in
signattn_driver/route_command.py; the dataset loader gives sets without it follow-lane). A
camera-only model is given no command at all (None), so its arithmetic is exactly what it was
before commands existed.

    recorded = recorded_commands(window)             # (N,) int64, from the labels
    fed = commands_to_feed(recorded, use_recorded)    # or follow-lane throughout
    commands = commands_for(model, fed, device)       # (N,) long tensor, or None (camera only)
    u, alpha, state = step_with(model.step, x, state, commands)
"""

import numpy as np
import torch

from signattn_driver.route_command import FOLLOW_LANE, ROUTE_COMMANDS


def recorded_commands(labels: dict) -> np.ndarray:
    """Return the recorded route command of each frame: (N,) int64.

    Args:
        labels: a drive's labels or a window of them (data.sequences.read_window). Their
            `route_command` column is always there: the dataset loader fills it with
            follow-lane for sets written without it (data.dataset.OPTIONAL_COLUMNS).
    """
    return np.asarray(labels['route_command'], np.int64)


def commands_to_feed(recorded: np.ndarray, use_recorded: bool = True) -> np.ndarray:
    """Return the recorded commands (N,), or follow-lane throughout when they are withheld.

    Withholding them (EvalConfig.route_commands False, `--no-route-commands`) measures a command
    model without its navigator, as `signattn drive-sim --no-route-commands` does in closed loop.
    """
    recorded = np.asarray(recorded, np.int64)
    return recorded if use_recorded else np.full_like(recorded, FOLLOW_LANE)


def takes_commands(model) -> bool:
    """Whether a model is conditioned on route commands (a step callable without config: no)."""
    return bool(getattr(getattr(model, 'config', None), 'num_commands', 0))


def commands_for(model, recorded: np.ndarray, device=None) -> torch.Tensor | None:
    """Return the commands to feed `model`: (N,) long on `device` (command model), else None."""
    if not takes_commands(model):
        return None
    return torch.as_tensor(np.asarray(recorded, np.int64), device=device)


def step_with(step, frames: torch.Tensor, state, commands: torch.Tensor | None):
    """Call `step(frames (B, ...), state)`, with `commands` (B,) or (1,) as its third argument.

    Without commands the call is exactly the camera-only one, so any callable with the step
    interface (a SteeringNet's `step`, a test's stand-in) still works.
    """
    if commands is None:
        return step(frames, state)
    return step(frames, state, commands)


def command_counts(commands) -> dict:
    """Frames per command name, e.g. {'follow_lane': 90, 'left': 10, 'straight': 0, ...}."""
    counts = np.bincount(np.asarray(commands, np.int64), minlength=len(ROUTE_COMMANDS))
    return {name: int(counts[i]) for i, name in enumerate(ROUTE_COMMANDS)}
