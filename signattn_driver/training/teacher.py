"""A teacher for distillation: a trained SteeringNet run beside the student (TrainConfig).

The teacher sees exactly what the student sees on every window (the augmented frames, the
commands it is told) and carries its own LSTM state across the windows of an episode, rebuilt
from the first frame when a new group of episodes starts, as the student's is. It runs in eval
mode (no dropout) without gradient; its u is a second target, `distill_weight` x L1(u,
u_teacher) (training.losses.steering_l1).
"""

import torch

from signattn_driver import checkpoint
from signattn_driver.model import ModelConfig, SteeringNet
from signattn_driver.training.config import TrainingError


class Teacher:
    """A frozen SteeringNet and its carried state (h, c), each (B, lstm_hidden)."""

    def __init__(self, model: SteeringNet):
        self.model = model.eval().requires_grad_(False)
        self.carry = None

    @classmethod
    def load(cls, path, student: ModelConfig, device) -> 'Teacher':
        """Load the teacher from a checkpoint; it must take the student's inputs.

        Raises:
            TrainingError: unreadable checkpoint, or a command model teaching a camera-only one
                (or the other way round).
        """
        try:
            model, _ = checkpoint.load_model(path)
        except checkpoint.CheckpointError as err:
            raise TrainingError(f'teacher_checkpoint: {err}') from err
        if model.config.num_commands != student.num_commands:
            raise TrainingError(f'teacher_checkpoint {path}: it takes {model.config.num_commands}'
                                f' route commands, the student {student.num_commands}')
        return cls(model.to(device))

    @torch.no_grad()
    def predict(self, x: torch.Tensor, commands: torch.Tensor | None,
                new_group: bool) -> torch.Tensor:
        """Return the teacher's u (B, T), 1/m, for network input x (B, T, 3, 80, 160)."""
        state = None if new_group or self.carry is None else self.carry
        u, _, self.carry = self.model(x, state, commands=commands)
        return u.float()
