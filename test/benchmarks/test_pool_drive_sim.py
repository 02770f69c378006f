"""Pooling drive-sim results over map sets (benchmarks/pool_drive_sim.py)."""

import json
from pathlib import Path
import sys

import numpy as np
import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
if not (CHECKOUT / 'benchmarks' / 'pool_drive_sim.py').is_file():
    pytest.skip('benchmarks/ is not in this tree (it lives in a source checkout)',
                allow_module_level=True)
sys.path.insert(0, str(CHECKOUT))
from benchmarks.pool_drive_sim import main, null_size  # noqa: E402


def _run(path, seeds, completions, events, km, name='model'):
    summary = {'per_episode': [{'seed': s, 'autonomous_completion': c}
                               for s, c in zip(seeds, completions)],
               'out_of_road_events': events, 'km_in_charge': km}
    path.write_text(json.dumps({'controllers': {name: summary}}))
    return str(path)


def test_completion_is_a_mean_over_maps_and_events_a_ratio_of_sums(tmp_path):
    a = _run(tmp_path / 'a.json', [1, 2], [1.0, 0.5], 6, 2.0)
    b = _run(tmp_path / 'b.json', [3], [0.0], 0, 4.0)
    e1 = _run(tmp_path / 'e1.json', [1, 2], [1.0, 1.0], 1, 3.0, name='expert')
    e2 = _run(tmp_path / 'e2.json', [3], [1.0], 2, 3.0, name='expert')
    out = tmp_path / 'pooled.json'
    main(['--run', f'model={a}', '--run', f'model={b}', '--run', f'expert={e1}:expert',
          '--run', f'expert={e2}:expert', '--reference', 'expert', '--out', str(out)])
    pooled = json.loads(out.read_text())['pooled']
    model, expert = pooled['model'], pooled['expert']
    assert model['maps'] == [1, 2, 3]
    assert model['autonomous_completion'] == pytest.approx(0.5)     # (1 + 0.5 + 0) / 3
    assert model['out_of_road_per_km'] == pytest.approx(1.0)         # 6 / 6 km
    assert expert['out_of_road_per_km'] == pytest.approx(0.5)        # 3 / 6 km
    assert model['completion_over_reference'] == pytest.approx(0.5)
    assert model['events_per_km_over_reference'] == pytest.approx(2.0)


def _episodes(path, seeds, completions, events, name='model', lateral=None):
    summary = {'per_episode': [{'seed': s, 'autonomous_completion': c, 'out_of_road_events': e}
                               for s, c, e in zip(seeds, completions, events)],
               'out_of_road_events': sum(events), 'km_in_charge': float(len(seeds))}
    for episode, offset in zip(summary['per_episode'], lateral or []):
        episode['lateral_offset_mean_m'] = offset
    path.write_text(json.dumps({'controllers': {name: summary}}))
    return str(path)


def test_paired_compares_only_the_maps_both_drove(tmp_path):
    a = _episodes(tmp_path / 'a.json', [1, 2, 3, 4], [1.0, 0.8, 0.6, 0.9], [0, 1, 2, 0])
    b = _episodes(tmp_path / 'b.json', [2, 3, 4, 5], [0.7, 0.4, 0.75, 0.0], [0, 1, 0, 9])
    out = tmp_path / 'paired.json'
    main(['--run', f'a={a}', '--run', f'b={b}', '--paired', 'a:b', '--out', str(out)])
    result = json.loads(out.read_text())['paired'][0]
    assert result['maps'] == 3                           # maps 2, 3, 4
    completion = result['autonomous_completion']
    assert completion['mean_diff'] == pytest.approx(0.15)  # (0.1 + 0.2 + 0.15) / 3
    assert completion['units'] == 3                      # one unit per map
    assert completion['ci_low'] < 0.15 < completion['ci_high']
    assert completion['p'] < 0.05 and completion['ci_low'] > 0   # t = 5.2, df 2
    events = result['out_of_road_events']
    assert events['mean_diff'] == pytest.approx(2 / 3) and events['p'] > 0.05
    assert 'lateral_offset_mean_m' not in result          # not recorded by these runs


def test_a_map_driven_twice_counts_once_with_the_mean_of_its_drives(tmp_path):
    first = _episodes(tmp_path / 'a1.json', [1, 2, 3], [1.0, 0.6, 0.8], [0, 2, 1])
    second = _episodes(tmp_path / 'a2.json', [1, 2, 3], [0.8, 1.0, 0.8], [2, 0, 1])
    b = _episodes(tmp_path / 'b.json', [1, 2, 3], [0.7, 0.7, 0.9], [1, 1, 0])
    out = tmp_path / 'paired.json'
    main(['--run', f'a={first}', '--run', f'a={second}', '--run', f'b={b}', '--paired', 'a:b',
          '--out', str(out)])
    report = json.loads(out.read_text())
    result = report['paired'][0]
    assert result['maps'] == 3 and result['autonomous_completion']['units'] == 3
    # per map a - b: 0.9 - 0.7, 0.8 - 0.7, 0.8 - 0.9 (not the second drive alone: 0.1, 0.3, -0.1)
    assert result['autonomous_completion']['mean_a'] == pytest.approx(2.5 / 3)
    assert result['autonomous_completion']['mean_diff'] == pytest.approx(0.2 / 3)
    # events per map 1, 1, 1 (each the mean of two drives) against 1, 1, 0
    assert result['out_of_road_events']['mean_diff'] == pytest.approx(1 / 3)
    # pooling keeps every episode: six of a's, completion their mean
    assert report['pooled']['a']['maps'] == [1, 1, 2, 2, 3, 3]
    assert report['pooled']['a']['autonomous_completion'] == pytest.approx(5.0 / 6)


def test_paired_compares_the_lateral_offset_where_every_map_has_it(tmp_path):
    a = _episodes(tmp_path / 'a.json', [1, 2, 3], [1.0] * 3, [0] * 3,
                  lateral=[0.20, 0.31, 0.25])
    b = _episodes(tmp_path / 'b.json', [1, 2, 3], [1.0] * 3, [0] * 3,
                  lateral=[0.10, 0.20, 0.16])
    out = tmp_path / 'paired.json'
    main(['--run', f'a={a}', '--run', f'b={b}', '--paired', 'a:b', '--out', str(out)])
    lateral = json.loads(out.read_text())['paired'][0]['lateral_offset_mean_m']
    assert lateral['mean_diff'] == pytest.approx(0.1)       # (0.10 + 0.11 + 0.09) / 3
    assert lateral['units'] == 3 and lateral['p'] < 0.05 and lateral['ci_low'] > 0


def test_null_size_is_near_the_level_for_normal_differences_and_low_for_one_outlier():
    normal = np.random.default_rng(1).normal(size=30)
    assert 0.02 <= null_size(normal, draws=1000) <= 0.08
    one_stall = np.r_[np.zeros(29), 5.0]        # one map differs: no sign pattern rejects
    assert null_size(one_stall, draws=200) == 0.0


def _placed(seed, road, junction, signed):
    """Return an episode with (frames, mean |offset|) on the road and at a T-junction."""
    return {'seed': seed, 'autonomous_completion': 1.0, 'out_of_road_events': 0,
            'lateral_offset_signed_mean_m': signed,
            'lateral_offset_by_place': {'road': {'frames': road[0], 'mean_m': road[1]},
                                        't_junction': {'frames': junction[0],
                                                       'mean_m': junction[1]}}}


def test_offsets_by_place_pool_by_frames_and_the_road_offset_is_paired(tmp_path):
    def write(name, episodes):
        summary = {'per_episode': episodes, 'out_of_road_events': 0, 'km_in_charge': 1.0}
        (tmp_path / name).write_text(json.dumps({'controllers': {'model': summary}}))
        return str(tmp_path / name)
    a = write('a.json', [_placed(1, (300, 0.20), (100, 0.40), +0.05),
                         _placed(2, (100, 0.30), (0, 0.0), -0.10),
                         _placed(3, (200, 0.25), (50, 0.10), 0.0)])
    b = write('b.json', [_placed(1, (300, 0.10), (100, 0.40), 0.0),
                         _placed(2, (100, 0.20), (0, 0.0), 0.0),
                         _placed(3, (200, 0.16), (50, 0.10), 0.0)])
    out = tmp_path / 'pooled.json'
    main(['--run', f'a={a}', '--run', f'b={b}', '--paired', 'a:b', '--out', str(out)])
    result = json.loads(out.read_text())
    pooled = result['pooled']['a']
    road = pooled['lateral_offset_by_place']['road']
    assert road['frames'] == 600
    assert road['mean_m'] == pytest.approx((300 * 0.2 + 100 * 0.3 + 200 * 0.25) / 600)
    assert pooled['lateral_offset_by_place']['t_junction'] == {'frames': 150,
                                                               'mean_m': pytest.approx(0.3)}
    # weighted by each episode's frames: (400 * 0.05 - 100 * 0.10 + 0) / 750
    assert pooled['lateral_offset_signed_mean_m'] == pytest.approx(10 / 750)
    paired = result['paired'][0]['lateral_offset_road_m']
    assert paired['mean_diff'] == pytest.approx(0.1 - 0.01 / 3)    # (0.10 + 0.10 + 0.09) / 3
    assert paired['units'] == 3 and paired['ci_low'] > 0
