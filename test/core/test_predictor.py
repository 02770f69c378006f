"""Predictor: streaming over camera frames equals the sequence forward; precisions."""

import numpy as np
import pytest
import torch

from signattn_driver.checkpoint import load_model
from signattn_driver.predictor import Predictor
from signattn_driver.preprocessing import image_to_input


def test_streaming_equals_one_forward_over_the_sequence(tiny_checkpoint, camera_frames):
    predictor = Predictor(tiny_checkpoint, device='cpu')
    streamed = [predictor.step(f) for f in camera_frames]
    model, _ = load_model(tiny_checkpoint)
    x = torch.stack([image_to_input(f) for f in camera_frames])[None]
    with torch.no_grad():
        u, att, _ = model(x)
    assert np.allclose([s[0] for s in streamed], u[0].numpy(), atol=1e-6)
    for (_, a), ref in zip(streamed, att[0]):
        assert a.shape == (10, 20) and a.dtype == np.float32
        assert np.allclose(a, ref.numpy(), atol=1e-6)
        assert a.sum() == pytest.approx(1.0, abs=1e-5)


def test_reset_restarts_the_sequence(tiny_checkpoint, camera_frames):
    predictor = Predictor(tiny_checkpoint, device='cpu')
    first = predictor.step(camera_frames[0])[0]
    second = predictor.step(camera_frames[0])[0]
    predictor.reset()
    again = predictor.step(camera_frames[0])[0]
    assert again == first
    assert second != first


@pytest.mark.parametrize('precision', ['bf16', 'int8'])
def test_reduced_precisions_stay_close_to_fp32(tiny_checkpoint, camera_frames, precision):
    ref = Predictor(tiny_checkpoint, device='cpu')
    low = Predictor(tiny_checkpoint, device='cpu', precision=precision)
    u_ref = np.array([ref.step(f)[0] for f in camera_frames])
    u_low = np.array([low.step(f)[0] for f in camera_frames])
    assert np.isfinite(u_low).all()
    assert np.abs(u_low - u_ref).max() < 0.5 * np.abs(u_ref).max() + 1e-4


def test_bad_arguments(tiny_checkpoint):
    with pytest.raises(ValueError):
        Predictor(tiny_checkpoint, precision='fp8')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='CUDA'):
            Predictor(tiny_checkpoint, device='cuda')


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='no CUDA device on this machine')


@needs_cuda
def test_cuda_matches_cpu_on_the_same_input(tiny_checkpoint, camera_frames, monkeypatch):
    """Same preprocessed input on both devices (TF32 off): the network agrees to float error.

    The sign path is discontinuous: features within rounding of 0 may flip, so the CUDA
    preprocessing's 1-level differences are tested separately (test_preprocessing.py).
    """
    monkeypatch.setattr(torch.backends.cudnn, 'allow_tf32', False)
    cpu = Predictor(tiny_checkpoint, device='cpu')
    gpu = Predictor(tiny_checkpoint, device='cuda', cuda_graph=False)
    for f in camera_frames:
        x = cpu.preprocess(f)
        (u_c, a_c), (u_g, a_g) = cpu.step_input(x)[:2], gpu.step_input(x)[:2]   # u, alpha
        assert u_g.item() == pytest.approx(u_c.item(), abs=1e-5)
        assert torch.allclose(a_g.cpu(), a_c, atol=1e-5)


@needs_cuda
def test_cuda_graph_replay_equals_eager_steps(tiny_checkpoint, camera_frames):
    eager = Predictor(tiny_checkpoint, device='cuda', cuda_graph=False)
    graph = Predictor(tiny_checkpoint, device='cuda', cuda_graph=True)
    for round_ in range(2):
        for f in camera_frames:
            (u_e, a_e), (u_g, a_g) = eager.step(f), graph.step(f)
            assert u_g == pytest.approx(u_e, abs=1e-6)
            assert np.allclose(a_g, a_e, atol=1e-6)
        eager.reset()
        graph.reset()
    assert graph._graph is not None


@needs_cuda
def test_cuda_graph_keeps_state_on_non_finite_output(tiny_checkpoint, camera_frames):
    graph = Predictor(tiny_checkpoint, device='cuda')
    eager = Predictor(tiny_checkpoint, device='cuda', cuda_graph=False)
    for f in camera_frames[:3]:
        graph.step(f)
        eager.step(f)
    bad = graph.preprocess(camera_frames[3]) * float('nan')
    u_bad = graph.step_input(bad).u
    assert not torch.isfinite(u_bad).all()
    assert graph.step(camera_frames[4])[0] == pytest.approx(eager.step(camera_frames[4])[0],
                                                            abs=1e-6)
