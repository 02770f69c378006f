"""The drive node's counters, stage times and /diagnostics verdict (ros/node_health.py).

Driven with a fake monotonic clock and counts set by hand: no ROS graph, no waiting.
"""

import math
import subprocess
import sys

import pytest

from signattn_driver.ros.node_health import (diagnostic_values, FrameCounters, HealthMonitor,
                                             InputView, OK, REJECTION_KINDS, StageTimes, TIMED,
                                             WARN)


def judge(monitor, now_s, publishers=1, stale_input_s=2.0, max_drop_fraction=0.2, **view):
    return monitor.judge(now_s, InputView('/image', publishers, **view), stale_input_s,
                         max_drop_fraction)


def test_counters_count_rejections_by_kind_and_refuse_unknown_kinds():
    counters = FrameCounters()
    counters.reject('too_large')
    counters.reject('too_large')
    counters.reject('future')
    assert counters.frames['rejected'] == 3
    assert counters.rejections['too_large'] == 2 and counters.rejections['future'] == 1
    with pytest.raises(ValueError, match='unknown rejection kind'):
        counters.reject('bad_luck')
    snapshot = counters.snapshot()
    assert (snapshot.received, snapshot.rejected) == (0, 3)
    counters.reject('corrupt')
    assert snapshot.rejections['corrupt'] == 0     # a snapshot does not move with the counts


def test_stage_times_give_percentiles_over_a_bounded_window():
    times = StageTimes(window=100)
    assert all(math.isnan(v) for v in times.summary().values())
    assert set(times.summary()) == {f'{n}_p{q}_ms' for n in TIMED for q in (50, 99)}
    for i in range(1, 201):                     # only the last 100 (101..200) are kept
        times.add({'network': float(i), 'latency': 2.0 * i})
    summary = times.summary()
    assert summary['network_p50_ms'] == pytest.approx(150.5)
    assert summary['network_p99_ms'] == pytest.approx(199.01)
    assert summary['latency_p50_ms'] == pytest.approx(301.0)
    assert math.isnan(summary['decode_p50_ms'])    # never timed


def test_silent_input_warns_only_with_publishers_and_after_stale_input_s():
    counters = FrameCounters()
    monitor = HealthMonitor(counters, now_s=100.0)
    assert judge(monitor, 105.0, publishers=0) == (OK, 'ok')     # nobody publishes: fine
    # the silence counts from when a publisher appeared, not from the node's start
    assert judge(monitor, 106.0)[0] == OK
    level, message = judge(monitor, 108.5)
    assert level == WARN
    assert message.startswith('no frame for 3.5 s from 1 publisher(s) on /image '
                              '(frames_received 0)')
    assert 'try input_reliability:=reliable' in message            # best effort: the hint
    assert judge(monitor, 108.5, stale_input_s=0.0) == (OK, 'ok')   # 0 = off
    assert 'reliable' not in judge(monitor, 109.0, best_effort=False)[1]
    assert judge(monitor, 109.0, incompatible_qos=2)[1].endswith(
        '; 2 publisher(s) with incompatible QoS')
    monitor.frame_arrived(109.5)
    counters.frames['received'] += 1
    assert judge(monitor, 110.0) == (OK, 'ok')


def test_drops_and_rejections_warn_over_the_window_then_clear():
    counters = FrameCounters()
    monitor = HealthMonitor(counters, now_s=0.0, window_ticks=3)
    now = 0.0

    def tick(received=0, dropped=0, kinds=()):
        nonlocal now
        now += 1.0
        counters.frames['received'] += received
        counters.frames['dropped'] += dropped
        for kind in kinds:
            counters.reject(kind)
        monitor.frame_arrived(now)
        return judge(monitor, now)
    assert tick(received=20, dropped=4) == (OK, 'ok')       # 4 of 20 = 0.2: not above
    level, message = tick(received=10, dropped=4, kinds=['too_large'] * 3)
    assert level == WARN
    assert message == ('11 of 30 frames in the last 2 s dropped (8) or rejected '
                       '(3: too_large 3) > max_drop_fraction 0.2')
    assert tick(received=10)[1].startswith('11 of 40 frames in the last 3 s')
    # the first tick leaves the 3-tick window: 7 bad of the last 30
    assert tick(received=10)[1].startswith('7 of 30 frames in the last 3 s dropped (4)')
    assert tick(received=10) == (OK, 'ok')                  # all bad ticks out of the window


def test_a_device_note_always_warns():
    monitor = HealthMonitor(FrameCounters(), now_s=0.0)
    level, message = monitor.judge(0.5, InputView('/image', 0), 2.0, 0.2,
                                   device_note='fell back to the CPU')
    assert (level, message) == (WARN, 'fell back to the CPU')


def test_diagnostic_values_name_every_counter_and_format_times():
    counters = FrameCounters()
    counters.frames['received'] = 5
    counters.reject('corrupt')
    times = StageTimes()
    times.add({'latency': 1.23456})
    values = diagnostic_values(counters, times.summary(), 2, 1, device='cpu', precision='fp32')
    keys = list(values)
    assert keys[:9] == ['frames_received', 'frames_processed', 'frames_dropped',
                        'frames_rejected', 'state_resets', 'attention_published',
                        'contribution_published', 'input_publishers', 'input_qos_incompatible']
    assert keys[-2:] == ['device', 'precision']
    assert {f'rejected_{k}' for k in REJECTION_KINDS} <= set(keys)
    assert values['frames_received'] == 5 and values['rejected_corrupt'] == 1
    assert values['latency_p50_ms'] == '1.235' and values['decode_p50_ms'] == 'nan'


def test_the_node_logic_imports_no_rclpy():
    """The pure parts stay importable and testable where ROS 2 is not installed."""
    code = ('import sys, signattn_driver.ros.node_health, signattn_driver.ros.frame_gate; '
            'sys.exit("rclpy" in sys.modules)')
    assert subprocess.run([sys.executable, '-c', code], timeout=120).returncode == 0


def test_a_node_that_is_not_steering_says_why():
    from signattn_driver.ros.node_health import ERROR, idle_verdict
    assert idle_verdict(False) == (OK, 'unconfigured: not steering (configure, then activate)')
    assert idle_verdict(True)[0] == OK and idle_verdict(True)[1].startswith('inactive')
    assert idle_verdict(False, 'checkpoint not found: /m.pt') == (
        ERROR, 'unconfigured: configure failed: checkpoint not found: /m.pt')
