"""The contribution map phi: an exact split of u over the 10x20 map, for every model kind."""

import numpy as np
import pytest
import torch

from conftest import tiny_config
from signattn_driver import checkpoint
from signattn_driver.model import ModelConfig, SteeringNet
from signattn_driver.predictor import Predictor, quantize_dynamic_int8
from signattn_driver.route_command import LEFT, RIGHT, ROUTE_COMMANDS

KINDS = [('sign', 'deterministic'), ('sign', 'stochastic'), ('sign', 'mean_field'),
         ('sign', 'gated'), ('soft', 'deterministic'), ('none', 'deterministic')]


def _model(attention, binarize, num_commands=0, seed=0, position_bias=False, score='learned',
           gain=False, memory='attended'):
    torch.manual_seed(seed)
    model = SteeringNet(tiny_config(attention=attention, binarize=binarize,
                                    num_commands=num_commands,
                                    attention_position_bias=position_bias,
                                    attention_score=score, attention_gain=gain,
                                    memory_input=memory)).eval()
    if gain:           # a trained gain is not 1
        torch.nn.init.normal_(model.alpha_gain.state.weight, std=0.05)
        torch.nn.init.normal_(model.alpha_gain.state.bias, std=0.5)
        if num_commands:
            torch.nn.init.normal_(model.alpha_gain.command.weight, std=0.5)
    if num_commands:   # trained command models have non-zero embeddings
        torch.nn.init.normal_(model.command_attention.weight)
        torch.nn.init.normal_(model.command_gate.weight)
    if position_bias:  # and a trained per-cell bias is not zero either
        torch.nn.init.normal_(model.attention.position_bias, std=2.0)
    return model


@pytest.mark.parametrize('num_commands', [0, len(ROUTE_COMMANDS)])
@pytest.mark.parametrize('attention,binarize', KINDS)
def test_phi_plus_bias_is_u_over_a_whole_sequence(attention, binarize, num_commands):
    _assert_phi_is_exact(_model(attention, binarize, num_commands), num_commands)


@pytest.mark.parametrize('num_commands', [0, len(ROUTE_COMMANDS)])
@pytest.mark.parametrize('attention,binarize', [('sign', 'mean_field'), ('sign', 'gated'),
                                                ('soft', 'deterministic')])
def test_phi_stays_exact_with_a_per_cell_attention_bias(attention, binarize, num_commands):
    _assert_phi_is_exact(_model(attention, binarize, num_commands, position_bias=True),
                         num_commands)


@pytest.mark.parametrize('num_commands', [0, len(ROUTE_COMMANDS)])
@pytest.mark.parametrize('attention,binarize', [('sign', 'deterministic'), ('sign', 'mean_field'),
                                                ('sign', 'gated'), ('soft', 'deterministic')])
def test_phi_stays_exact_with_the_head_score(attention, binarize, num_commands):
    _assert_phi_is_exact(_model(attention, binarize, num_commands, score='head'), num_commands)


@pytest.mark.parametrize('num_commands', [0, len(ROUTE_COMMANDS)])
def test_the_head_score_is_phi_at_uniform_attention(num_commands):
    """The head score's alpha is |phi at alpha = 1/L|, normalised, under every command."""
    model = _model('sign', 'mean_field', num_commands, score='head')
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, 3, 80, 160, generator=g) * 2 - 1
    for command in ([None] if not num_commands else [0, LEFT, RIGHT]):
        with torch.no_grad():
            feats = model.encode(x)
            state = model.initial_state_from_features(feats)
            out = model.explain_step(x, state, command)
            flat = torch.full((3, 200), 1 / 200)
            phi_uniform = model.contribution_with(feats, flat, state[0], command)[0].abs()
        expected = phi_uniform.flatten(1) / phi_uniform.flatten(1).sum(1, keepdim=True)
        assert torch.allclose(out.alpha.flatten(1), expected, atol=1e-6, rtol=1e-4)
        # and the learned score would have given another map: the option is what acts
        learned = model.attention(feats, state[0], 1.0, *(
            () if command is None else (model.command_attention(torch.tensor([command] * 3)),)))
        assert not torch.allclose(learned, out.alpha.flatten(1), atol=1e-4)


@pytest.mark.parametrize('num_commands', [0, len(ROUTE_COMMANDS)])
@pytest.mark.parametrize('attention,binarize', [('sign', 'mean_field'), ('soft', 'deterministic')])
def test_phi_stays_exact_with_both_scores(attention, binarize, num_commands):
    _assert_phi_is_exact(_model(attention, binarize, num_commands, score='both',
                                position_bias=True), num_commands)


@pytest.mark.parametrize('num_commands', [0, len(ROUTE_COMMANDS)])
def test_both_scores_multiply_the_head_map_by_exp_of_the_learned_score(num_commands):
    """'both': alpha is proportional to exp(e_learned) |phi at 1/L|, and trains both parts."""
    head = _model('sign', 'mean_field', num_commands, score='head')
    both = _model('sign', 'mean_field', num_commands, score='both')
    both.load_state_dict(head.state_dict())
    x = torch.rand(3, 3, 80, 160, generator=torch.Generator().manual_seed(3)) * 2 - 1
    command = LEFT if num_commands else None
    with torch.no_grad():
        feats = head.encode(x)
        state = head.initial_state_from_features(feats)
        a_head = head.explain_step(x, state, command).alpha.flatten(1)
        a_both = both.explain_step(x, state, command).alpha.flatten(1)
        extra = (None if command is None
                 else head.command_attention(torch.full((3,), command)))
        e = head.attention.logits(feats, state[0], extra)
    want = a_head * torch.exp(e)
    assert torch.allclose(a_both, want / want.sum(1, keepdim=True), atol=1e-6, rtol=1e-4)
    assert not torch.allclose(a_both, a_head, atol=1e-4)
    with torch.no_grad():                          # a zero learned score: the head's map
        both.attention.score.weight.zero_()
        assert torch.allclose(both.explain_step(x, state, command).alpha.flatten(1), a_head,
                              atol=1e-6)
    both.attention.score.weight.data.normal_()
    both.train()
    _, attention, _ = both(torch.rand(2, 3, 3, 80, 160))
    attention[..., 3, 4].sum().backward()
    assert both.attention.score.weight.grad.abs().sum() > 0
    assert both.head.weight.grad.abs().sum() > 0


def test_a_bounded_learned_score_cannot_park_alpha_on_a_cell():
    """learned_score_bound c: alpha / (|phi at 1/L| share) stays within a factor e^(2c)."""
    torch.manual_seed(0)
    x = torch.rand(3, 3, 80, 160) * 2 - 1
    ratios = {}
    for bound in (0.0, 1.0):
        model = _model('sign', 'mean_field', score='both')
        model.config.learned_score_bound = bound
        with torch.no_grad():
            model.attention.score.weight.mul_(200.0)    # a learned score that wants to park
            feats = model.encode(x)
            state = model.initial_state_from_features(feats)
            alpha = model.explain_step(x, state).alpha.flatten(1)
            flat = torch.full((3, 200), 1 / 200)
            phi_u = model.contribution_with(feats, flat, state[0])[0].flatten(1).abs()
        ratio = alpha / (phi_u / phi_u.sum(1, keepdim=True))
        ratios[bound] = float((ratio.max(1).values / ratio.min(1).values).max())
    assert ratios[1.0] <= np.exp(2.0) * 1.001 < ratios[0.0]
    with pytest.raises(ValueError, match='learned_score_bound'):
        ModelConfig(learned_score_bound=-1.0)


def test_the_head_score_trains_the_head_through_alpha():
    """In training the score's gradient reaches W_beta and the output gate, not the MLP score."""
    model = _model('sign', 'mean_field', score='head').train()
    frames = torch.rand(2, 4, 3, 80, 160) * 2 - 1
    u, attention, _ = model(frames)
    attention[..., 3, 4].sum().backward()     # only through alpha: u is not in this loss
    assert model.head.weight.grad.abs().sum() > 0 and model.gate.weight.grad.abs().sum() > 0
    assert model.attention.score.weight.grad is None


def test_a_detached_head_score_gives_the_same_map_without_its_gradient():
    """head_score_gradient False: the same alpha, but training reads it as a constant."""
    model = _model('sign', 'mean_field', score='head').train()
    detached = SteeringNet(tiny_config(attention='sign', binarize='mean_field',
                                       attention_score='head', head_score_gradient=False))
    detached.load_state_dict(model.state_dict())
    detached.train()
    frames = torch.rand(2, 4, 3, 80, 160) * 2 - 1
    torch.manual_seed(5)
    _, attention, _ = model(frames)
    torch.manual_seed(5)
    _, attention_detached, _ = detached(frames)
    assert torch.allclose(attention, attention_detached, atol=1e-6)
    assert attention.requires_grad and not attention_detached.requires_grad


def test_a_head_score_needs_an_attention():
    with pytest.raises(ValueError, match='attention_score'):
        ModelConfig(attention='none', attention_score='head')
    with pytest.raises(ValueError, match='attention_score'):
        ModelConfig(attention_score='phi')


@pytest.mark.parametrize('num_commands', [0, len(ROUTE_COMMANDS)])
@pytest.mark.parametrize('score', ['learned', 'head'])
@pytest.mark.parametrize('attention,binarize', [('sign', 'mean_field'), ('sign', 'gated'),
                                                ('soft', 'deterministic')])
def test_phi_stays_exact_with_an_attention_gain(attention, binarize, score, num_commands):
    model = _model(attention, binarize, num_commands, score=score, gain=True)
    _assert_phi_is_exact(model, num_commands)


def test_the_attention_gain_starts_as_the_model_without_it():
    """All gain weights start at zero: g = 1, the same u and alpha as the model without it."""
    plain = _model('sign', 'mean_field', len(ROUTE_COMMANDS), score='head')
    gained = SteeringNet(tiny_config(attention='sign', binarize='mean_field',
                                     attention_score='head', num_commands=len(ROUTE_COMMANDS),
                                     attention_gain=True)).eval()
    assert all(torch.count_nonzero(p) == 0 for p in gained.alpha_gain.parameters())
    gained.load_state_dict({**gained.state_dict(), **plain.state_dict()})
    frames = torch.rand(2, 5, 3, 80, 160) * 2 - 1
    commands = torch.tensor([[0, 1, 2, 3, 0], [3, 2, 1, 0, 3]])
    with torch.no_grad():
        u0, att0, _ = plain(frames, commands=commands)
        u1, att1, _ = gained(frames, commands=commands)
    assert torch.equal(u0, u1) and torch.equal(att0, att1)


def test_the_attention_gain_scales_what_alpha_does_not_its_map():
    """The gain multiplies alpha where it acts (z = kappa g L alpha x), not the map."""
    model = _model('sign', 'mean_field', score='head', gain=True)
    x = torch.rand(3, 3, 80, 160) * 2 - 1
    with torch.no_grad():
        model.alpha_gain.state.weight.zero_()
        model.alpha_gain.state.bias.fill_(float(np.log(0.5)) * 2)   # a = 2 ln 0.5 -> g ~ 0.44
        g = float(np.exp(2 * np.tanh(np.log(0.5))))
        state = model.initial_state(x)
        out = model.explain_step(x, state)
        feats = model.encode(x)
        z_seen = model.sign_input(feats[..., :32], out.alpha.flatten(1) * g)
        expected_sat = (z_seen.abs() >= 1).flatten(1).float().mean(1)
        assert torch.allclose(model.sign_saturation(x, state), expected_sat)
        model.alpha_gain.state.bias.zero_()                          # g = 1
        plain = model.explain_step(x, state)
        model.alpha_gain.state.bias.fill_(100.0)                     # saturates at e^2
        assert torch.allclose(model.alpha_gain(state[0]), torch.full((3, 1), float(np.exp(2))))
    assert torch.allclose(out.gain, torch.full((3,), g), atol=1e-6)  # reported per frame
    assert torch.allclose(plain.gain, torch.ones(3))
    assert torch.allclose(out.alpha, plain.alpha, atol=1e-6)        # the same map
    assert not torch.allclose(out.u, plain.u, atol=1e-6)             # another command
    assert bool((model.sign_saturation(x, state) >= expected_sat).all())


def test_the_attention_gain_learns_from_the_loss():
    model = _model('sign', 'mean_field', len(ROUTE_COMMANDS), score='head', gain=True).train()
    frames = torch.rand(2, 4, 3, 80, 160) * 2 - 1
    u, _, _ = model(frames, commands=torch.ones(2, 4, dtype=torch.long))
    (u ** 2).sum().backward()
    assert model.alpha_gain.state.weight.grad.abs().sum() > 0
    assert model.alpha_gain.command.weight.grad[1].abs() > 0       # the command heard
    assert model.alpha_gain.command.weight.grad[0].abs() == 0      # not the others


def test_an_attention_gain_needs_an_attention():
    with pytest.raises(ValueError, match='attention_gain'):
        ModelConfig(attention='none', attention_gain=True)


@pytest.mark.parametrize('num_commands', [0, len(ROUTE_COMMANDS)])
@pytest.mark.parametrize('score', ['learned', 'head'])
@pytest.mark.parametrize('attention,binarize', [('sign', 'deterministic'), ('sign', 'mean_field'),
                                                ('sign', 'gated'), ('soft', 'deterministic')])
def test_phi_stays_exact_when_the_memory_reads_uniform_attention(attention, binarize, score,
                                                                 num_commands):
    model = _model(attention, binarize, num_commands, score=score, gain=True, memory='uniform')
    _assert_phi_is_exact(model, num_commands)


@pytest.mark.parametrize('binarize', ['mean_field', 'gated'])
def test_a_uniform_memory_does_not_see_alpha(binarize):
    """memory_input 'uniform': alpha moves u_t, never h_t; 'attended' (the paper): both."""
    x = torch.rand(3, 3, 80, 160) * 2 - 1
    for memory, state_moves in (('uniform', False), ('attended', True)):
        model = _model('sign', binarize, position_bias=True, gain=True, memory=memory)
        with torch.no_grad():
            state = model.initial_state(x)
            before = model.explain_step(x, state)
            model.attention.position_bias[123] += 6.0       # alpha piles onto cell (6, 3)
            model.alpha_gain.state.bias.fill_(1.0)          # and acts more strongly
            after = model.explain_step(x, state)
        assert (after.alpha.flatten(1)[:, 123] > 5 * before.alpha.flatten(1)[:, 123]).all()
        assert not torch.allclose(after.u, before.u, atol=1e-7)
        for new, old in zip(after.state, before.state):
            assert torch.allclose(new, old, atol=1e-6) != state_moves, memory


def test_a_uniform_memory_is_the_paper_memory_where_alpha_is_inert():
    """sign(alpha x) = sign(x): with the paper's binarizer the memory input is the same."""
    frames = torch.rand(2, 6, 3, 80, 160) * 2 - 1
    paper = _model('sign', 'deterministic')
    uniform = _model('sign', 'deterministic', memory='uniform')
    uniform.load_state_dict(paper.state_dict())
    with torch.no_grad():
        u0, att0, (h0, _) = paper(frames)
        u1, att1, (h1, _) = uniform(frames)
    assert torch.equal(u0, u1) and torch.equal(att0, att1) and torch.equal(h0, h1)


def test_the_memory_input_is_checked():
    with pytest.raises(ValueError, match='memory_input'):
        ModelConfig(memory_input='attention')
    assert ModelConfig().memory_input == 'attended'      # the paper's default


def test_the_per_cell_bias_moves_alpha_to_its_cell():
    model = _model('sign', 'mean_field', position_bias=True)
    x = torch.rand(3, 3, 80, 160) * 2 - 1
    with torch.no_grad():
        model.attention.position_bias.zero_()
        before = model.explain_step(x).alpha.flatten(1)
        model.attention.position_bias[123] = 5.0          # cell (6, 3)
        after = model.explain_step(x).alpha.flatten(1)
    # softmax: the cell's odds against every other cell grow by e^5 on every frame
    odds = (after[:, 123] / after[:, 0]) / (before[:, 123] / before[:, 0])
    assert torch.allclose(odds, torch.full_like(odds, float(np.exp(5.0))), rtol=1e-3)


def _assert_phi_is_exact(model, num_commands):
    g = torch.Generator().manual_seed(1)
    frames = torch.rand(2, 12, 3, 80, 160, generator=g) * 2 - 1
    commands = torch.randint(0, 4, (2, 12), generator=g) if num_commands else None
    state, worst = None, 0.0
    with torch.no_grad():
        u_seq, att_seq, _ = model(frames, commands=commands)
        for t in range(frames.shape[1]):
            out = model.explain_step(frames[:, t], state,
                                     None if commands is None else commands[:, t])
            state = out.state
            assert out.contribution.shape == (2, 10, 20)
            assert out.contribution.dtype == torch.float32
            # the same u and alpha as the sequence forward: phi explains what the model outputs
            assert torch.allclose(out.u, u_seq[:, t], atol=1e-7, rtol=1e-5)
            assert torch.allclose(out.alpha, att_seq[:, t], atol=1e-7)
            rebuilt = out.contribution.sum((-2, -1)) + out.bias
            # float32 rounding, relative to the size of what is summed (D_in terms)
            size = out.contribution.abs().sum((-2, -1)) + out.bias.abs()
            worst = max(worst, float(((rebuilt - out.u).abs() / size).max()))
    assert worst < 1e-5


def test_phi_moves_where_a_cell_changes():
    """Zeroing one cell's features changes that cell's phi; phi is not alpha in disguise."""
    model = _model('none', 'deterministic')
    x = torch.rand(1, 3, 80, 160) * 2 - 1
    with torch.no_grad():
        feats = model.encode(x)
        state = model.initial_state_from_features(feats)
        _, _, gated, route, _ = model._step(feats, state, None)
        phi, _ = model.contribution(gated, route)
        feats2 = feats.clone()
        feats2[:, 37] = 0.0            # cell (1, 17)
        _, _, gated2, _, _ = model._step(feats2, state, None)
        phi2, _ = model.contribution(gated2, route)
    changed = (phi2 - phi).abs().flatten() > 0
    assert changed[37] and changed.sum() == 1


def test_commands_select_a_branch_and_follow_lane_is_the_default():
    model = _model('sign', 'mean_field', len(ROUTE_COMMANDS))
    x = torch.rand(1, 3, 80, 160) * 2 - 1
    with torch.no_grad():
        outs = [model.explain_step(x, None, c) for c in range(4)]
        default = model.explain_step(x, None, None)
    assert float(default.u) == float(outs[0].u)
    assert len({round(float(o.u), 9) for o in outs}) == 4       # each command its own answer
    assert not torch.allclose(outs[LEFT].alpha, outs[RIGHT].alpha)   # and its own attention


def test_a_fresh_command_model_equals_the_camera_only_model_it_extends():
    """Zero command embeddings + copied head: a command model starts as the model it extends."""
    base = _model('sign', 'mean_field')
    cmd = SteeringNet(tiny_config(binarize='mean_field', num_commands=4)).eval()
    state = {k: v for k, v in base.state_dict().items() if not k.startswith('head.')}
    state['head.weight'] = base.head.weight.detach().repeat(4, 1)
    state['head.bias'] = base.head.bias.detach().repeat(4)
    state.update({k: v for k, v in cmd.state_dict().items() if k.startswith('command_')})
    cmd.load_state_dict(state)
    x = torch.rand(1, 3, 80, 160) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(base.step(x)[0], cmd.step(x, None, RIGHT)[0], atol=1e-7)


def test_bad_num_commands_is_rejected():
    with pytest.raises(ValueError, match='num_commands'):
        ModelConfig(num_commands=3)


@pytest.mark.parametrize('position_bias,score', [(False, 'learned'), (True, 'learned'),
                                                 (False, 'head')])
def test_int8_phi_is_close_to_u(position_bias, score):
    model = quantize_dynamic_int8(_model('sign', 'mean_field', position_bias=position_bias,
                                         score=score))
    x = torch.rand(4, 3, 80, 160) * 2 - 1
    with torch.no_grad():
        out = model.explain_step(x)
    rebuilt = out.contribution.sum((-2, -1)) + out.bias
    # int8 quantizes the head's input too: phi is then an approximation (docs/model.md)
    assert torch.allclose(rebuilt, out.u, atol=0.05 * float(out.u.abs().max()))


@pytest.mark.parametrize('position_bias,score', [(False, 'learned'), (True, 'learned'),
                                                 (True, 'head')])
def test_predictor_returns_phi_on_request(tmp_path, camera_frames, position_bias, score):
    model = _model('sign', 'mean_field', position_bias=position_bias, score=score)
    path = checkpoint.save(tmp_path / 'm.pt', model, vehicle={'name': 'mkz'})
    p = Predictor(path, device='cpu')
    plain = Predictor(path, device='cpu')
    for frame in camera_frames:
        out = p.step_full(frame, want_contribution=True)
        u, attention = plain.step(frame)
        assert out.u_per_m == u and np.array_equal(out.attention, attention)
        assert out.contribution_per_m.shape == (10, 20)
        assert out.contribution_per_m.dtype == np.float32
        rebuilt = out.contribution_per_m.sum() + out.bias_per_m
        assert rebuilt == pytest.approx(u, rel=1e-4, abs=1e-9)
    skipped = p.step_full(camera_frames[0], want_attention=False)
    assert skipped.attention is None and skipped.contribution_per_m is None
