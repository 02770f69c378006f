"""`signattn sweep` end to end on a tiny config: trains two widths, evaluates, reports."""

import json

import pytest

from signattn_driver.cli import main
from signattn_driver.evaluation.deletion import DeletionConfig
from signattn_driver.evaluation.evaluate import EvalConfig
from signattn_driver.evaluation.sweeps import SWEEPS, sweep, SweepError
from fixtures.datasets import write_dataset


def test_bits_sweep_end_to_end(tmp_path, capsys):
    data = write_dataset(tmp_path / 'data', splits=('test', 'train'), frames=240, masks=False)
    out = tmp_path / 'sweep'
    rc = main(['sweep', 'bits', '--data', str(data), '--out', str(out), '--tiny',
               '--values', '4,10', '--max-steps', '2', '--limit-frames', '4',
               '--step-percent', '25', '--device', 'cpu', '--no-progress'])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((out / 'sweep.json').read_text())
    assert [r['value'] for r in summary['rows']] == [4, 10]
    assert all(r['frames'] == 4 and r['mae_deg'] > 0 for r in summary['rows'])
    kinds = [(t['a'], t['b'], t['kind']) for t in summary['tests']]
    assert kinds == [(4, 10, 'vs reference'), (4, 'random', 'vs random floor'),
                     (10, 'random', 'vs random floor')]
    assert all(0.0 < t['p'] <= 1.0 and t['ci_low'] <= t['ci_high'] for t in summary['tests'])
    assert all(r['random_auc_mean'] is not None and r['label_auc_mean'] > 0
               for r in summary['rows'])
    for name in ('sweep.md', 'sweep_bits.png', 'report/report.json',
                 'runs/quant_bits_4/sweep_result.json'):
        assert (out / name).is_file(), name
    report = json.loads((out / 'report' / 'report.json').read_text())
    assert [c['model_config']['quant_bits'] for c in report['checkpoints'].values()] == [4, 10]
    # Trained in fp32 whatever the config file says: the bits sweep measures Q, not bf16.
    assert 'amp: false' in (out / 'runs' / 'quant_bits_4' / 'config.yaml').read_text()
    # A second call reuses the trained runs instead of training again.
    mtime = (out / 'runs' / 'quant_bits_4' / 'last.pt').stat().st_mtime_ns
    sweep('bits', [data], out, values=[4, 10], tiny=True, limit_frames=2, device='cpu')
    assert (out / 'runs' / 'quant_bits_4' / 'last.pt').stat().st_mtime_ns == mtime


def test_sweep_rejects_unknown_parameter(tmp_path):
    assert SWEEPS['bits'].values == tuple(range(2, 25, 2))
    assert SWEEPS['temperature'].values == (0.1, 0.3, 1.0, 3.0, 10.0)
    with pytest.raises(SweepError):
        sweep('dropout', [tmp_path], tmp_path / 'out')
    with pytest.raises(SweepError):
        sweep('bits', [tmp_path], tmp_path / 'out', jobs=0)


def test_parallel_jobs_train_every_value_from_the_shared_config(tmp_path):
    """--jobs 2: two processes train at once; each run keeps the config file's settings."""
    data = write_dataset(tmp_path / 'data', splits=('test', 'train'), frames=120, masks=False)
    config = tmp_path / 'run.yaml'
    config.write_text('lstm_hidden: 8\nattention_hidden: 4\nsequence_length: 4\n'
                      'episode_windows: 2\nbatch_size: 2\nval_every: 2\nval_split: '
                      'time_blocks\nval_fraction: 0.2\nblock_s: 2.0\nguard_s: 0.2\n'
                      'num_workers: 0\namp: true\n')
    summary = sweep('temperature', [data], tmp_path / 'sw', values=[0.3, 3.0],
                    config_yaml=config, overrides={'max_steps': 2, 'device': 'cpu'},
                    device='cpu', limit_frames=2, jobs=2,
                    eval_config=EvalConfig(deletion=DeletionConfig(step_percent=25.0),
                                           window_frames=2, warmup_frames=2, figures=False))
    assert [r['value'] for r in summary['rows']] == [0.3, 3.0]
    assert [r['steps'] for r in summary['rows']] == [2, 2]
    for tag in ('temperature_0.3', 'temperature_3'):
        run_config = (tmp_path / 'sw' / 'runs' / tag / 'config.yaml').read_text()
        assert 'lstm_hidden: 8' in run_config and 'amp: false' in run_config
    assert (tmp_path / 'sw' / 'sweep_temperature.png').is_file()
