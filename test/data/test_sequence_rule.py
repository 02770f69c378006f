"""The one sequence rule: gaps, backward jumps and explicit resets start a new LSTM sequence."""

import numpy as np
import pytest

from signattn_driver.data.sequence_rule import SequenceRule, SequenceTracker

MS = 1_000_000
# 20 Hz, a 0.3 s stall (kept), a 2 s gap (new sequence), a jump back (new sequence), a duplicate.
STAMPS_NS = np.array([0, 50, 100, 400, 450, 2450, 2500, 1000, 1050, 1050, 1100]) * MS
EXPECTED = [0, 5, 7]


def test_vectorised_and_streaming_forms_agree():
    rule = SequenceRule(max_gap_s=0.5)
    assert np.flatnonzero(rule.segment_starts(STAMPS_NS)).tolist() == EXPECTED
    tracker = SequenceTracker(rule)
    assert [i for i, s in enumerate(STAMPS_NS) if tracker.observe(s)] == EXPECTED


def test_explicit_reset_starts_the_next_frame():
    tracker = SequenceTracker(SequenceRule(max_gap_s=0.5))
    assert tracker.observe(0) and not tracker.observe(50 * MS)
    tracker.request_reset()
    assert tracker.observe(100 * MS)


@pytest.mark.parametrize('bad', [0.0, -1.0, float('inf'), float('nan')])
def test_rejects_bad_gaps(bad):
    with pytest.raises(ValueError, match='max_gap_s'):
        SequenceRule(max_gap_s=bad)
