"""The route gate judges candidates against a reference on the same frames (benchmarks/)."""

import json
from pathlib import Path
import sys

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
if not (CHECKOUT / 'benchmarks' / 'route_gate.py').is_file():
    pytest.skip('benchmarks/ is not in this tree (it lives in a source checkout)',
                allow_module_level=True)
sys.path.insert(0, str(CHECKOUT))
from benchmarks.route_gate import main  # noqa: E402


def _row(mae, drives, spearman=0.99, ratio=0.98, modal=0.2, phi_modal=0.3):
    agree = {'spearman': spearman, 'ratio_top10': ratio, 'modal_share': modal,
             'phi_modal_share': phi_modal}
    return {'mae_steering_deg': mae, 'alpha_vs_phi': agree,
            'per_drive': {d: {'mae_steering_deg': m} for d, m in drives.items()}}


def _report(path, data, frames, rows):
    drives = sorted(next(iter(rows.values()))['per_drive'])
    path.write_text(json.dumps({'data': data, 'frames': frames, 'drives': drives,
                                'checkpoints': rows}))
    return str(path)


def _gate(tmp_path, argv):
    out = tmp_path / 'gate.json'
    assert main(argv + ['--out', str(out)]) == 0
    return json.loads(out.read_text())


def test_pooled_figures_ratios_and_each_criterion(tmp_path):
    route_a = _report(tmp_path / 'ra.json', 'ra', 100, {
        'ref': _row(10.0, {'x': 10.0}), 'good': _row(10.0, {'x': 10.0}),
        'parks': _row(9.0, {'x': 9.0}, modal=0.6)})
    route_b = _report(tmp_path / 'rb.json', 'rb', 100, {
        'ref': _row(20.0, {'x': 20.0}), 'good': _row(21.0, {'x': 21.0}),
        'parks': _row(18.0, {'x': 18.0})})
    # follow-lane: 300 + 100 frames; 'good' errs 3 where the reference errs 3 on the large
    # set, and 5 against 4 on the small one: pooled (3*300 + 5*100) / 400 = 3.5 against 3.25
    fl_a = _report(tmp_path / 'fa.json', 'fa', 300, {
        'ref': _row(3.0, {'d1': 2.0, 'd2': 4.0}), 'good': _row(3.0, {'d1': 2.1, 'd2': 3.9}),
        'parks': _row(3.0, {'d1': 2.0, 'd2': 4.0})})
    fl_b = _report(tmp_path / 'fb.json', 'fb', 100, {
        'ref': _row(4.0, {'d3': 4.0}), 'good': _row(5.0, {'d3': 5.0}),
        'parks': _row(3.0, {'d3': 3.0})})
    result = _gate(tmp_path, ['--reference', 'ref', '--route', route_a, '--route', route_b,
                              '--follow-lane', fl_a, '--follow-lane', fl_b])
    assert result['reference']['route_pooled_deg'] == 15.0
    assert result['reference']['follow_lane_pooled_deg'] == pytest.approx(3.25)
    good, parks = result['checkpoints']['good'], result['checkpoints']['parks']
    assert good['route_ratio'] == pytest.approx(15.5 / 15.0)
    assert good['follow_lane_ratio'] == pytest.approx(3.5 / 3.25)     # 7.7 % above
    assert good['gate'] == {'route': True, 'follow_lane': False, 'spearman': True,
                            'ratio_top10': True, 'modal_excess': True}
    assert parks['gate']['modal_excess'] is False and parks['gate']['follow_lane'] is True
    assert result['ranking'] == []
    # paired over the three drives: differences +0.1, -0.1, +1.0
    assert good['follow_lane_paired']['units'] == 3
    assert good['follow_lane_paired']['mean_diff'] == pytest.approx(1.0 / 3)
    # a looser margin lets 'good' through, and it is ranked
    loose = _gate(tmp_path, ['--reference', 'ref', '--route', route_a, '--route', route_b,
                             '--follow-lane', fl_a, '--follow-lane', fl_b, '--margin', '1.1'])
    assert loose['ranking'] == ['good']


def test_reports_of_one_set_merge_and_must_agree(tmp_path, capsys):
    first = _report(tmp_path / 'r1.json', 'fa', 10, {'ref': _row(3.0, {'d': 3.0}),
                                                     'a': _row(3.1, {'d': 3.1})})
    second = _report(tmp_path / 'r2.json', 'fa', 10, {'ref': _row(3.0, {'d': 3.0}),
                                                      'b': _row(2.9, {'d': 2.9})})
    route = _report(tmp_path / 'r.json', 'r', 10, {n: _row(5.0, {'x': 5.0})
                                                   for n in ('ref', 'a', 'b')})
    result = _gate(tmp_path, ['--reference', 'ref', '--route', route,
                              '--follow-lane', first, second])
    assert set(result['checkpoints']) == {'a', 'b'}
    assert result['ranking'] == ['b', 'a']
    clash = _report(tmp_path / 'r3.json', 'fa', 10, {'ref': _row(3.5, {'d': 3.5})})
    assert main(['--reference', 'ref', '--route', route, '--follow-lane', first, clash]) == 2
    other = _report(tmp_path / 'r4.json', 'fb', 10, {'ref': _row(3.0, {'d': 3.0})})
    assert main(['--reference', 'ref', '--route', route, '--follow-lane', first, other]) == 2
    assert 'not fa' in capsys.readouterr().err
