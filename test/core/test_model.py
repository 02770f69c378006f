"""SteeringNet: shapes, attention, the sign path and the alpha-invariance of eq. 4."""

import pytest
import torch

from conftest import tiny_config
from signattn_driver.model import (entropy_of_attention, ModelConfig, NUM_LOCATIONS,
                                   SteeringNet)


def frames(b=2, t=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, t, 3, 80, 160, generator=g) * 2 - 1


@pytest.mark.parametrize('attention', ['sign', 'soft', 'none'])
def test_shapes_and_dtypes(attention):
    torch.manual_seed(0)
    model = SteeringNet(tiny_config(attention=attention)).eval()
    u, att, (h, c) = model(frames())
    assert u.shape == (2, 3) and u.dtype == torch.float32
    assert att.shape == (2, 3, 10, 20) and att.dtype == torch.float32
    assert h.shape == c.shape == (2, tiny_config().lstm_hidden)
    assert torch.isfinite(u).all()


def test_paper_config_sizes():
    cfg = ModelConfig()
    assert (cfg.attention, cfg.quant_bits, cfg.lstm_hidden, cfg.dropout, cfg.temperature) == \
        ('sign', 10, 1024, 0.5, 1.0)
    assert cfg.lstm_input_size == 6400
    assert ModelConfig(attention='soft').lstm_input_size == 12800
    model = SteeringNet(ModelConfig())
    feats = model.encoder(torch.zeros(1, 3, 80, 160))
    assert feats.shape == (1, 64, 10, 20)


@pytest.mark.parametrize('bad', [dict(attention='hard'), dict(quant_bits=1),
                                 dict(quant_bits=25), dict(quant_range=(1.0, 0.0)),
                                 dict(temperature=0.0), dict(binarize='random')])
def test_invalid_config_rejected(bad):
    with pytest.raises(ValueError):
        ModelConfig(**bad)


def test_attention_sums_to_one_and_sharpens_as_temperature_falls():
    torch.manual_seed(1)
    model = SteeringNet(tiny_config()).eval()
    x = frames(b=2, t=2)
    entropies = []
    for temperature in (10.0, 1.0, 0.1):
        model.config.temperature = temperature
        with torch.no_grad():
            _, att, _ = model(x)
        sums = att.flatten(-2).sum(-1)
        assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5)
        assert (att > 0).all()
        entropies.append(entropy_of_attention(att).item())
    assert entropies[0] > entropies[1] > entropies[2]


def test_sign_path_outputs_plus_minus_one_times_quantized_amplitude():
    torch.manual_seed(0)
    model = SteeringNet(tiny_config(quant_bits=3)).eval()
    feats = model.encode(frames(b=1, t=1)[:, 0])
    alpha = torch.full((1, NUM_LOCATIONS), 1.0 / NUM_LOCATIONS)
    x_hat = model.attend(feats, alpha).view(1, NUM_LOCATIONS, 32)
    amp = torch.nn.functional.softplus(feats[..., 32:])
    signs = torch.sign(x_hat)
    assert set(signs.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(signs, torch.where(feats[..., :32] >= 0, 1.0, -1.0))
    levels = torch.unique(x_hat.abs())
    assert len(levels) <= 2 ** 3
    assert torch.allclose(x_hat.abs(), torch.clamp(amp, 0, 4.0), atol=4.0 / 7 / 2 + 1e-6)


def test_alpha_does_not_change_the_sign_models_forward_pass():
    """With deterministic binarization and alpha > 0, sign(x * alpha) == sign(x) (eq. 4)."""
    torch.manual_seed(0)
    model = SteeringNet(tiny_config()).eval()
    x = frames(b=2, t=4)
    with torch.no_grad():
        u_ref, _, _ = model(x)
    g = torch.Generator().manual_seed(5)

    def random_positive_attention(feats, h, temperature):
        a = torch.rand(feats.shape[:2], generator=g) + 1e-3
        return a / a.sum(-1, keepdim=True)

    model.attention.forward = random_positive_attention
    with torch.no_grad():
        u_other, _, _ = model(x)
    assert torch.equal(u_ref, u_other)


def test_alpha_is_trained_only_through_the_straight_through_gradient():
    torch.manual_seed(0)
    model = SteeringNet(tiny_config()).train()
    u, _, _ = model(frames(b=2, t=3))
    u.sum().backward()
    grad = model.attention.score.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_soft_attention_changes_the_forward_pass():
    torch.manual_seed(0)
    model = SteeringNet(tiny_config(attention='soft')).eval()
    feats = model.encode(frames(b=1, t=1)[:, 0])
    uniform = torch.full((1, NUM_LOCATIONS), 1.0 / NUM_LOCATIONS)
    peaked = torch.softmax(torch.randn(1, NUM_LOCATIONS) * 3, -1)
    assert torch.equal(model.attend(feats, uniform), feats.flatten(1))
    assert not torch.allclose(model.attend(feats, uniform), model.attend(feats, peaked))


def test_stochastic_binarize_makes_alpha_matter_in_training_only():
    torch.manual_seed(0)
    model = SteeringNet(tiny_config(binarize='stochastic'))
    feats = model.encode(frames(b=1, t=1)[:, 0]).detach()
    alpha = torch.full((1, NUM_LOCATIONS), 1.0 / NUM_LOCATIONS)
    model.train()
    a, b = model.attend(feats, alpha), model.attend(feats, alpha)
    assert not torch.equal(a, b)
    model.eval()
    assert torch.equal(model.attend(feats, alpha), model.attend(feats, alpha))


def test_streaming_equals_sequence():
    torch.manual_seed(0)
    model = SteeringNet(tiny_config()).eval()
    x = frames(b=1, t=6)
    with torch.no_grad():
        u_seq, att_seq, _ = model(x)
        state = None
        for t in range(6):
            u, att, state = model.step(x[:, t], state)
            assert torch.allclose(u, u_seq[:, t], atol=1e-6)
            assert torch.allclose(att, att_seq[:, t], atol=1e-6)


def test_state_carried_across_chunks_equals_one_long_sequence():
    torch.manual_seed(0)
    model = SteeringNet(tiny_config(attention='soft')).eval()
    x = frames(b=2, t=6)
    with torch.no_grad():
        u_all, _, _ = model(x)
        u1, _, state = model(x[:, :4])
        u2, _, _ = model(x[:, 4:], state)
    assert torch.allclose(torch.cat([u1, u2], 1), u_all, atol=1e-6)


def test_initial_state_depends_on_the_first_frame():
    torch.manual_seed(0)
    model = SteeringNet(tiny_config()).eval()
    with torch.no_grad():
        h1, _ = model.initial_state(frames(b=1, t=1, seed=1)[:, 0])
        h2, _ = model.initial_state(frames(b=1, t=1, seed=2)[:, 0])
    assert not torch.allclose(h1, h2)


def _alpha_swap_changes_u(model, x) -> float:
    """Max |u| change when the attention MLP is replaced by random positive maps."""
    with torch.no_grad():
        u_ref, _, _ = model(x)
    g = torch.Generator().manual_seed(5)
    saved = model.attention.forward

    def random_positive_attention(feats, h, temperature):
        a = torch.rand(feats.shape[:2], generator=g) + 1e-3
        return a / a.sum(-1, keepdim=True)

    model.attention.forward = random_positive_attention
    try:
        with torch.no_grad():
            u_other, _, _ = model(x)
    finally:
        model.attention.forward = saved
    return (u_ref - u_other).abs().max().item()


@pytest.mark.parametrize('binarize,acts', [('deterministic', False), ('stochastic', False),
                                           ('mean_field', True), ('gated', True)])
def test_alpha_changes_u_at_inference_only_in_the_acting_modes(binarize, acts):
    """The paper's sign model ignores alpha in eval mode; mean_field and gated do not."""
    torch.manual_seed(0)
    model = SteeringNet(tiny_config(binarize=binarize)).eval()
    with torch.no_grad():   # conv5 of a fresh model is tiny: scale it into hardtanh's range
        model.encoder.convs[-1].weight.mul_(20.0)
    change = _alpha_swap_changes_u(model, frames(b=2, t=3))
    if acts:
        assert change > 1e-5
    else:
        assert change == 0.0


def test_mean_field_draws_signs_in_training_and_uses_hardtanh_at_inference():
    torch.manual_seed(0)
    model = SteeringNet(tiny_config(binarize='mean_field', sign_kappa=2.0))
    feats = torch.randn(1, NUM_LOCATIONS, 64) * 0.3
    alpha = torch.softmax(torch.randn(1, NUM_LOCATIONS), -1)
    z = feats[..., :32] * (alpha * NUM_LOCATIONS * 2.0)[..., None]
    model.eval()
    assert torch.allclose(model.sign_path(feats[..., :32], alpha), z.clamp(-1, 1))
    model.train()
    draws = torch.stack([model.sign_path(feats[..., :32], alpha) for _ in range(400)])
    assert torch.allclose(draws.abs(), torch.ones_like(draws))   # +-1 (STE rounding aside)
    # The mean of the draws is the expectation used at inference: hardtanh(z).
    assert (draws.mean(0) - z.clamp(-1, 1)).abs().max() < 0.25
    assert (draws.mean(0) - z.clamp(-1, 1)).abs().mean() < 0.05


def test_gated_scales_the_binarized_signs_by_l_alpha():
    torch.manual_seed(0)
    model = SteeringNet(tiny_config(binarize='gated')).eval()
    feats = torch.randn(1, NUM_LOCATIONS, 32)
    alpha = torch.softmax(torch.randn(1, NUM_LOCATIONS), -1)
    out = model.sign_path(feats, alpha)
    expected = torch.where(feats >= 0, 1.0, -1.0) * (alpha * NUM_LOCATIONS)[..., None]
    assert torch.allclose(out, expected)


def test_sign_saturation_counts_hardtanh_saturated_inputs():
    torch.manual_seed(0)
    model = SteeringNet(tiny_config(binarize='mean_field')).eval()
    x = frames(b=2, t=1)[:, 0]
    low = model.sign_saturation(x)
    model.config.sign_kappa = 1e6                   # every non-zero input saturates
    high = model.sign_saturation(x)
    assert low.shape == (2,) and ((low >= 0) & (low <= 1)).all()
    assert (high > 0.99).all() and (high > low).all()
    assert torch.isnan(SteeringNet(tiny_config(attention='soft')).sign_saturation(x)).all()


def test_sign_saturation_of_a_command_model_uses_the_command():
    torch.manual_seed(0)
    model = SteeringNet(tiny_config(binarize='mean_field', num_commands=4)).eval()
    model.config.sign_kappa = 30.0                  # some inputs saturate, not all
    with torch.no_grad():                           # a command that moves alpha a lot
        model.command_attention.weight.normal_(0.0, 3.0)
    x = frames(b=2, t=1)[:, 0]
    for command in range(4):
        alpha = model.explain_step(x, None, command).alpha.flatten(1)
        feats = model.encode(x)
        z = model.sign_input(feats[..., :feats.shape[-1] // 2], alpha)
        expected = (z.abs() >= 1.0).flatten(1).float().mean(1)
        assert torch.equal(model.sign_saturation(x, None, command), expected)
    assert not torch.equal(model.sign_saturation(x, None, 1), model.sign_saturation(x, None, 3))


@pytest.mark.parametrize('bad', [dict(sign_kappa=0.0), dict(sign_kappa=float('inf'))])
def test_invalid_kappa_rejected(bad):
    with pytest.raises(ValueError):
        ModelConfig(**bad)


def test_shipped_checkpoint_loads_and_reproduces_its_output():
    """config/models/sim_sign_small.pt predates sign_kappa: defaults give the paper's mode."""
    import json
    from pathlib import Path
    from signattn_driver import checkpoint
    root = Path(__file__).resolve().parents[2]
    ref = json.loads((root / 'test' / 'fixtures' / 'sim_sign_small_reference.json').read_text())
    model, ckpt = checkpoint.load_model(root / 'config' / 'models' / 'sim_sign_small.pt',
                                        map_location='cpu')
    assert ckpt.config.binarize == 'deterministic' and ckpt.config.sign_kappa == 1.0
    g = torch.Generator().manual_seed(ref['seed'])
    x = torch.rand(*ref['shape'], generator=g) * 2 - 1
    with torch.inference_mode():
        u, _, _ = model.eval()(x)
    assert torch.allclose(u, torch.tensor(ref['u']), rtol=1e-5, atol=1e-7)


def test_old_checkpoint_dict_without_new_fields_loads(tmp_path):
    from signattn_driver import checkpoint
    torch.manual_seed(0)
    model = SteeringNet(tiny_config()).eval()
    path = checkpoint.save(tmp_path / 'old.pt', model)
    payload = torch.load(path, weights_only=False)
    del payload['model_config']['sign_kappa']          # as written before the field existed
    torch.save(payload, path)
    loaded, ckpt = checkpoint.load_model(path, map_location='cpu')
    assert ckpt.config == tiny_config()
    x = frames(b=1, t=2)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x)[0], model(x)[0])
