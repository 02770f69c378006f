"""End-to-end evaluation report, run planning, statistics and the `signattn evaluate` CLI."""

import json
import logging

import numpy as np
import pytest
from scipy import stats as sps
import torch

from conftest import tiny_config
from fixtures.datasets import write_dataset
from signattn_driver import checkpoint
from signattn_driver.cli import main
from signattn_driver.evaluation.deletion import DeletionConfig
from signattn_driver.evaluation.evaluate import EvalConfig, evaluate, EvaluationError, plan_runs
from signattn_driver.evaluation.explanations import ExplainConfig
from signattn_driver.model import SteeringNet
from signattn_driver.data.sequences import Segment
from signattn_driver.evaluation.statistics import summary, welch_t_test


@pytest.fixture
def checkpoints(tmp_path):
    torch.manual_seed(0)
    sign = checkpoint.save(tmp_path / 'ck' / 'sign.pt', SteeringNet(tiny_config()))
    soft = checkpoint.save(tmp_path / 'ck' / 'soft.pt',
                           SteeringNet(tiny_config(attention='soft')))
    return [sign, soft]


def _config(**kw):
    return EvalConfig(deletion=DeletionConfig(step_percent=10.0),
                      explain=ExplainConfig(lime_samples=20), window_frames=2,
                      warmup_frames=2, examples=2, **kw)


def test_report_files_and_numbers(tmp_path, checkpoints):
    data = write_dataset(tmp_path / 'data')
    out = tmp_path / 'report'
    evaluate(checkpoints, data, ['attention', 'gradcam', 'lime', 'random'], out, 'cpu',
             limit_frames=4, config=_config())
    for name in ('report.md', 'report.json', 'deletion_curves.png', 'insertion_curves.png',
                 'auc_bars.png', 'overlays_sign.png', 'overlays_soft.png'):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    report = json.loads((out / 'report.json').read_text())
    assert report['data']['splits'] == ['test']
    assert set(report['checkpoints']) == {'sign', 'soft'}
    assert len(report['levels_percent']) == 11
    for entry in report['checkpoints'].values():
        assert entry['frames'] == 4
        acc = entry['accuracy']
        assert acc['rmse_steering_deg'] >= acc['mae_steering_deg'] > 0
        for m, s in entry['methods'].items():
            d = s['deletion']
            assert len(d['auc_25_deg_pct_per_frame']) == 4
            # Deletion at 0 % masked is the unmasked prediction: its mean is the MAE.
            assert d['curve_deg'][0] == pytest.approx(acc['mae_steering_deg'], rel=1e-4)
            assert d['auc_25_deg_pct'] == pytest.approx(
                np.mean(d['auc_25_deg_pct_per_frame']), rel=1e-6)
            assert 0.0 <= s['mask_share']['mean'] <= 1.0
            assert s['seconds_per_frame'] > 0
        assert entry['mask_area_share']['mean'] == pytest.approx(0.25)
    pairs = [t for t in report['tests'] if t['metric'] == 'deletion_auc_25']
    assert len(pairs) == 8 * 7 // 2 == len(report['tests'])
    assert all(t['p'] is None or 0.0 <= t['p'] <= 1.0 for t in pairs)
    md = (out / 'report.md').read_text()
    assert '| sign | attention |' in md and 'Welch' in md and '![auc_bars.png]' in md
    assert (out / 'deletion_change_curves.png').is_file()


def test_sequence_mode_and_split_fallback(tmp_path, checkpoints, caplog):
    data = write_dataset(tmp_path / 'data', splits=('train',), frames=6, masks=False)
    with caplog.at_level(logging.WARNING):
        report = evaluate(checkpoints[:1], data, ['random'], tmp_path / 'r', 'cpu',
                          config=_config(mode='sequence', figures=False))
    assert 'evaluating on all drives' in caplog.text
    assert report['data']['splits'] == ['train', 'val', 'test']
    entry = report['checkpoints']['sign']
    assert entry['frames'] == 6 and 'mask_share' not in entry['methods']['random']


def test_plan_runs_spreads_windows_and_keeps_warmup_inside_segments():
    seg = Segment(0, 'd', np.arange(100), np.arange(100) * 50_000_000)
    every = plan_runs([seg], None, 20, 10)
    assert [(r.start, r.stop, r.carry) for r in every][:2] == [(0, 20, False), (20, 40, True)]
    runs = plan_runs([seg], 30, 20, 10)
    assert sum(r.stop - r.start for r in runs) == 30
    assert all(0 <= r.warm <= r.start for r in runs) and runs[0].start == 0
    assert runs[-1].start == 80 and runs[-1].warm == 70


def test_welch_matches_scipy_and_summary():
    rng = np.random.default_rng(1)
    a, b = rng.normal(160, 20, 50), rng.normal(150, 40, 30)
    res = welch_t_test(a, b)
    ref = sps.ttest_ind(a, b, equal_var=False)
    assert res['t'] == pytest.approx(ref.statistic) and res['p'] == pytest.approx(ref.pvalue)
    va, vb = a.var(ddof=1) / 50, b.var(ddof=1) / 30
    assert res['df'] == pytest.approx((va + vb) ** 2 / (va ** 2 / 49 + vb ** 2 / 29))
    assert np.isnan(welch_t_test([1.0], [2.0, 3.0])['p'])
    s = summary([1.0, 2.0, 3.0, float('nan')])
    assert s['n'] == 3 and s['mean'] == 2.0 and s['sem'] == pytest.approx(1 / np.sqrt(3))


def test_cli_evaluate(tmp_path, checkpoints, capsys):
    data = write_dataset(tmp_path / 'data', frames=4, masks=False)
    out = tmp_path / 'rep'
    rc = main(['evaluate', '--checkpoint', str(checkpoints[0]), '--data', str(data),
               '--methods', 'attention,center', '--out', str(out), '--device', 'cpu',
               '--limit-frames', '2', '--step-percent', '25', '--no-progress'])
    assert rc == 0
    assert 'output-change deletion AUC' in capsys.readouterr().out
    assert json.loads((out / 'report.json').read_text())['checkpoints']['sign']['frames'] == 2
    rc = main(['evaluate', '--checkpoint', str(checkpoints[0]), '--data', str(data),
               '--methods', 'smoothgrad', '--out', str(out)])
    assert rc == 2 and 'smoothgrad' in capsys.readouterr().err
    with pytest.raises(EvaluationError):
        EvalConfig(mode='whole')


def test_report_has_output_change_fills_and_paired_tests(tmp_path, checkpoints):
    data = write_dataset(tmp_path / 'data', frames=6)
    cfg = _config(fills=('black', 'mean'))
    report = evaluate(checkpoints, data, ['attention', 'random', 'random_superpixels'],
                      tmp_path / 'r', 'cpu', limit_frames=4, config=cfg)
    entry = report['checkpoints']['sign']
    assert 0.0 <= entry['sign_saturation']['mean'] <= 1.0
    assert 'sign_saturation' not in report['checkpoints']['soft']
    for s in entry['methods'].values():
        assert set(s['fills']) == {'black', 'mean'}
        change = s['fills']['black']['deletion_change']
        assert change['curve_deg'][0] == pytest.approx(0.0, abs=1e-9)
        assert s['deletion_change'] == change                  # primary fill on top
        assert 'insertion_change' in s['fills']['mean']
    assert report['frames']['run'] == sorted(report['frames']['run'])
    paired = report['paired']
    within = [t for t in paired if t['a'] == 'sign/attention' and t['b'] == 'sign/random'
              and t['metric'] == 'deletion_change_auc_25']
    assert {t['fill'] for t in within} == {'black', 'mean'}
    assert all(t['n'] == 4 for t in within)
    across = [t for t in paired if t['a'] == 'sign/attention' and t['b'] == 'soft/attention']
    assert across and all(0.0 < t['p'] <= 1.0 for t in across)
    assert all(t['test'].startswith('welch') for t in report['tests'])
    md = (tmp_path / 'r' / 'report.md').read_text()
    assert '## Faithfulness, fill mean' in md and 'p (batch t)' in md
    assert 'Sign saturation' in md
    with pytest.raises(EvaluationError):
        EvalConfig(fills=('purple',))
