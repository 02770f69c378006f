"""The alignment term, the contribution study (trace, diagnosis, reach), evaluate against phi."""

import json

import numpy as np
import pytest
import torch

from conftest import tiny_config, tiny_settings
from signattn_driver import checkpoint
from signattn_driver.evaluation import contribution_study as study
from signattn_driver.evaluation.deletion import DeletionConfig
from signattn_driver.evaluation.evaluate import EvalConfig, evaluate
from signattn_driver.evaluation.explanations import ExplainConfig
from signattn_driver.model import SteeringNet
from signattn_driver.paths import config_path
from signattn_driver.training.loop import load_run_config, train
from signattn_driver.training.losses import alignment_kl
from fixtures.datasets import write_dataset, write_line_set


def _model(binarize='mean_field', attention='sign', seed=0):
    torch.manual_seed(seed)
    return SteeringNet(tiny_config(attention=attention, binarize=binarize, dropout=0.5))


def test_training_target_is_the_eval_mode_phi_not_a_sampled_one():
    """forward(contribution=True) in training gives explain_step's phi (expected signs)."""
    model = _model('mean_field')
    frames = torch.rand(3, 1, 3, 80, 160) * 2 - 1
    model.train()
    torch.manual_seed(1)
    _, _, _, phi_train = model(frames, contribution=True)
    model.eval()
    with torch.no_grad():
        want = model.explain_step(frames[:, 0]).contribution
        u_seq, _, _, phi_eval = model(frames, contribution=True)
        u_plain, _, _ = model(frames)
    assert not phi_train.requires_grad
    assert torch.allclose(phi_train[:, 0], want, atol=1e-7)
    assert torch.allclose(phi_eval[:, 0], want, atol=1e-7)
    assert torch.equal(u_seq, u_plain)      # the flag changes nothing else


def test_uniform_target_is_phi_at_uniform_alpha_whatever_alpha_is():
    """align_target phi_uniform: the study's reference phi, which the attention cannot move."""
    model = _model('mean_field')
    frames = torch.rand(3, 2, 3, 80, 160) * 2 - 1
    model.train()
    _, _, _, phi_train = model(frames, contribution=True, contribution_at_uniform=True)
    model.eval()
    with torch.no_grad():
        _, _, _, phi_eval = model(frames, contribution=True, contribution_at_uniform=True)
        want0 = study.uniform_contribution(model, frames[:, 0], None)
        state = model.explain_step(frames[:, 0]).state
        want1 = study.uniform_contribution(model, frames[:, 1], state)
        own = model(frames, contribution=True)[3]
        model.attention.score.weight.mul_(-3.0)             # a different alpha ...
        moved = model(frames[:, :1], contribution=True, contribution_at_uniform=True)[3]
    assert torch.allclose(phi_train[:, 0], want0, atol=1e-7)
    assert torch.allclose(phi_eval[:, 0], want0, atol=1e-7)
    assert torch.allclose(phi_eval[:, 1], want1, atol=1e-7)
    assert not torch.allclose(own, phi_eval, atol=1e-6)     # mean_field: alpha acts on phi
    assert torch.allclose(moved[:, 0], want0, atol=1e-7)    # ... the same first-frame target


def test_the_per_cell_bias_trains_at_its_own_lr():
    from signattn_driver.training.config import TrainConfig
    from signattn_driver.training.loop import _param_groups
    model = SteeringNet(tiny_config(attention_position_bias=True))
    model.encoder.requires_grad_(False)                     # freeze_encoder
    groups = _param_groups(model, TrainConfig(lr=1e-4, position_bias_lr=3e-3))
    assert groups[1] == {'params': [model.attention.position_bias], 'lr': 3e-3}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert sorted(id(p) for g in groups for p in g['params']) == sorted(trainable)
    optimizer = torch.optim.Adam(groups, lr=1e-4)
    model.attention.position_bias.grad = torch.ones(200)
    optimizer.step()                                        # Adam's first step: lr * sign
    assert torch.allclose(model.attention.position_bias, torch.full((200,), -3e-3))
    default = _param_groups(model, TrainConfig(lr=1e-4))     # 0: the common lr
    assert default[1]['lr'] == 1e-4


def test_the_attention_gain_trains_at_its_own_lr():
    from signattn_driver.training.config import TrainConfig
    from signattn_driver.training.loop import _param_groups
    model = SteeringNet(tiny_config(attention_gain=True, attention_position_bias=True,
                                    num_commands=4))
    groups = _param_groups(model, TrainConfig(lr=1e-4, position_bias_lr=3e-3,
                                              attention_gain_lr=1e-2))
    gain = list(model.alpha_gain.parameters())
    assert [g['lr'] for g in groups[1:]] == [3e-3, 1e-2]
    assert {id(p) for p in groups[2]['params']} == {id(p) for p in gain}
    trainable = sorted(id(p) for p in model.parameters())
    assert sorted(id(p) for g in groups for p in g['params']) == trainable   # each once
    optimizer = torch.optim.Adam(groups, lr=1e-4)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    optimizer.step()                                        # Adam's first step: lr * sign
    assert torch.allclose(model.alpha_gain.state.bias, torch.tensor([-1e-2]))
    assert torch.allclose(model.head.bias, torch.full((4,), -1e-4))


def test_unknown_align_target_is_refused():
    from signattn_driver.training.config import TrainingError
    with pytest.raises(TrainingError, match='align_target'):
        load_run_config(None, {'align_target': 'alpha'})


def test_alignment_kl_is_zero_at_the_target_and_only_moves_alpha():
    phi = torch.randn(2, 3, 10, 20)
    target = phi.abs().flatten(2) / phi.abs().flatten(2).sum(-1, keepdim=True)
    weight = torch.ones(2, 3)
    assert float(alignment_kl(target, phi, weight)) == pytest.approx(0.0, abs=1e-6)
    alpha = torch.softmax(torch.randn(2, 3, 200), -1).requires_grad_(True)
    phi.requires_grad_(True)
    kl = alignment_kl(alpha, phi, weight)
    kl.backward()
    assert float(kl.detach()) > 0 and alpha.grad is not None and phi.grad is None
    # padded frames (weight 0) do not count
    padded = alignment_kl(alpha.detach(), phi.detach(), torch.tensor([[1., 0, 0], [0, 0, 0]]))
    alone = alignment_kl(alpha.detach()[:1, :1], phi.detach()[:1, :1], torch.ones(1, 1))
    assert float(padded) == pytest.approx(float(alone), rel=1e-6)


def test_align_weight_pulls_alpha_towards_phi(tmp_path):
    """Same seed, data and steps: the alignment term leaves alpha closer to |phi|."""
    torch.set_num_threads(2)
    data = write_line_set(tmp_path / 'lines', drives=2, frames=80)
    settings = tiny_settings(dropout=0.0, sequence_length=8, block_s=2.0, guard_s=0.5,
                             val_fraction=0.0, num_workers=0, device='cpu', binarize='mean_field',
                             lr=3e-3, max_steps=30, val_every=30)
    drives = study.open_drives(data, 'train')
    kls = {}
    for weight in (0.0, 1.0):
        model_config, config = load_run_config(None, dict(settings, align_weight=weight))
        run = train(model_config, config, [data], tmp_path / f'w{weight}', progress=False)
        model, _ = checkpoint.load_model(run['last_checkpoint'])
        trace = study.trace_drives(model.eval(), drives, uniform_reference=False)
        target = np.abs(trace['phi']).reshape(len(trace['phi']), -1)
        target /= target.sum(1, keepdims=True)
        alpha = trace['alpha'].reshape(len(target), -1)
        kls[weight] = float((target * np.log(target / alpha + 1e-30)).sum(1).mean())
    assert kls[1.0] < 0.7 * kls[0.0]


def test_align_recipe_builds_the_shipped_architecture():
    tuned_model, tuned = load_run_config(config_path('train_align.yaml'), {})
    shipped = checkpoint.load(config_path('models', 'sim_mean_field.pt'))
    assert tuned_model == shipped.config and tuned.align_weight > 0
    assert tuned.init_checkpoint.endswith('sim_mean_field.pt')
    # the aligned checkpoint is that recipe's output: same architecture, same term weight
    aligned = checkpoint.load(config_path('models', 'sim_mean_field_aligned.pt'))
    assert aligned.config == shipped.config
    assert aligned.metadata['train_config']['align_weight'] == tuned.align_weight
    assert aligned.metadata['train_config']['max_steps'] == tuned.max_steps


def test_negative_align_weight_is_refused():
    from signattn_driver.training.config import TrainingError
    with pytest.raises(TrainingError, match='align_weight'):
        load_run_config(None, {'align_weight': -1.0})


@pytest.fixture(scope='module')
def drives(tmp_path_factory):
    root = write_dataset(tmp_path_factory.mktemp('d') / 'data', splits=('val', 'val'),
                         frames=12)
    return study.open_drives(root, 'val')


def test_trace_rebuilds_u_and_uniform_reference_is_phi_when_alpha_is_inert(drives):
    inert = _model('deterministic').eval()
    trace = study.trace_drives(inert, drives)
    assert len(trace['u_pred']) == 24 and trace['first'].sum() == 2
    rebuilt = trace['phi'].sum((1, 2)) + trace['bias']
    assert np.allclose(rebuilt, trace['u_pred'], atol=1e-6)
    # paper mode: alpha does not reach u at inference, so phi at uniform alpha is phi
    assert np.allclose(trace['phi_uniform'], trace['phi'], atol=1e-7)
    acting = study.trace_drives(_model('mean_field').eval(), drives)
    assert not np.allclose(acting['phi_uniform'], acting['phi'], atol=1e-6)
    report = study.agreement_report(acting)
    assert set(report['per_drive']) == {'d0', 'd1'}
    # the drives' MAEs, weighted by their frames (12 each), make up the whole
    per = [report['per_drive'][d]['mae_steering_deg'] for d in ('d0', 'd1')]
    assert np.mean(per) == pytest.approx(report['mae_steering_deg'])
    assert per[0] != per[1]

    assert -1 <= report['alpha_vs_phi']['spearman'] <= 1
    assert report['alpha_peak_mass']['mean'] == pytest.approx(
        acting['alpha'].reshape(24, -1).max(1).mean())
    assert 'sign_saturation' not in report


def test_trace_keeps_the_sign_saturation_that_the_model_reports(drives):
    """A smaller kappa leaves fewer sign inputs saturated; per frame as the model says."""
    shares = []
    for kappa in (1000.0, 1.0):
        torch.manual_seed(0)
        model = SteeringNet(tiny_config(binarize='mean_field', sign_kappa=kappa)).eval()
        trace = study.trace_drives(model, drives, uniform_reference=False, saturation=True)
        first = model.sign_saturation(drives[0].inputs[:1])
        assert trace['sign_saturation'][0] == pytest.approx(float(first[0]))
        shares.append(study.agreement_report(trace)['sign_saturation'])
    assert 0 <= shares[1] < shares[0] <= 1


def test_the_report_says_how_the_attention_gain_varies(drives):
    torch.manual_seed(0)
    model = SteeringNet(tiny_config(binarize='mean_field', attention_gain=True)).eval()
    plain = study.agreement_report(study.trace_drives(model, drives, uniform_reference=False))
    assert plain['attention_gain']['mean'] == pytest.approx(1.0)      # untrained: g = 1
    assert plain['attention_gain']['sd'] == pytest.approx(0.0, abs=1e-7)
    torch.nn.init.normal_(model.alpha_gain.state.weight, std=0.3)
    trace = study.trace_drives(model, drives, uniform_reference=False)
    state = model.initial_state(drives[0].inputs[:1])
    with torch.no_grad():
        first = model.alpha_gain(state[0])
    assert trace['gain'][0] == pytest.approx(float(first))
    report = study.agreement_report(trace)['attention_gain']
    assert report['sd'] > 0 and report['p5'] < report['mean'] < report['p95']
    assert report['mean'] == pytest.approx(float(trace['gain'].mean()))
    without = study.trace_drives(_model('mean_field').eval(), drives, uniform_reference=False)
    assert 'gain' not in without and 'attention_gain' not in study.agreement_report(without)


def test_a_command_model_is_traced_with_the_recorded_commands(tmp_path):
    """Each frame gets its own command (as the node would), unless follow-lane is asked."""
    recorded = [0, 0, 1, 1, 1, 3, 3, 2, 0, 0]
    root = write_dataset(tmp_path / 'data', splits=('val',), frames=10,
                         commands=recorded.__getitem__)
    drives = study.open_drives(root, 'val')
    assert drives[0].route_command.tolist() == recorded
    torch.manual_seed(0)
    model = SteeringNet(tiny_config(binarize='mean_field', num_commands=4)).eval()
    torch.nn.init.normal_(model.command_attention.weight)
    torch.nn.init.normal_(model.command_gate.weight)
    traced = study.trace_drives(model, drives)
    follow = study.trace_drives(model, drives, commands=False)
    state, expected = None, []
    with torch.no_grad():
        for t, command in enumerate(recorded):
            out = model.explain_step(drives[0].inputs[t:t + 1], state, torch.tensor([command]))
            state = out.state
            expected.append(float(out.u))
    assert np.allclose(traced['u_pred'], expected, atol=1e-7)
    assert np.allclose(traced['u_pred'][:2], follow['u_pred'][:2], atol=1e-7)
    assert not np.allclose(traced['u_pred'][2:], follow['u_pred'][2:], atol=1e-6)


def test_accuracy_says_where_the_error_sits():
    """Frames whose label turns (radius under 50 m) and the others, apart and together."""
    trace = {'u_label': np.array([0.0, 0.01, 0.05, -0.03]),
             'u_pred': np.array([0.0, 0.0, 0.01, -0.03]),
             'deg_per_u': np.array([100.0, 100.0, 100.0, 200.0])}
    acc = study.accuracy(trace)
    assert acc['turning_frames'] == 2
    assert acc['mae_steering_deg_turning'] == pytest.approx((4.0 + 0.0) / 2)
    assert acc['mae_steering_deg_elsewhere'] == pytest.approx((0.0 + 1.0) / 2)
    assert acc['mae_steering_deg'] == pytest.approx(5.0 / 4)


def test_paired_error_compares_two_models_on_the_same_frames(drives):
    """Each segment is one unit; the difference is of |error| in steering degrees."""
    a = study.trace_drives(_model('mean_field').eval(), drives, uniform_reference=False)
    worse = dict(a, u_pred=a['u_pred'] + np.where(a['u_pred'] >= a['u_label'], 0.01, -0.01))
    out = study.paired_error(worse, a)
    assert out['units'] == 2 and out['n'] == 24
    # every frame errs 0.01 1/m more, i.e. deg_per_u * 0.01 degrees
    assert out['frame_mean_diff'] == pytest.approx(float((a['deg_per_u'] * 0.01).mean()))
    assert out['ci_low'] <= out['mean_diff'] <= out['ci_high']
    assert out['output_gap_deg'] == pytest.approx(out['frame_mean_diff'])
    assert study.paired_error(a, a)['mean_diff'] == 0.0
    assert study.paired_error(a, a)['output_gap_deg'] == 0.0
    with pytest.raises(ValueError, match='same frames'):
        study.paired_error(a, dict(a, u_label=a['u_label'] + 1.0))


def test_diagnosis_sink_test_is_exact_for_mean_field(drives):
    """Removing a cell's alpha (mean_field) removes exactly that cell's phi from u."""
    model = _model('mean_field').eval()
    out = study.diagnose_attention(model, drives, cell=(9, 0))
    trace = study.trace_drives(model, drives, uniform_reference=False)
    want = np.abs(trace['phi'][:, 9, 0]).mean() / np.abs(trace['u_pred']).mean()
    assert out['sink_removed_mean_abs_du_rel'] == pytest.approx(want, rel=1e-4)
    assert out['frames'] == 24 and np.shape(out['maps']['feature_norm']) == (10, 20)
    assert 1 <= out['feature_norm_rank_of_cell'] <= 200


def test_reach_starts_at_one_and_has_the_horizon(drives):
    out = study.reach_of_frame(_model('mean_field').eval(), drives, horizon=3, every=2)
    assert out['k'] == [0, 1, 2, 3] and out['relative_to_k0'][0] == 1.0
    assert out['samples'] == 2 * len(range(1, 12 - 3, 2))
    assert all(v >= 0 for v in out['mean_abs_du_per_m'])


def test_evaluate_judges_every_map_against_phi(tmp_path):
    data = write_dataset(tmp_path / 'data', splits=('test',), frames=8, masks=False)
    torch.manual_seed(0)
    paths = [checkpoint.save(tmp_path / 'mf.pt', _model('mean_field')),
             checkpoint.save(tmp_path / 'none.pt', _model(attention='none'))]
    config = EvalConfig(deletion=DeletionConfig(step_percent=10.0),
                        explain=ExplainConfig(lime_samples=20), window_frames=4,
                        warmup_frames=2, examples=1, curves=False)
    report = evaluate(paths, data, ['attention', 'contribution', 'random'], tmp_path / 'r', 'cpu',
                      config=config)
    mf = report['checkpoints']['mf']['contribution']
    assert mf['alpha_acts'] and mf['frames'] == 8
    assert mf['max_abs_reconstruction_error_per_m'] < 1e-6
    # |phi| pooled from its own upsampled map ranks the cells almost as |phi| does
    assert mf['methods']['contribution']['vs_phi']['spearman'] > 0.8
    assert mf['methods']['contribution']['vs_phi']['ratio_top10'] > 0.8
    assert 'vs_phi_uniform_alpha' in mf['methods']['attention']
    assert len(mf['methods']['random']['per_frame']['spearman']) == 8
    none = report['checkpoints']['none']['contribution']
    assert not none['alpha_acts'] and 'vs_phi_uniform_alpha' not in none['methods']['random']
    text = (tmp_path / 'r' / 'report.md').read_text()
    assert 'Agreement with the contribution map' in text
    assert json.loads((tmp_path / 'r' / 'report.json').read_text())['levels_percent'] == []
