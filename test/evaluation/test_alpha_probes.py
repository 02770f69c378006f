"""Probes of alpha inside a trained network: the memory view, the score swap, the ablation."""

import dataclasses

import numpy as np
import pytest
import torch

from conftest import tiny_config
from signattn_driver.evaluation import alpha_probes as probes
from signattn_driver.evaluation import contribution_study as study
from signattn_driver.model import SteeringNet
from fixtures.datasets import write_dataset


def _model(binarize='mean_field', attention='sign', seed=0):
    torch.manual_seed(seed)
    return SteeringNet(tiny_config(attention=attention, binarize=binarize, dropout=0.5))


@pytest.fixture(scope='module')
def drives(tmp_path_factory):
    root = write_dataset(tmp_path_factory.mktemp('d') / 'data', splits=('val', 'val'),
                         frames=12)
    return study.open_drives(root, 'val')


def test_the_memory_view_says_what_alpha_hides_from_the_lstm(drives):
    inert = probes.memory_view(_model('deterministic').eval(), drives, every=2)
    assert inert['frames'] == 12 and inert['memory_input'] == 'attended'
    # sign(alpha x) = sign(x): the paper's alpha hides nothing
    assert inert['mass_ratio'] == pytest.approx(1.0) and inert['faded_cells'] == 0.0
    assert np.allclose(inert['row_share_attended'], inert['row_share_uniform'])
    assert sum(inert['row_share_uniform']) == pytest.approx(1.0)
    torch.manual_seed(0)
    piled = SteeringNet(tiny_config(binarize='mean_field', attention_position_bias=True)).eval()
    with torch.no_grad():
        piled.attention.position_bias[123] = 30.0         # all alpha on cell (6, 3)
    out = probes.memory_view(piled, drives, every=2)
    assert out['row_share_attended'][6] > 0.99           # the memory reads one row
    assert out['faded_cells'] > 0.98                      # and hardly any other cell


def test_the_score_swap_runs_the_same_weights_under_each_score(drives):
    torch.manual_seed(0)
    model = SteeringNet(tiny_config(binarize='mean_field', sign_kappa=0.3)).eval()
    config = model.config
    out = probes.score_swap(model, drives)
    assert model.config is config                             # put back
    assert [k for k, v in out.items() if v['own']] == ['learned']
    own = study.accuracy(study.trace_drives(model, drives, uniform_reference=False))
    assert out['learned']['mae_u_per_m'] == pytest.approx(own['mae_u_per_m'])
    # the head score agrees with phi by construction, the untrained learned score does not
    assert out['head']['alpha_vs_phi']['spearman'] > 0.95
    assert out['head']['alpha_vs_phi']['spearman'] > out['learned']['alpha_vs_phi']['spearman']
    # alpha acts (mean_field): each score gives another command
    maes = {k: v['mae_u_per_m'] for k, v in out.items()}
    assert len({round(v, 9) for v in maes.values()}) == 4, maes
    # one frame per drive (the state is f_init of the frame under every score): 'uniform' is
    # the command at alpha = 1/L, exactly
    firsts = [dataclasses.replace(d, inputs=d.inputs[:1], u_label=d.u_label[:1],
                                  deg_per_u=d.deg_per_u[:1], route_command=d.route_command[:1])
              for d in drives]
    ref = study.trace_drives(model, firsts, uniform_reference=True)
    flat = np.abs(ref['phi_uniform'].sum((1, 2)) + ref['bias'] - ref['u_label']).mean()
    swapped = probes.score_swap(model, firsts)['uniform']['mae_u_per_m']
    assert swapped == pytest.approx(flat, rel=1e-6)
    assert flat != pytest.approx(study.accuracy(ref)['mae_u_per_m'], rel=1e-6)


def test_the_ablation_changes_how_alpha_acts_and_nothing_else(drives):
    torch.manual_seed(0)
    model = SteeringNet(tiny_config(binarize='mean_field', sign_kappa=0.3)).eval()
    swap = probes.score_swap(model, drives)
    out = probes.alpha_ablation(model, drives, cell=(2, 3), gains=(1.0, 0.5))['variants']
    assert '_acting' not in model.__dict__ and model.config.attention_score == 'learned'
    for name, score in (('learned x 1', 'learned'), ('head x 1', 'head'),
                        ('flat x 1', 'uniform')):
        assert out[name]['mae_u_per_m'] == pytest.approx(swap[score]['mae_u_per_m'], rel=1e-6)
    halved, flat = out['flat x 0.5']['mae_u_per_m'], out['flat x 1']['mae_u_per_m']
    assert halved != pytest.approx(flat, rel=1e-6)
    # emptying one cell of 200 moves the command less than halving every cell's strength
    shift = {k: abs(out[k]['mae_u_per_m'] - out['learned x 1']['mae_u_per_m'])
             for k in ('learned, cell emptied', 'learned x 0.5')}
    assert 0 < shift['learned, cell emptied'] < shift['learned x 0.5']
