"""The drive node's frame gates and hand-over (ros/frame_gate.py), without a ROS graph."""

import threading

import pytest

from signattn_driver.ros.frame_gate import (attention_due, NewestFrameSlot, Rejection,
                                            repeat_rejection, stamp_rejection)

SECOND = 1_000_000_000
NOW = 1_700_000_000 * SECOND


def test_old_frames_are_stale_only_past_the_limit_and_only_when_it_is_on():
    assert stamp_rejection(NOW - 2 * SECOND, NOW, 0.0, 1.0) is None       # 0 = off
    assert stamp_rejection(NOW - SECOND // 2, NOW, 1.0, 1.0) is None
    refused = stamp_rejection(NOW - 2 * SECOND, NOW, 1.0, 1.0)
    assert refused.kind == 'stale'
    assert refused.detail == 'frame 2.000 s old > max_frame_age_s 1.0'


def test_future_stamps_are_refused_except_while_the_clock_is_zero():
    refused = stamp_rejection(NOW + 3600 * SECOND, NOW, 0.0, 1.0)
    assert refused == Rejection('future', 'frame stamped 3600.000 s ahead of the node clock '
                                '> max_future_s 1.0')
    assert stamp_rejection(NOW + SECOND // 10, NOW, 0.0, 1.0) is None     # within tolerance
    assert stamp_rejection(NOW + 3600 * SECOND, NOW, 0.0, 0.0) is None    # 0 = off
    # use_sim_time before the first /clock: the node clock reads 0, nothing is "ahead" of it
    assert stamp_rejection(NOW, 0, 0.0, 1.0) is None


def test_only_a_copy_of_the_frame_just_steered_on_is_refused():
    assert repeat_rejection(NOW, None) is None                       # nothing steered yet
    assert repeat_rejection(NOW, NOW).kind == 'duplicate'
    # later and earlier stamps are for the sequence rule: a continuation or a restart
    assert repeat_rejection(NOW + 1, NOW) is None
    assert repeat_rejection(NOW - SECOND, NOW) is None


@pytest.mark.parametrize('index, every_n, enabled, subscribers, due', [
    (0, 1, True, 1, True), (1, 1, True, 1, True), (1, 2, True, 1, False),
    (4, 2, True, 3, True), (0, 1, False, 1, False), (0, 1, True, 0, False)])
def test_attention_is_rendered_every_nth_frame_and_only_for_listeners(
        index, every_n, enabled, subscribers, due):
    assert attention_due(index, every_n, enabled, subscribers) is due


def test_slot_keeps_the_newest_frame_and_reports_the_dropped_one():
    slot = NewestFrameSlot()
    assert slot.put('a') is False
    assert slot.put('b') is True          # 'a' was never taken: dropped
    assert slot.take() == 'b'
    assert slot.take(timeout_s=0.01) is None   # nothing waiting
    assert slot.put('c') is False         # 'b' was taken: nothing dropped
    assert slot.clear() is True and slot.clear() is False
    assert slot.take(timeout_s=0.01) is None


def test_closing_the_slot_wakes_a_waiting_worker():
    slot = NewestFrameSlot()
    taken = []
    worker = threading.Thread(target=lambda: taken.append(slot.take()))
    worker.start()
    slot.close()
    worker.join(timeout=5.0)
    assert not worker.is_alive() and taken == [None]
    slot.put('late')
    assert slot.take() is None            # closed stays closed


def test_a_waiting_worker_gets_a_frame_put_from_another_thread():
    slot = NewestFrameSlot()
    taken = []
    worker = threading.Thread(target=lambda: taken.append(slot.take(timeout_s=10.0)))
    worker.start()
    slot.put(('msg', 1.0, 2))
    worker.join(timeout=10.0)
    assert taken == [('msg', 1.0, 2)]
