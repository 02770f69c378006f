"""Soak: the drive node fed N camera frames at a set rate, attention subscribed, RSS sampled.

Three processes as in `benchmarks.node`: the camera (640x480 JPEG, sensor-data QoS), the drive
node under test (`publish_attention` on) and this process, which subscribes to
`steering/command` and `attention` (so the overlay is rendered and published every frame) and
reads the node's resident set size from /proc every `--sample-s`. Memory is flat when the RSS
after warm-up stays within a few MiB to the end.
"""

import os
from pathlib import Path
import platform
import time

import numpy as np

from signattn_driver.choices import PRECISIONS
from signattn_driver.paths import SHIPPED_MODEL, shipped_model


def add_arguments(parser):
    """Options of `signattn benchmark soak`."""
    parser.add_argument('--checkpoint', help='checkpoint (default: the shipped model, '
                        f'config/{"/".join(SHIPPED_MODEL)})')
    parser.add_argument('--frames', type=int, default=6000, help='frames to publish')
    parser.add_argument('--rate', type=float, default=50.0, help='camera rate (Hz)')
    parser.add_argument('--precision', default='fp32', choices=PRECISIONS)
    parser.add_argument('--threads', type=int, default=1, help='torch threads in the node')
    parser.add_argument('--sample-s', type=float, default=1.0, help='RSS sampling period')
    parser.add_argument('--warmup-s', type=float, default=10.0,
                        help='RSS growth is judged from this time on')


def _rss_mib(pid: int) -> float:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
    return float('nan')


def run(args) -> dict:
    """Publish `frames` at `rate`, sample the node's RSS; return the curve and its summary."""
    from benchmarks.node_processes import (camera_counts, child_env, close_listener,
                                           open_listener, require_heard, start_camera)
    from signattn_driver.ros.node_process import NodeProcess

    env = child_env()
    path = args.checkpoint or str(shipped_model())
    load = [os.getloadavg()[0]]
    with NodeProcess(parameters={'checkpoint': path, 'device': 'cpu',
                                 'precision': args.precision, 'num_threads': args.threads,
                                 'publish_attention': True}, env=env) as node_proc:
        executor, node, context = open_listener('benchmark_soak_listener')
        camera = None
        try:
            counts = _count_messages(node)
            _wait_for_attention(executor, node, node_proc)
            camera = start_camera([['soak', args.rate, args.frames / args.rate]], env)
            samples = _sample_rss(args, executor, camera, node_proc, counts)
            published = camera_counts(camera)
        finally:
            close_listener(executor, node, context, camera)
    require_heard('steering/command of the soaked node', counts['commands'],
                  published['soak'])
    load.append(os.getloadavg()[0])
    return {
        'machine': f'{os.cpu_count()} CPU cores, {platform.processor() or "cpu"}',
        'checkpoint': args.checkpoint or f'{shipped_model()} (shipped)',
        'precision': args.precision, 'threads': args.threads, 'rate_hz': args.rate,
        'frames_published': int(published['soak']),
        'commands_received': counts['commands'], 'attention_received': counts['attention'],
        'duration_s': float(samples[-1][0]), 'load_average_1min': load,
        'rss_mib': _rss_summary(samples, args.warmup_s),
        'samples_t_s_rss_mib_commands_attention': samples,
    }


def _count_messages(node) -> dict:
    """Subscribe to the node's commands and attention images; return the live counts."""
    from geometry_msgs.msg import Vector3Stamped
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image
    counts = {'commands': 0, 'attention': 0}

    def count(key):
        def on_message(_):
            counts[key] += 1
        return on_message
    node.create_subscription(Vector3Stamped, 'steering/command', count('commands'),
                             QoSProfile(depth=100))
    node.create_subscription(Image, 'attention', count('attention'), QoSProfile(depth=10))
    return counts


def _wait_for_attention(executor, node, node_proc, timeout_s: float = 120.0):
    """Wait until the node publishes /attention (it has started); an error if it never does."""
    from signattn_driver.ros.node_process import nothing_heard_hint, NothingHeardError
    deadline = time.monotonic() + timeout_s
    while node.count_publishers('/attention') == 0:
        node_proc.check_alive()
        if time.monotonic() > deadline:
            raise NothingHeardError(f'no drive node publishing /attention after '
                                    f'{timeout_s:.0f} s: {nothing_heard_hint()}')
        executor.spin_once(timeout_sec=0.1)


def _sample_rss(args, executor, camera, node_proc, counts: dict) -> list:
    """Spin until the camera is done, sampling the node every `args.sample_s`.

    Returns:
        [seconds since start, node RSS MiB, commands, attention images] rows.
    """
    samples = []
    start = time.monotonic()
    next_sample = start
    while camera.poll() is None:
        executor.spin_once(timeout_sec=0.01)
        now = time.monotonic()
        if now >= next_sample:
            node_proc.check_alive()
            samples.append([round(now - start, 2), round(_rss_mib(node_proc.pid), 2),
                            counts['commands'], counts['attention']])
            next_sample += args.sample_s
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.01)
    samples.append([round(time.monotonic() - start, 2), round(_rss_mib(node_proc.pid), 2),
                    counts['commands'], counts['attention']])
    return samples


def _rss_summary(samples: list, warmup_s: float) -> dict:
    """RSS at the start, after warm-up, at the end, and its growth and slope after warm-up."""
    t, rss = np.array([s[0] for s in samples]), np.array([s[1] for s in samples])
    after = rss[t >= warmup_s] if (t >= warmup_s).any() else rss
    slope = np.polyfit(t[t >= warmup_s], after, 1)[0] * 60 if len(after) > 2 else 0.0
    return {'first': float(rss[0]), 'at_warmup_end': float(after[0]), 'end': float(rss[-1]),
            'max': float(rss.max()), 'growth_after_warmup': float(rss[-1] - after[0]),
            'slope_after_warmup_mib_per_min': float(slope)}
