"""`signattn evaluate` feeds a route-command model each frame's recorded command (issue 20)."""

import csv
import json

import numpy as np
import pytest
import torch

from conftest import tiny_config
from signattn_driver import checkpoint
from signattn_driver.cli import main
from signattn_driver.data.dataset import Dataset, DatasetWriter
from signattn_driver.data.sequences import SequenceIndex
from signattn_driver.evaluation import explanations as E
from signattn_driver.evaluation.deletion import (deletion_curves, deletion_curves_sequence,
                                                 DeletionConfig)
from signattn_driver.evaluation.evaluate import EvalConfig, evaluate
from signattn_driver.evaluation.explanations import ExplainConfig
from signattn_driver.evaluation.route_commands import recorded_commands
from signattn_driver.model import SteeringNet
from signattn_driver.preprocessing import hsv_u8_to_input
from signattn_driver.route_command import FOLLOW_LANE, LEFT, RIGHT, STRAIGHT
from signattn_driver.vehicle import load_vehicle

# Per drive: the navigator's command of each frame (a junction approach in the first drive).
COMMANDS = ([FOLLOW_LANE, FOLLOW_LANE, LEFT, LEFT, LEFT, STRAIGHT, RIGHT, FOLLOW_LANE],
            [RIGHT, RIGHT, RIGHT, FOLLOW_LANE, LEFT, LEFT])


def _command_set(root, commands_per_drive=COMMANDS, seed=0):
    """Write noisy frames with the given commands per frame, all drives in split 'test'."""
    rng = np.random.default_rng(seed)
    writer = DatasetWriter(root, vehicle=load_vehicle('mkz'), smoothing_alpha=1.0)
    for d, commands in enumerate(commands_per_drive):
        drive = writer.drive(f'drive{d}', 'test')
        for t, c in enumerate(commands):
            hsv = rng.integers(0, 256, (80, 160, 3)).astype(np.uint8)
            hsv[..., 0] %= 180
            drive.append(hsv, 10**9 + t * 50_000_000, 0.3 * np.sin(t / 2 + d), 8.0 + t,
                         route_command=int(c))
        writer.close_drive(drive)
    return writer.finalize()


def _drop_command_column(root):
    """Rewrite every drive's labels.csv as a set written before the column existed."""
    for labels in root.glob('*/labels.csv'):
        with open(labels, newline='') as f:
            rows = list(csv.reader(f))
        assert rows[0][-1] == 'route_command'
        with open(labels, 'w', newline='') as f:
            csv.writer(f).writerows([r[:-1] for r in rows])


def _command_model(seed=0):
    """Build a tiny route-command model whose output, attention and gate differ by command."""
    torch.manual_seed(seed)
    model = SteeringNet(tiny_config(num_commands=4)).eval()
    with torch.no_grad():   # the embeddings start at zero: give every command its own
        model.command_attention.weight.normal_(0.0, 1.0)
        model.command_gate.weight.normal_(0.0, 1.0)
        model.head.bias.copy_(torch.tensor([0.0, 2.0, 0.5, -2.0]))
    return model


@pytest.fixture
def command_ckpt(tmp_path):
    return checkpoint.save(tmp_path / 'ck' / 'route.pt', _command_model())


@pytest.fixture
def camera_ckpt(tmp_path):
    torch.manual_seed(0)
    return checkpoint.save(tmp_path / 'ck' / 'camera.pt', SteeringNet(tiny_config()))


def _config(**kw):
    return EvalConfig(deletion=DeletionConfig(step_percent=25.0),
                      explain=ExplainConfig(lime_samples=20), window_frames=3,
                      warmup_frames=2, examples=1, figures=False, **kw)


def _by_hand(ckpt_path, data, commands: bool):
    """Step every test segment frame by frame from f_init: u (N,), with or without commands."""
    model, _ = checkpoint.load_model(ckpt_path)
    index = SequenceIndex([Dataset(data)], splits=('test',))
    us = []
    with torch.inference_mode():
        for seg in index.segments:
            win = index.window(seg, 0, len(seg))
            x = hsv_u8_to_input(torch.from_numpy(win['frames']))
            fed = torch.as_tensor(recorded_commands(win))
            state = model.initial_state(x[:1])
            for t in range(len(x)):
                extra = (fed[t:t + 1],) if commands else ()
                u, _, state = model.step(x[t:t + 1], state, *extra)
                us.append(u.double())
    return torch.cat(us).numpy()


def test_a_command_model_is_evaluated_under_the_recorded_commands(tmp_path, command_ckpt):
    data = _command_set(tmp_path / 'data')
    report = evaluate([command_ckpt], data, ['attention', 'contribution'], tmp_path / 'r',
                      'cpu', config=_config())
    entry = report['checkpoints']['route']
    u_pred = np.asarray(entry['u_pred'])
    recorded = np.asarray(report['frames']['route_command'])
    assert recorded.tolist() == [c for drive in COMMANDS for c in drive]
    # The MAE and the LSTM state it carries: exactly the recorded commands, frame by frame.
    np.testing.assert_allclose(u_pred, _by_hand(command_ckpt, data, commands=True), atol=1e-7)
    follow = _by_hand(command_ckpt, data, commands=False)
    turning = recorded != FOLLOW_LANE
    assert np.abs(u_pred - follow)[turning].min() > 1e-3      # a different command, another u
    # phi explains the u that was scored: sum(phi) + bias rebuilds it under the same command.
    assert entry['contribution']['max_abs_reconstruction_error_per_m'] < 1e-5
    # The masked copies run under the frame's command too: at 0 % masked the deletion curve is
    # the unmasked error, whose mean is the MAE.
    for s in entry['methods'].values():
        assert s['deletion']['curve_deg'][0] == pytest.approx(
            entry['accuracy']['mae_steering_deg'], rel=1e-5)
    # The report says what was fed.
    fed = {'follow_lane': 4, 'left': 5, 'straight': 1, 'right': 4}
    assert entry['route_commands'] == {'fed': True, 'source': 'recorded', 'counts': fed}
    assert report['data']['route_commands'] == fed
    by = entry['accuracy_by_command']
    assert {k: v['frames'] for k, v in by.items()} == fed
    assert sum(v['frames'] * v['mae_u_per_m'] for v in by.values()) / 14 == pytest.approx(
        entry['accuracy']['mae_u_per_m'])
    for method, split in entry['headline_by_command'].items():
        per_frame = np.asarray(entry['methods'][method]['deletion_change'][
            'auc_25_deg_pct_per_frame'])
        assert split['left']['n'] == 5
        assert split['left']['mean'] == pytest.approx(per_frame[recorded == LEFT].mean())
    md = (tmp_path / 'r' / 'report.md').read_text()
    assert 'Route commands fed to route (command models)' in md and 'left 5' in md
    assert '| route | recorded |' in md


def test_a_set_without_the_column_evaluates_as_follow_lane(tmp_path, command_ckpt):
    data = _command_set(tmp_path / 'data')
    _drop_command_column(data)
    report = evaluate([command_ckpt], data, ['attention'], tmp_path / 'r', 'cpu',
                      config=_config(curves=False))
    entry = report['checkpoints']['route']
    np.testing.assert_allclose(entry['u_pred'], _by_hand(command_ckpt, data, commands=False),
                               atol=1e-7)
    assert entry['route_commands']['counts'] == {'follow_lane': 14, 'left': 0, 'straight': 0,
                                                 'right': 0}


def test_a_camera_only_model_is_unchanged_by_the_commands(tmp_path, camera_ckpt):
    data = _command_set(tmp_path / 'data')
    plain = _command_set(tmp_path / 'plain')
    _drop_command_column(plain)
    cfg = _config(fills=('black',))
    with_column = evaluate([camera_ckpt], data, ['attention', 'gradcam', 'random'],
                           tmp_path / 'a', 'cpu', config=cfg)
    without = evaluate([camera_ckpt], plain, ['attention', 'gradcam', 'random'],
                       tmp_path / 'b', 'cpu', config=cfg)
    a, b = with_column['checkpoints']['camera'], without['checkpoints']['camera']
    # Bit for bit: the same predictions (stepped without a command), curves and agreement.
    assert a['u_pred'] == b['u_pred']
    assert np.array_equal(a['u_pred'], _by_hand(camera_ckpt, data, commands=False))
    assert _untimed(a['methods']) == _untimed(b['methods'])
    assert a['contribution'] == b['contribution']
    assert a['route_commands'] == {'fed': False, 'source': None, 'counts': None}
    assert with_column['data']['route_commands']['left'] == 5      # recorded, not fed
    assert 'no checkpoint takes commands' in (tmp_path / 'a' / 'report.md').read_text()


def _untimed(methods: dict) -> dict:
    return {m: {k: v for k, v in s.items() if k != 'seconds_per_frame'}
            for m, s in methods.items()}


def _frames(n=3, seed=1):
    rng = np.random.default_rng(seed)
    hsv = rng.integers(0, 256, (n, 80, 160, 3)).astype(np.uint8)
    hsv[..., 0] %= 180
    return hsv, hsv_u8_to_input(torch.from_numpy(hsv))


class _Bound(torch.nn.Module):
    """A command model with one command bound: the camera-only step interface."""

    def __init__(self, model, command):
        super().__init__()
        self.model, self.command = model, command
        self.encoder = model.encoder

    def step(self, frames, state=None):
        return self.model.step(frames, state, torch.tensor([self.command]))


def test_every_explanation_and_masked_copy_runs_under_the_frames_command():
    model = _command_model()
    hsv, x = _frames()
    state = model.initial_state(x)
    commands = torch.tensor([LEFT, RIGHT, STRAIGHT])
    maps = E.random_maps(3, seed=0)
    cfg = DeletionConfig(step_percent=20.0, batch_images=5)   # frames split across passes
    lime_cfg = ExplainConfig(lime_samples=30, lime_segments=12)
    res = deletion_curves(model, x, maps, np.zeros(3), state, cfg, commands=commands)
    follow = deletion_curves(model, x, maps, np.zeros(3), state, cfg)
    assert np.abs(res.deletion_u - follow.deletion_u).min() > 1e-4
    for i, c in enumerate(commands.tolist()):
        row = tuple(s[i:i + 1] for s in state)
        bound = _Bound(model, c)
        one = deletion_curves(bound, x[i:i + 1], maps[i:i + 1], np.zeros(1), row, cfg)
        np.testing.assert_allclose(res.deletion_u[i], one.deletion_u[0], atol=1e-7)
        np.testing.assert_allclose(res.insertion_u[i], one.insertion_u[0], atol=1e-7)
        for method in ('attention', 'gradcam', 'contribution'):
            got = E.compute_maps(method, model, x[i:i + 1], row, hsv[i:i + 1],
                                 commands=commands[i:i + 1])[0]
            if method == 'contribution':
                want = E.upsample(model.explain_step(x[i:i + 1], row, c).contribution.abs())
            else:
                want = E.compute_maps(method, bound, x[i:i + 1], row, hsv[i:i + 1])[0]
            torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
        if i == 0:   # LIME is the slow one: one frame
            got = E.lime_maps(model, hsv[:1], row, lime_cfg, commands=commands[:1])
            torch.testing.assert_close(got, E.lime_maps(bound, hsv[:1], row, lime_cfg))
            assert not torch.equal(got, E.lime_maps(_Bound(model, RIGHT), hsv[:1], row,
                                                    lime_cfg))
    # Attention moves with the command (the command bias inside alpha's tanh).
    assert not torch.allclose(E.attention_maps(model, x, state, commands),
                              E.attention_maps(model, x, state))


def test_sequence_mode_steps_each_level_under_the_frames_command():
    model = _command_model()
    _, x = _frames(4)
    commands = torch.tensor([FOLLOW_LANE, LEFT, LEFT, RIGHT])
    res = deletion_curves_sequence(model, x, E.random_maps(4, seed=1), np.zeros(4), None,
                                   DeletionConfig(step_percent=50.0), commands=commands)
    with torch.inference_mode():
        state, want = None, []
        for t in range(4):
            u, _, state = model.step(x[t:t + 1], state, commands[t:t + 1])
            want.append(float(u))
    np.testing.assert_allclose(res.deletion_u[:, 0], want, atol=1e-6)   # 0 % masked


def test_cli_reports_the_commands_fed_and_can_withhold_them(tmp_path, command_ckpt, capsys):
    data = _command_set(tmp_path / 'data', [[LEFT, LEFT, RIGHT, FOLLOW_LANE]])
    args = ['evaluate', '--checkpoint', str(command_ckpt), '--data', str(data), '--methods',
            'attention', '--device', 'cpu', '--no-progress', '--agreement-only']
    assert main(args + ['--out', str(tmp_path / 'fed')]) == 0
    assert 'route commands fed (recorded): follow_lane 1, left 2, right 1' in \
        capsys.readouterr().out
    fed = json.loads((tmp_path / 'fed' / 'report.json').read_text())['checkpoints']['route']
    np.testing.assert_allclose(fed['u_pred'], _by_hand(command_ckpt, data, commands=True),
                               atol=1e-7)
    # Without the navigator: follow-lane on every frame, and the report says so.
    assert main(args + ['--out', str(tmp_path / 'withheld'), '--no-route-commands']) == 0
    assert 'route commands fed (follow_lane): follow_lane 4' in capsys.readouterr().out
    withheld = json.loads((tmp_path / 'withheld' / 'report.json').read_text())
    entry = withheld['checkpoints']['route']
    np.testing.assert_allclose(entry['u_pred'], _by_hand(command_ckpt, data, commands=False),
                               atol=1e-7)
    assert withheld['frames']['route_command'] == [LEFT, LEFT, RIGHT, FOLLOW_LANE]  # recorded
    assert 'Route commands withheld' in (tmp_path / 'withheld' / 'report.md').read_text()
