"""`signattn sweep` end to end on a tiny config: trains two widths, evaluates, reports."""

import json

import pytest

from signattn_driver.cli import main
from signattn_driver.evaluation.sweeps import SWEEPS, sweep, SweepError
from test_evaluation import write_dataset


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
    assert summary['tests'][0]['kind'] == 'vs reference' and len(summary['tests']) == 1
    assert 0.0 <= summary['tests'][0]['p'] <= 1.0
    for name in ('sweep.md', 'sweep_bits.png', 'report/report.json',
                 'runs/quant_bits_4/sweep_result.json'):
        assert (out / name).is_file(), name
    report = json.loads((out / 'report' / 'report.json').read_text())
    assert [c['model_config']['quant_bits'] for c in report['checkpoints'].values()] == [4, 10]
    # A second call reuses the trained runs instead of training again.
    mtime = (out / 'runs' / 'quant_bits_4' / 'last.pt').stat().st_mtime_ns
    sweep('bits', [data], out, values=[4, 10], tiny=True, limit_frames=2, device='cpu')
    assert (out / 'runs' / 'quant_bits_4' / 'last.pt').stat().st_mtime_ns == mtime


def test_sweep_rejects_unknown_parameter(tmp_path):
    assert SWEEPS['bits'].values == tuple(range(2, 25, 2))
    assert SWEEPS['temperature'].values == (0.1, 0.5, 1.0, 2.0, 5.0)
    with pytest.raises(SweepError):
        sweep('dropout', [tmp_path], tmp_path / 'out')
