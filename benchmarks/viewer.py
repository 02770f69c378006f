"""Drive node latency with and without a browser watching the viewer, in the same run.

Processes: a camera (640x480 JPEG at --rate Hz, sensor-data QoS; benchmarks.node_processes),
the drive node (shipped checkpoint, CPU, 1 torch thread), `signattn view`, headless Chromium
(Debian's, driven by Playwright) and this process, which listens to `steering/command`. Each
frame's header carries its publish time and, in frame_id, its phase and sequence number, so a
command's latency is its arrival minus that stamp (camera -> node -> listener over loopback
DDS). The camera runs phases of --duration s; in the "on" phases a page is open on the
viewer (which then subscribes to `attention`), in the "off" phases no page is open (the viewer
runs, idle). Phases alternate off, on, on, off, off, on, ... (--repeats pairs) so that drifting
load on a shared machine falls on both sides; the first --settle s of each phase are left out.
Two node variants (--modes), one after the other with the same viewer and browser: `overlay`,
the default node, draws the attention overlay over the camera picture for each frame while
watched (and the viewer JPEG-encodes it); `raw` (attention_raw:=true) publishes the 10x20 map
only, and the page draws it over the camera's own JPEG. Reported: p50 and p99 per phase, the
added latency per pair, and the median over pairs, per mode; and the CPU time the node and the
viewer spent per camera frame in each phase (/proc), which the neighbours' load on a shared
machine disturbs far less than latency.
"""

import os
from pathlib import Path
import platform
import re
import subprocess
import sys
import threading
import time

import numpy as np

from benchmarks.node_processes import child_env, cpu_seconds, open_listener, start_camera
from signattn_driver.paths import config_path
from signattn_driver.ros.node_process import NodeProcess

CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--no-first-run', '--disable-sync']


def add_arguments(parser):
    """Options of `signattn benchmark viewer`."""
    parser.add_argument('--checkpoint', help='default: the shipped config/models/'
                        'sim_mean_field.pt')
    parser.add_argument('--rate', type=float, default=20.0, help='camera rate, Hz')
    parser.add_argument('--duration', type=float, default=20.0, help='seconds per phase')
    parser.add_argument('--settle', type=float, default=3.0,
                        help='seconds left out at the start of each phase')
    parser.add_argument('--repeats', type=int, default=3, help='off/on pairs')
    parser.add_argument('--chromium', default='/usr/bin/chromium', help='browser binary')
    parser.add_argument('--modes', default='overlay,raw',
                        help='node variants: overlay (attention as a bgr8 overlay, the default) '
                        'and/or raw (attention_raw:=true: the page draws the heat map)')


def _phases(repeats: int) -> list:
    """off, on, on, off, off, on, ...: each pair's order alternates (ABBA)."""
    names = []
    for i in range(repeats):
        pair = [f'off{i}', f'on{i}']
        names += pair if i % 2 == 0 else pair[::-1]
    return names


class _Listener:
    """Latency of every command, by camera phase (from the echoed frame_id)."""

    def __init__(self):
        from geometry_msgs.msg import Vector3Stamped
        self.executor, self.node, self.context = open_listener('viewer_benchmark_listener')
        self.latency_ms = {}     # phase -> [(seq, ms)]
        self.phase = None
        self.node.create_subscription(Vector3Stamped, 'steering/command', self._on_command, 100)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def _on_command(self, msg):
        arrived = time.time_ns()
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        phase, _, seq = msg.header.frame_id.partition('/')
        self.latency_ms.setdefault(phase, []).append((int(seq), (arrived - stamp) * 1e-6))
        self.phase = phase


def _start_viewer(env: dict) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, '-m', 'signattn_driver', 'view', '--port', '0'],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    for line in process.stdout:
        match = re.search(r'viewer: open (http://\S+)', line)
        if match:
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
            return process, match.group(1)
    raise RuntimeError('the viewer did not start')


def _frames_shown(page) -> int:
    return int(page.text_content('#frame-count') or 0)


def _stats(samples: list, settle_frames: int) -> dict:
    values = np.array([ms for seq, ms in samples if seq >= settle_frames])
    if values.size == 0:
        return {'frames': 0, 'latency_p50_ms': None, 'latency_p99_ms': None}
    return {'frames': int(values.size),
            'latency_p50_ms': float(np.percentile(values, 50)),
            'latency_p99_ms': float(np.percentile(values, 99))}


def _measure(mode: str, args, checkpoint: str, env: dict, browser, url: str,
             listener: _Listener, viewer_pid: int) -> dict:
    """Run one node (`mode`: overlay or raw attention) through the off/on phases."""
    names = [f'{mode}_{name}' for name in _phases(args.repeats)]
    schedule = [[f'{mode}_warmup', 5.0, 3.0]] + [[name, args.rate, args.duration]
                                                 for name in names]
    node = NodeProcess({'checkpoint': checkpoint, 'device': 'cpu', 'num_threads': 1,
                        'attention_raw': mode == 'raw'}, env=env)
    camera = start_camera(schedule, env)
    shown, page, page_phase, phase = {}, None, None, None
    cpu = {}   # phase -> (node, viewer) CPU seconds when its first command arrived
    try:
        while camera.poll() is None:
            node.check_alive()
            if listener.phase != phase:
                phase = listener.phase
                cpu[phase] = (cpu_seconds(node.pid), cpu_seconds(viewer_pid))
                if page is not None:       # leaving an "on" phase
                    shown[page_phase] = _frames_shown(page)
                    page.close()
                    page = None
                if phase in names and '_on' in phase:
                    page, page_phase = browser.new_page(), phase
                    page.goto(url)
            time.sleep(0.05)
        if page is not None:
            shown[page_phase] = _frames_shown(page)
            page.close()
        cpu['end'] = (cpu_seconds(node.pid), cpu_seconds(viewer_pid))
        published = camera.stdout.read().strip()
    finally:
        if camera.poll() is None:
            camera.terminate()
            camera.wait(timeout=20)
        node.close()
    settle_frames = int(args.settle * args.rate)
    phases = {name: _stats(listener.latency_ms.get(name, []), settle_frames) for name in names}
    order = [p for p in cpu if p in names] + ['end']
    frames = args.rate * args.duration
    for name, following in zip(order, order[1:]):
        for i, who in enumerate(('node', 'viewer')):
            phases[name][f'{who}_cpu_ms_per_frame'] = 1e3 * (cpu[following][i] -
                                                             cpu[name][i]) / frames
    for name in names:
        if '_on' in name:
            phases[name]['browser_frames_shown'] = shown.get(name, 0)
    pairs = []
    for i in range(args.repeats):
        off, on = phases[f'{mode}_off{i}'], phases[f'{mode}_on{i}']
        pair = {'pair': i}
        for stat in ('latency_p50_ms', 'latency_p99_ms', 'node_cpu_ms_per_frame',
                     'viewer_cpu_ms_per_frame'):
            pair[f'off_{stat}'], pair[f'on_{stat}'] = off.get(stat), on.get(stat)
        for stat in ('latency_p50_ms', 'latency_p99_ms', 'node_cpu_ms_per_frame'):
            if off.get(stat) and on.get(stat):
                pair[f'added_{stat.removesuffix("_ms")}_pct'] = 100.0 * (on[stat] / off[stat] - 1)
        pairs.append(pair)
    median = {key: float(np.median([p[key] for p in pairs if p.get(key) is not None]))
              for key in pairs[0] if key != 'pair'}
    return {'order': names, 'camera_published': published, 'phases': phases, 'pairs': pairs,
            'median_over_pairs': median}


def run(args) -> dict:
    """Measure each mode's node in turn, the browser toggled by phase; medians over pairs."""
    from playwright.sync_api import sync_playwright
    env = child_env()
    checkpoint = args.checkpoint or str(config_path('models', 'sim_mean_field.pt'))
    load_before = os.getloadavg()
    viewer, url = _start_viewer(env)
    listener = _Listener()
    modes = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium,
                                                 args=CHROMIUM_ARGS)
            try:
                for mode in args.modes.split(','):
                    modes[mode] = _measure(mode, args, checkpoint, env, browser, url, listener,
                                           viewer.pid)
            finally:
                browser.close()
    finally:
        listener.executor.shutdown(timeout_sec=1.0)
        listener.node.destroy_node()
        rclpy_shutdown(listener.context)
        viewer.terminate()
        viewer.wait(timeout=20)
    return {
        'machine': f'{os.cpu_count()}-core CPU, {platform.processor() or platform.machine()}',
        'load_average_1min_before_after': [round(load_before[0], 2),
                                           round(os.getloadavg()[0], 2)],
        'checkpoint': Path(checkpoint).name, 'camera': f'640x480 JPEG at {args.rate:g} Hz',
        'node': 'drive_node, CPU, fp32, 1 torch thread; overlay: attention as a bgr8 overlay '
                '(default), raw: attention_raw:=true (the page draws the heat map)',
        'browser': 'Debian chromium, headless, one page on the viewer',
        'phase_s': args.duration, 'settle_s': args.settle, 'modes': modes,
        'summary': {f'{mode}_{key}': value for mode, result in modes.items()
                    for key, value in result['median_over_pairs'].items()},
    }


def rclpy_shutdown(context):
    """Shut the listener's rclpy context down."""
    import rclpy
    rclpy.try_shutdown(context=context)
