"""How much a command model steers through a turn (benchmarks/turn_steering.py)."""

from pathlib import Path
import sys

import numpy as np
import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
if not (CHECKOUT / 'benchmarks' / 'turn_steering.py').is_file():
    pytest.skip('benchmarks/ is not in this tree (it lives in a source checkout)',
                allow_module_level=True)
sys.path.insert(0, str(CHECKOUT))
from benchmarks.turn_steering import summarize, turns  # noqa: E402
from signattn_driver.route_command import FOLLOW_LANE, LEFT, RIGHT  # noqa: E402


def test_each_stretch_under_one_command_is_one_turn_scored_at_its_sharpest_quarter():
    commands = np.array([FOLLOW_LANE] * 2 + [LEFT] * 8 + [RIGHT] * 4 + [FOLLOW_LANE] * 2)
    label = np.zeros(len(commands))
    label[2:10] = [0.01, 0.02, 0.04, 0.08, 0.08, 0.04, 0.02, 0.01]    # a left turn
    label[10:14] = -0.05
    pred = label * 0.5                                                  # steers half as much
    pred[10:14] = -0.05
    rows = turns(commands, label, pred)
    assert [(r['command'], r['first_frame'], r['frames']) for r in rows] == [
        ('left', 2, 8), ('right', 10, 4)]
    left, right = rows
    assert left['label_sharpest_quarter_per_m'] == pytest.approx(0.08)   # its 2 sharpest frames
    assert left['pred_sharpest_quarter_per_m'] == pytest.approx(0.04)
    assert left['label_mean_per_m'] == pytest.approx(label[2:10].mean())
    assert right['mae_per_m'] == 0.0
    summary = summarize(rows)
    assert summary['left']['sharpest_quarter_pred_over_label'] == pytest.approx(0.5)
    assert summary['right']['sharpest_quarter_pred_over_label'] == pytest.approx(1.0)
    assert 'straight' not in summary and summary['left']['turns'] == 1
