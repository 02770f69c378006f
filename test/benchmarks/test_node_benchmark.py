"""The node benchmark's pacing, floor and summary over repeats (benchmarks/node*.py, no DDS)."""

from pathlib import Path
import sys
import time

import numpy as np
import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
if not (CHECKOUT / 'benchmarks' / 'node.py').is_file():
    pytest.skip('benchmarks/ is not in this tree (it lives in a source checkout)',
                allow_module_level=True)
sys.path.insert(0, str(CHECKOUT))
from benchmarks.node import _medians  # noqa: E402
from benchmarks.node_floor import _paced_ms  # noqa: E402


def test_paced_calls_start_on_the_rate_grid_and_warmup_is_not_timed():
    starts = []
    times = _paced_ms(lambda i: starts.append((i, time.perf_counter())), n=5, rate_hz=50.0,
                      warmup=2)
    assert len(times) == 5                       # the 2 warm-up calls are not reported
    assert [i for i, _ in starts] == list(range(7))
    # never earlier than the 50 Hz grid (a late call does not push the later ones back)
    since_first = np.array([t for _, t in starts]) - starts[0][1]
    assert np.all(since_first >= 0.02 * np.arange(7) - 1e-3)


def test_back_to_back_calls_do_not_wait():
    starts = []
    _paced_ms(lambda i: starts.append(time.perf_counter()), n=20, rate_hz=0, warmup=0)
    assert starts[-1] - starts[0] < 0.02 * 19    # far less than any pacing would take


def _repeat(ratio: float, p50: float, threads: int) -> dict:
    phase = {'20hz': {'latency_p50_ms': p50, 'latency_p99_ms': 2 * p50}}
    return {'ratio_node_over_floor_int8_p50': ratio, 'floor_int8_p50_ms': p50 - 1.0,
            'load_average_1min_at_start': 9.0, 'threads': {'int8': threads},
            'variants': {'node_int8': {'phases': phase}}}


def test_summary_is_the_median_of_each_figure_over_repeats():
    summary = _medians([_repeat(1.1, 8.0, 1), _repeat(2.0, 12.0, 2), _repeat(1.2, 9.0, 1)])
    assert summary['ratio_node_over_floor_int8_p50'] == pytest.approx(1.2)
    assert summary['node_int8_20hz_latency_p50_ms'] == pytest.approx(9.0)
    assert summary['node_int8_20hz_latency_p99_ms'] == pytest.approx(18.0)
    assert summary['floor_int8_p50_ms'] == pytest.approx(8.0)
    assert 'load_average_1min_at_start' not in summary
    assert summary['threads_chosen'] == [{'int8': 1}, {'int8': 2}, {'int8': 1}]


def test_a_listener_that_hears_nothing_is_an_error_not_nan(ros_domain_id):
    pytest.importorskip('rclpy', reason='the DDS hop needs rclpy')
    from benchmarks.node_floor import _listen
    from benchmarks.node_processes import child_env
    from signattn_driver.ros.node_process import NothingHeardError
    # the camera runs in the next domain: this process's listener is never discovered
    env = dict(child_env(), ROS_DOMAIN_ID=str(1 + ros_domain_id % 101))
    with pytest.raises(NothingHeardError, match='found no subscriber in 2 s.*ROS_DOMAIN_ID'):
        _listen([['20hz', 20, 1.0]], env, 'jpeg', False, subscriber_wait_s=2.0)


def test_floor_ratios_divide_the_node_p50_by_its_parts():
    from benchmarks.node_floor import floor_ratios
    floor = {'step': {'int8': {'p50_ms': 6.0, 'back_to_back': {'p50_ms': 4.0}}},
             'jpeg_decode': {'p50_ms': 1.5, 'back_to_back': {'p50_ms': 1.0}},
             'dds_hop': {'p50_ms': 0.5}, 'dds_hop_raw': {'p50_ms': 12.0}}
    stages = {'preprocess': 1.0, 'network': 5.0, 'decode': 1.5, 'age_at_receipt': 0.5}
    variants = {'node_int8': {'phases': {'20hz': {'latency_p50_ms': 10.0,
                                                  'node_stages_p50_ms': stages}}},
                'node_int8_raw': {'phases': {'20hz': {'latency_p50_ms': 21.0}}}}
    jpeg = floor_ratios('int8', 'compressed', floor, variants)
    assert jpeg['floor_int8_p50_ms'] == 8.0 and jpeg['ratio_node_over_floor_int8_p50'] == 1.25
    assert jpeg['floor_back_to_back_int8_p50_ms'] == 5.5
    assert jpeg['ratio_node_over_stage_floor_int8_p50'] == 10.0 / 8.0
    raw = floor_ratios('int8', 'raw', floor, variants)        # no decode; the raw frame's hop
    assert raw['floor_int8_raw_p50_ms'] == 18.0
    assert raw['ratio_node_over_floor_int8_raw_p50'] == 21 / 18
    assert 'ratio_node_over_stage_floor_int8_raw_p50' not in raw
