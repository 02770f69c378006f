"""A dataset's follow-lane copy (follow_lane_copy.py): same frames and labels, no commands."""

from pathlib import Path
import sys

import numpy as np
import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
if not (CHECKOUT / 'benchmarks' / 'follow_lane_copy.py').is_file():
    pytest.skip('benchmarks/ is not in this tree (it lives in a source checkout)',
                allow_module_level=True)
sys.path.insert(0, str(CHECKOUT))
from benchmarks.follow_lane_copy import follow_lane_copy  # noqa: E402
from signattn_driver.data.dataset import Dataset, DatasetWriter  # noqa: E402
from signattn_driver.route_command import FOLLOW_LANE, LEFT, RIGHT  # noqa: E402
from signattn_driver.vehicle import load_vehicle  # noqa: E402


def test_the_copy_keeps_frames_and_labels_and_tells_follow_lane(tmp_path):
    rng = np.random.default_rng(0)
    writer = DatasetWriter(tmp_path / 'src', vehicle=load_vehicle('mkz'), smoothing_alpha=1.0,
                           chunk_frames=4)
    commands = {'a': [FOLLOW_LANE, LEFT, LEFT, RIGHT, FOLLOW_LANE, RIGHT], 'b': [LEFT] * 3}
    for name, drive_commands in commands.items():
        drive = writer.drive(name)
        for i, c in enumerate(drive_commands):
            drive.append(rng.integers(0, 255, (80, 160, 3), dtype=np.uint8),
                         10**9 + i * 50_000_000, 0.1 * i, 5.0, route_command=c)
        writer.close_drive(drive)
    source = writer.finalize()
    counts = follow_lane_copy(source, tmp_path / 'copy')
    assert counts == {'drives': 2, 'frames': 9, 'commands_changed': 7}
    original, copy = Dataset(source), Dataset(tmp_path / 'copy')
    assert copy.drive_names == original.drive_names
    for name in original.drive_names:
        a, b = original.drive(name), copy.drive(name)
        assert a.labels['route_command'].tolist() == commands[name]
        assert b.labels['route_command'].tolist() == [FOLLOW_LANE] * len(commands[name])
        for column in ('stamp_ns', 'inverse_radius_per_m', 'steering_wheel_rad'):
            np.testing.assert_array_equal(a.labels[column], b.labels[column])
        n = len(commands[name])
        np.testing.assert_array_equal(a.frames(0, n), b.frames(0, n))
    assert copy.manifest['derived']['of'] == str(source)
    with pytest.raises(FileExistsError):
        follow_lane_copy(source, tmp_path / 'copy')
