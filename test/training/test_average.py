"""Weight averaging of checkpoints (signattn_driver.training.average, a model soup)."""

import pytest
import torch

from benchmarks import average_checkpoints as average_cli
from conftest import tiny_config
from signattn_driver import checkpoint
from signattn_driver.model import SteeringNet
from signattn_driver.training.average import AverageError, average_checkpoints


def _saved(tmp_path, name, seed, vehicle='mkz', **overrides):
    torch.manual_seed(seed)
    model = SteeringNet(tiny_config(**overrides)).eval()
    return checkpoint.save(tmp_path / name, model, vehicle={'name': vehicle},
                           metrics={'mae_steering_deg': float(seed)}, step=seed)


def test_the_average_is_the_weighted_mean_of_every_weight(tmp_path):
    a, b = _saved(tmp_path, 'a.pt', 1), _saved(tmp_path, 'b.pt', 2)
    out = average_checkpoints([a, b], tmp_path / 'soup.pt', weights=[0.25, 0.75])
    soup, ca, cb = (checkpoint.load(p) for p in (out, a, b))
    assert soup.config == ca.config
    moved = 0
    for name, t in soup.state_dict.items():
        expect = 0.25 * ca.state_dict[name].double() + 0.75 * cb.state_dict[name].double()
        torch.testing.assert_close(t.double(), expect, rtol=0, atol=1e-6)
        moved += not torch.equal(t, ca.state_dict[name])
    assert moved > 0
    assert [i['weight'] for i in soup.metadata['averaged_from']] == [0.25, 0.75]
    assert soup.metadata['averaged_from'][1]['sha256'] == cb.file_sha256
    assert soup.metadata['vehicle'] == {'name': 'mkz'}
    assert 'metrics' not in soup.metadata and 'step' not in soup.metadata


def test_weight_one_on_a_checkpoint_gives_back_its_outputs(tmp_path):
    a, b = _saved(tmp_path, 'a.pt', 1), _saved(tmp_path, 'b.pt', 2)
    out = average_checkpoints([a, b], tmp_path / 'soup.pt', weights=[1.0, 0.0])
    frames = torch.randn(1, 3, 3, 80, 160)
    with torch.no_grad():
        got = checkpoint.load_model(out)[0](frames)[0]
        want = checkpoint.load_model(a)[0](frames)[0]
    torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize('other, match', [
    (dict(vehicle='metadrive'), 'vehicle differs'),
    (dict(lstm_hidden=24), 'model config differs'),
])
def test_checkpoints_of_different_networks_or_cars_are_refused(tmp_path, other, match):
    a = _saved(tmp_path, 'a.pt', 1)
    b = _saved(tmp_path, 'b.pt', 2, **other)
    with pytest.raises(AverageError, match=match):
        average_checkpoints([a, b], tmp_path / 'soup.pt')
    assert not (tmp_path / 'soup.pt').exists()


def test_the_script_reports_bad_weights_in_one_line(tmp_path, capsys):
    a, b = _saved(tmp_path, 'a.pt', 1), _saved(tmp_path, 'b.pt', 2)
    assert average_cli.main([str(a), str(b), '--weights', '0.6', '0.6',
                             '--out', str(tmp_path / 's.pt')]) == 2
    assert 'sum to 1' in capsys.readouterr().err
    assert average_cli.main([str(a), '--out', str(tmp_path / 's.pt')]) == 2
    assert average_cli.main([str(a), str(b), '--out', str(tmp_path / 's.pt')]) == 0
    assert checkpoint.load(tmp_path / 's.pt').metadata['averaged_from'][0]['weight'] == 0.5
