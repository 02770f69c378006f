"""One latency summary (signattn_driver.latency) and one child environment (ros/node_process)."""

import math

import numpy as np
import pytest

from signattn_driver.latency import latency_summary
from signattn_driver.ros.node_process import node_environment, use_loopback_dds


def test_latency_summary_keys_and_values():
    ms = np.arange(1, 101, dtype=float)
    summary = latency_summary(ms)
    assert set(summary) == {'p50_ms', 'p99_ms'}
    assert summary['p50_ms'] == pytest.approx(np.median(ms))
    assert summary['p99_ms'] == pytest.approx(np.percentile(ms, 99))
    full = latency_summary(list(ms), 'latency_', (50, 90, 99), mean_and_max=True)
    assert set(full) == {'latency_p50_ms', 'latency_p90_ms', 'latency_p99_ms',
                         'latency_mean_ms', 'latency_max_ms'}
    assert full['latency_max_ms'] == 100.0 and full['latency_mean_ms'] == 50.5
    # no values: NaN, never an error (the node publishes it before its first frame)
    assert all(math.isnan(v) for v in latency_summary([], 'decode_').values())


def test_child_environment_talks_dds_as_this_process():
    env = node_environment({'ROS_DOMAIN_ID': '7', 'PYTHONUTF8': 'on', 'HOME': '/h'})
    assert env == {'ROS_DOMAIN_ID': '7', 'HOME': '/h', 'FASTDDS_BUILTIN_TRANSPORTS': 'LARGE_DATA'}
    chosen = node_environment({'FASTDDS_BUILTIN_TRANSPORTS': 'UDPv4', 'PYTHONUTF8': '1'})
    assert chosen == {'FASTDDS_BUILTIN_TRANSPORTS': 'UDPv4', 'PYTHONUTF8': '1'}
    environ = {'ROS_AUTOMATIC_DISCOVERY_RANGE': 'SUBNET'}
    use_loopback_dds(environ, 42)
    assert environ == {'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST', 'ROS_DOMAIN_ID': '42',
                       'FASTDDS_BUILTIN_TRANSPORTS': 'LARGE_DATA'}
    use_loopback_dds(environ, 9)                 # a domain already chosen stays
    assert environ['ROS_DOMAIN_ID'] == '42'
