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
import subprocess
import time

import numpy as np


def add_arguments(parser):
    """Options of `signattn benchmark soak`."""
    parser.add_argument('--checkpoint', help='checkpoint (default: the shipped '
                        'config/models/sim_mean_field.pt)')
    parser.add_argument('--frames', type=int, default=6000, help='frames to publish')
    parser.add_argument('--rate', type=float, default=50.0, help='camera rate (Hz)')
    parser.add_argument('--precision', default='fp32')
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
    from geometry_msgs.msg import Vector3Stamped
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image
    from benchmarks.node_processes import (camera_counts, child_env, close_listener,
                                           open_listener, require_heard, start_camera)
    from signattn_driver.paths import config_path
    from signattn_driver.ros.node_process import (node_command, nothing_heard_hint,
                                                  NothingHeardError)

    env = child_env()
    path = args.checkpoint or str(config_path('models', 'sim_mean_field.pt'))
    duration_s = args.frames / args.rate
    node_proc = subprocess.Popen(
        node_command({'checkpoint': path, 'device': 'cpu', 'precision': args.precision,
                      'num_threads': args.threads, 'publish_attention': True}),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    executor, node, context = open_listener('benchmark_soak_listener')
    counts = {'commands': 0, 'attention': 0}

    def count(key):
        def on_message(_):
            counts[key] += 1
        return on_message
    node.create_subscription(Vector3Stamped, 'steering/command', count('commands'),
                             QoSProfile(depth=100))
    node.create_subscription(Image, 'attention', count('attention'), QoSProfile(depth=10))
    deadline = time.monotonic() + 120
    while node.count_publishers('/attention') == 0 and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
    if node.count_publishers('/attention') == 0:
        close_listener(executor, node, context, None)
        node_proc.kill()
        node_proc.wait()
        raise NothingHeardError(f'no drive node publishing /attention after 120 s: '
                                f'{nothing_heard_hint()}')
    camera = start_camera([['soak', args.rate, duration_s]], env)
    samples = []   # [seconds since start, node RSS MiB, commands, attention images]
    start = time.monotonic()
    next_sample = start
    load = [os.getloadavg()[0]]
    try:
        while camera.poll() is None:
            executor.spin_once(timeout_sec=0.01)
            now = time.monotonic()
            if now >= next_sample:
                if node_proc.poll() is not None:
                    raise RuntimeError('drive node exited: ' + node_proc.stderr.read()[-500:])
                samples.append([round(now - start, 2), round(_rss_mib(node_proc.pid), 2),
                                counts['commands'], counts['attention']])
                next_sample += args.sample_s
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.01)
        samples.append([round(time.monotonic() - start, 2), round(_rss_mib(node_proc.pid), 2),
                        counts['commands'], counts['attention']])
        published = camera_counts(camera)
    finally:
        close_listener(executor, node, context, camera)
        if node_proc.poll() is None:
            node_proc.terminate()
            node_proc.wait(timeout=20)
    require_heard('steering/command of the soaked node', counts['commands'],
                  published['soak'])
    load.append(os.getloadavg()[0])
    t, rss = np.array([s[0] for s in samples]), np.array([s[1] for s in samples])
    after = rss[t >= args.warmup_s] if (t >= args.warmup_s).any() else rss
    slope = np.polyfit(t[t >= args.warmup_s], after, 1)[0] * 60 if len(after) > 2 else 0.0
    return {
        'machine': f'{os.cpu_count()} CPU cores, {platform.processor() or "cpu"}',
        'checkpoint': args.checkpoint or 'config/models/sim_mean_field.pt (shipped)',
        'precision': args.precision, 'threads': args.threads, 'rate_hz': args.rate,
        'frames_published': int(published['soak']),
        'commands_received': counts['commands'], 'attention_received': counts['attention'],
        'duration_s': float(t[-1]), 'load_average_1min': load,
        'rss_mib': {'first': float(rss[0]), 'at_warmup_end': float(after[0]),
                    'end': float(rss[-1]), 'max': float(rss.max()),
                    'growth_after_warmup': float(rss[-1] - after[0]),
                    'slope_after_warmup_mib_per_min': float(slope)},
        'samples_t_s_rss_mib_commands_attention': samples,
    }
