"""Label math (data/labels.py): eq. 2 by hand, causal = batch, interpolation, stamps."""

from types import SimpleNamespace

import numpy as np
import pytest

from signattn_driver.data.labels import (find_gaps, interpolate_labels, LabelTrack, smooth,
                                         Smoother, stamp_ns_of)


def test_smoothing_by_hand():
    out = smooth([0.0, 1.0, 1.0, 0.0], alpha_s=0.5)
    assert out.tolist() == [0.0, 0.5, 0.75, 0.375]
    assert smooth([3.0, -2.0], alpha_s=1.0).tolist() == [3.0, -2.0]
    two = smooth(np.array([[0.0, 10.0], [1.0, 20.0]]), 0.25)
    assert two.tolist() == [[0.0, 10.0], [0.25, 12.5]]
    with pytest.raises(ValueError):
        smooth([1.0], 0.0)
    with pytest.raises(ValueError):
        Smoother(1.5)


def test_frame_by_frame_smoothing_is_bit_identical_to_the_series():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2)) * [0.3, 5.0] + [0.0, 15.0]
    causal = Smoother(0.2)
    one_by_one = np.array([causal.update(row) for row in x])
    assert one_by_one.tobytes() == smooth(x, 0.2).tobytes()
    scalar = Smoother(0.2)
    assert [float(scalar.update(v)) for v in x[:, 0]] == smooth(x[:, 0], 0.2).tolist()


def test_track_per_frame_equals_whole_record_and_keeps_ns_precision():
    base = 1_479_424_215 * 10**9            # absolute stamps of a 2016 drive
    s = base + np.cumsum(np.r_[0, np.full(99, 20_000_000) + np.arange(99) % 3])
    values = np.column_stack([np.sin(np.arange(100) / 7), 10 + np.arange(100) / 10])
    track = LabelTrack(s, values)
    frames = np.r_[s[0] - 1, s[0] + 1, s[10] + 7, s[50], s[-1], s[-1] + 1]
    whole, inside = track.at_stamps(frames)
    assert inside.tolist() == [False, True, True, True, True, False]
    assert np.isnan(whole[~inside]).all()
    for stamp, row, ok in zip(frames, whole, inside):
        one = track.at(stamp)
        assert (one is None) == (not ok)
        if ok:
            assert list(one) == row.tolist()
    # 1 ns after the first sample moves the label by 1/20e6 of the step, which an absolute
    # float64 stamp (resolution 256 ns at 1.5e18) would lose.
    expected = values[0, 1] + (values[1, 1] - values[0, 1]) * 1 / (s[1] - s[0])
    assert track.at(s[0] + 1)[1] == pytest.approx(expected, rel=0, abs=1e-15)
    th, v, ok = interpolate_labels(frames, s, values[:, 0], values[:, 1])
    assert th.tolist()[1:5] == whole[1:5, 0].tolist() and ok.tolist() == inside.tolist()


def test_stamp_ns_of_and_gaps():
    header = SimpleNamespace(stamp=SimpleNamespace(sec=1_479_424_215, nanosec=999_999_999))
    assert stamp_ns_of(header) == 1_479_424_215_999_999_999
    assert find_gaps(np.array([0, 20, 40, 300, 320]) * 1_000_000, 0.2) == [
        {'start_ns': 40_000_000, 'end_ns': 300_000_000, 'duration_s': 0.26}]
