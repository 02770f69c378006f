"""The candidate collector judges each split against issue 18's goals (benchmarks/, no model)."""

import json
from pathlib import Path
import sys

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
if not (CHECKOUT / 'benchmarks' / 'phi_candidates.py').is_file():
    pytest.skip('benchmarks/ is not in this tree (it lives in a source checkout)',
                allow_module_level=True)
sys.path.insert(0, str(CHECKOUT))
from benchmarks.phi_candidates import collect, goals_met  # noqa: E402


def _scores(spearman, ratio, modal, phi_modal, mae):
    return {'mae_steering_deg': mae, 'alpha_vs_phi': {
        'spearman': spearman, 'ratio_top10': ratio, 'modal_share': modal,
        'phi_modal_share': phi_modal}}


def test_each_goal_is_judged_on_its_own():
    baseline = _scores(0.77, 0.66, 0.83, 0.34, 10.0)
    assert all(goals_met(_scores(0.9, 0.9, 0.43, 0.34, 10.5), baseline).values())
    missed = goals_met(_scores(0.89, 0.95, 0.45, 0.34, 10.6), baseline)
    assert missed == {'spearman': False, 'ratio_top10': True, 'modal_share': False,
                      'mae': False}


def test_runs_get_their_held_out_scores_and_the_baseline_of_the_same_frames(tmp_path):
    run = {'overrides': {'align_weight': 0.01}, 'seed': 0, 'steps': 10, 'train_minutes': 1.0,
           'checkpoint': 'runs/a/last.pt', **_scores(0.8, 0.8, 0.3, 0.3, 5.0)}
    (tmp_path / 'results.json').write_text(json.dumps(
        {'machine': 'test', 'score_data': 'val', 'runs': {'a/seed0': run}}))
    for name, ckpts in (('held', {'base.pt': _scores(0.7, 0.6, 0.8, 0.3, 10.0),
                                  'runs/a/last.pt': _scores(0.91, 0.92, 0.3, 0.3, 10.4)}),
                        ('val', {'base.pt': _scores(0.8, 0.7, 0.9, 0.4, 4.0)})):
        (tmp_path / f'{name}.json').write_text(json.dumps(
            {'command': name, 'data': name, 'checkpoints': ckpts}))
    out = collect([tmp_path / 'results.json'], [tmp_path / 'held.json'],
                  [tmp_path / 'val.json'], 'base.pt')
    entry = out['runs']['a/seed0']
    assert entry['heldout']['alpha_vs_phi']['spearman'] == 0.91
    assert all(entry['heldout_goals'].values())
    assert entry['val_goals']['mae'] is False          # 5.0 > 1.05 * 4.0
