"""The node's per-frame network step (ros/steering_step.py), without a ROS graph."""

import numpy as np
import pytest
import torch

from signattn_driver.model import Explained
from signattn_driver.preprocessing import PreprocessingError
from signattn_driver.ros.frame_gate import Rejection
from signattn_driver.ros.steering_step import SteeringResult, SteeringStep


class FakePredictor:
    """Returns a fixed Explained, or raises what it is told to, once."""

    def __init__(self, u=0.01, raise_once=None):
        self.u, self.raise_once, self.device, self.commands = u, raise_once, 'cuda', []

    def preprocess(self, image, order):
        return torch.zeros(1, 3, 80, 160)

    def step_input(self, x, command=None):
        self.commands.append(command)
        if self.raise_once is not None:
            err, self.raise_once = self.raise_once, None
            raise err
        phi = torch.full((1, 10, 20), 0.001)
        return Explained(torch.tensor([self.u]), torch.full((1, 10, 20), 1 / 200), phi,
                         torch.tensor([self.u - 0.2]), None)

    def to(self, device):
        self.device = device


IMAGE = np.zeros((480, 640, 3), np.uint8)


def test_a_frame_gives_u_and_only_the_maps_asked_for_with_its_times():
    times = {}
    step = SteeringStep(FakePredictor())
    result = step(IMAGE, 'bgr', times)
    assert result == SteeringResult(pytest.approx(0.01), None, None)
    assert set(times) == {'preprocess', 'network'} and all(v >= 0 for v in times.values())
    both = step(IMAGE, 'bgr', {}, want_attention=True, want_contribution=True, command=2)
    assert both.attention.shape == both.contribution_per_m.shape == (10, 20)
    assert both.contribution_per_m.dtype == np.float32
    assert step.predictor.commands == [None, 2]


def test_the_real_predictor_answers_with_the_same_phi_as_step_full(tiny_checkpoint):
    from signattn_driver.predictor import Predictor
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (120, 160, 3), np.uint8)
    result = SteeringStep(Predictor(tiny_checkpoint, device='cpu'))(
        image, 'bgr', {}, want_attention=True, want_contribution=True)
    reference = Predictor(tiny_checkpoint, device='cpu').step_full(image,
                                                                   want_contribution=True)
    assert result.u_per_m == pytest.approx(reference.u_per_m, abs=1e-7)
    np.testing.assert_allclose(result.contribution_per_m, reference.contribution_per_m,
                               atol=1e-9)
    np.testing.assert_allclose(result.attention, reference.attention, atol=1e-9)


def test_failures_become_rejections():
    nan = SteeringStep(FakePredictor(u=float('nan')))
    refused = nan(IMAGE, 'bgr', {})
    assert refused == Rejection('non_finite_output', 'network output nan (state kept)')
    bad = SteeringStep(FakePredictor(raise_once=PreprocessingError('expected (H, W, 3)')))
    assert bad(IMAGE, 'bgr', {}) == Rejection('corrupt', 'expected (H, W, 3)')


def test_cuda_out_of_memory_moves_to_the_cpu_and_says_so():
    predictor = FakePredictor(raise_once=torch.cuda.OutOfMemoryError('simulated'))
    step = SteeringStep(predictor)
    refused = step(IMAGE, 'bgr', {})
    assert refused.kind == 'cuda_oom' and predictor.device == 'cpu'
    assert step.device_note == 'fell back to the CPU after CUDA ran out of memory'
    assert isinstance(step(IMAGE, 'bgr', {}), SteeringResult)   # steering on, on the CPU
