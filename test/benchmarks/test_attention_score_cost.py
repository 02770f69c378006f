"""The cost of reading the attention from the head (benchmarks/attention_score_cost.py)."""

import json
from pathlib import Path
import sys

import pytest
import torch

CHECKOUT = Path(__file__).resolve().parents[2]
if not (CHECKOUT / 'benchmarks' / 'attention_score_cost.py').is_file():
    pytest.skip('benchmarks/ is not in this tree (it lives in a source checkout)',
                allow_module_level=True)
sys.path.insert(0, str(CHECKOUT))
from benchmarks.attention_score_cost import _networks, main  # noqa: E402
from conftest import tiny_config  # noqa: E402
from signattn_driver import checkpoint  # noqa: E402
from signattn_driver.model import SteeringNet  # noqa: E402


def test_both_scores_share_the_checkpoint_weights_and_differ_only_in_alpha(tmp_path):
    torch.manual_seed(0)
    path = checkpoint.save(tmp_path / 'm.pt', SteeringNet(tiny_config(binarize='mean_field')))
    nets = _networks(path)
    assert {k: n.config.attention_score for k, n in nets.items()} == {
        'learned': 'learned', 'head': 'head'}
    x = torch.rand(2, 3, 80, 160) * 2 - 1
    with torch.no_grad():
        learned, head = nets['learned'].step(x), nets['head'].step(x)
    assert not torch.allclose(learned[1], head[1])
    for name, net in nets.items():   # the same weights in both
        assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(),
                                                     nets['learned'].state_dict().values()))


def test_the_benchmark_writes_its_medians_and_ratio(tmp_path, capsys):
    torch.manual_seed(0)
    path = checkpoint.save(tmp_path / 'm.pt', SteeringNet(tiny_config()))
    out = tmp_path / 'cost.json'
    assert main(['--checkpoint', str(path), '--steps', '4', '--warmup', '1',
                 '--out', str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result['step_median_ms']) == {'learned', 'head'}
    assert result['head_over_learned'] == pytest.approx(
        result['step_median_ms']['head'] / result['step_median_ms']['learned'])
    assert result['steps'] == 4 and 'machine' in result
