"""Drives of an older set that the per-exit roundabout scheme keeps (per_exit_subset.py)."""

import json
from pathlib import Path
import sys

import numpy as np
import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
if not (CHECKOUT / 'benchmarks' / 'per_exit_subset.py').is_file():
    pytest.skip('benchmarks/ is not in this tree (it lives in a source checkout)',
                allow_module_level=True)
sys.path.insert(0, str(CHECKOUT))
from benchmarks.per_exit_subset import changes_under_per_exit, keep_drives  # noqa: E402
from signattn_driver.data.dataset import Dataset, DatasetWriter  # noqa: E402
from signattn_driver.vehicle import load_vehicle  # noqa: E402


def _drive(name, completion, *junctions):
    return {'name': name, 'route_completion': completion, 'route_length_m': 1000.0,
            'route_commands': [{'kind': k, 'entry_m': m, 'exit_m': m + 60.0, 'command': c}
                               for k, m, c in junctions]}


def test_only_a_reached_roundabout_left_by_a_later_exit_changes():
    assert changes_under_per_exit(_drive('a', 0.5, ('roundabout', 300.0, 'straight')))
    assert changes_under_per_exit(_drive('b', 0.5, ('roundabout', 320.0, 'left')))
    # not reached: its command (from 30 m before the entry) never came
    assert not changes_under_per_exit(_drive('c', 0.5, ('roundabout', 531.0, 'left')))
    # the first exit is RIGHT in both schemes; intersections are told as before
    assert not changes_under_per_exit(_drive('d', 0.9, ('roundabout', 100.0, 'right')))
    assert not changes_under_per_exit(_drive('e', 0.9, ('intersection', 100.0, 'left'),
                                             ('t_junction', 300.0, 'straight')))


def _old_simulation(root: Path, drives: list) -> Path:
    writer = DatasetWriter(root / 'dataset', vehicle=load_vehicle('mkz'), smoothing_alpha=1.0,
                           chunk_frames=8)
    for d in drives:
        drive = writer.drive(d['name'])
        for i in range(5):
            drive.append(np.zeros((80, 160, 3), np.uint8), 10**9 + i * 50_000_000, 0.0, 5.0)
        writer.close_drive(drive)
    writer.finalize()
    route = {'announce_m': 30.0, 'straight_tolerance_deg': 30.0}   # before the scheme field
    (root / 'simulation.json').write_text(json.dumps(
        {'config': {'sim': {'route': route}}, 'drives': drives}))
    return root


def test_kept_drives_form_a_set_train_reads(tmp_path):
    drives = [_drive('keep0', 0.9, ('intersection', 100.0, 'left')),
              _drive('drop', 0.9, ('roundabout', 100.0, 'straight')),
              _drive('keep1', 0.1, ('roundabout', 500.0, 'left'))]
    old = _old_simulation(tmp_path / 'old', drives)
    counts = keep_drives(old, tmp_path / 'kept')
    assert counts == {'kept_drives': 2, 'dropped_drives': 1, 'kept_frames': 10}
    kept = Dataset(tmp_path / 'kept')
    assert kept.drive_names == ['keep0', 'keep1']
    assert len(kept.drive('keep1')) == 5 and kept.manifest['subset']['dropped'] == ['drop']
    assert (tmp_path / 'kept' / 'keep0').is_symlink()
    # a set recorded per exit needs no subset
    per_exit = json.loads((old / 'simulation.json').read_text())
    per_exit['config']['sim']['route']['roundabout_commands'] = 'per_exit'
    (old / 'simulation.json').write_text(json.dumps(per_exit))
    with pytest.raises(SystemExit, match='already recorded per exit'):
        keep_drives(old, tmp_path / 'again')
