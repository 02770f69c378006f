"""The viewer in a real browser: drive node, viewer and headless Chromium, all on this machine.

The test publishes the shipped sample drive's camera frames (with fresh stamps) to a real
drive_node (tiny checkpoint), runs `signattn view` as a user would, opens the page in Debian's
Chromium driven by Playwright, and checks what a person watching would: pictures keep coming,
the steering value shown for a frame is the command the node published for that frame's
stamp, and after the node is restarted (with attention_raw:=true, whose maps the page draws
over the camera's JPEG) the page says the node was gone, then shows the new node's frames.
Needs /usr/bin/chromium (apt `chromium`; .ci/run installs it) and the `playwright` package;
nothing is downloaded at run time. Without them the test skips, saying which is missing.
"""

import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

rclpy = pytest.importorskip('rclpy', reason='rclpy not installed')
CHROMIUM = os.environ.get('SIGNATTN_CHROMIUM', '/usr/bin/chromium')
if not shutil.which(CHROMIUM):
    pytest.skip(f'no Chromium at {CHROMIUM}: `apt-get install chromium` (as .ci/run does) or '
                'set SIGNATTN_CHROMIUM', allow_module_level=True)
sync_api = pytest.importorskip('playwright.sync_api', reason='the playwright package is not '
                               'installed (requirements.txt)')

from geometry_msgs.msg import Vector3Stamped  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from rosbags.rosbag2 import Reader  # noqa: E402
from sensor_msgs.msg import CompressedImage  # noqa: E402

from fixtures import waiting  # noqa: E402
from signattn_driver.data.bag_layout import camera_topic, TYPESTORE  # noqa: E402
from signattn_driver.data.labels import stamp_ns_of  # noqa: E402
from signattn_driver.paths import config_path  # noqa: E402
from signattn_driver.ros.node_process import NodeProcess  # noqa: E402
from signattn_driver.viewer.hub import stamp_text  # noqa: E402

pytestmark = pytest.mark.ros
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--no-first-run', '--disable-sync']
RATE_HZ = 10.0     # camera rate: enough to see updates, light on a loaded 2-core machine
WAIT_S = 90.0      # generous for a loaded CI machine; nothing asserts on speed
STALE_S = 2.0      # the page's "missing" delay (--ros-args -p stale_s)


def sample_frames(count: int = 60) -> list:
    """Return the first `count` JPEG frames of the shipped sample drive."""
    frames = []
    with Reader(config_path('sample_drive')) as reader:
        connections = [c for c in reader.connections if c.topic == camera_topic('center')]
        for connection, _, raw in reader.messages(connections=connections):
            frames.append(bytes(TYPESTORE.deserialize_cdr(raw, connection.msgtype).data))
            if len(frames) == count:
                break
    return frames


class Camera:
    """Publishes the sample frames at RATE_HZ with fresh stamps; records the node's commands."""

    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('browser_test_camera', context=self.context)
        self.publisher = self.node.create_publisher(CompressedImage, 'image/compressed',
                                                    qos_profile_sensor_data)
        self.commands = {}    # stamp text -> u
        self.node.create_subscription(Vector3Stamped, 'steering/command', self._on_command, 50)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.frames = sample_frames()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self.executor.spin, daemon=True),
                         threading.Thread(target=self._publish, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _on_command(self, msg):
        self.commands[stamp_text(stamp_ns_of(msg.header))] = msg.vector.x

    def _publish(self):
        msg = CompressedImage(format='jpeg')
        index = 0
        while not self._stop.wait(1.0 / RATE_HZ):
            msg.data = self.frames[index % len(self.frames)]
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(), 10**9)
            self.publisher.publish(msg)
            index += 1

    def close(self):
        self._stop.set()
        self.executor.shutdown(timeout_sec=2.0)
        for thread in self._threads:
            thread.join(timeout=5.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def start_node(checkpoint, attention_raw: bool = False) -> NodeProcess:
    return NodeProcess({'checkpoint': str(checkpoint), 'device': 'cpu', 'num_threads': 1,
                        'attention_raw': attention_raw})


def start_viewer() -> tuple[subprocess.Popen, str]:
    """`signattn view --port 0` (any free port); return the process and the page's URL."""
    process = subprocess.Popen(
        [sys.executable, '-m', 'signattn_driver', 'view', '--port', '0', '--ros-args', '-p',
         f'stale_s:={STALE_S}'], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    lines = []
    for line in process.stdout:
        lines.append(line)
        match = re.search(r'viewer: open (http://\S+)', line)
        if match:
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
            return process, match.group(1)
    raise AssertionError(f'the viewer did not start: {"".join(lines)[-2000:]}')


def wait_for(condition, what: str, timeout_s: float = WAIT_S):
    return waiting.wait_for(condition, what, timeout_s, poll_s=0.2)


def shown(page) -> dict:
    """Read what the page shows now: frame stamp and count, the frame's u, status."""
    return page.evaluate("""() => {
        const u = document.getElementById('frame-u');
        const text = (id) => document.getElementById(id).textContent;
        return {stamp: text('frame-stamp'), count: Number(text('frame-count')),
                u_stamp: u.dataset.stamp || '', u: u.dataset.u || '',
                level: text('status-level'), rate: text('status-rate'),
                overlay: document.getElementById('attention').dataset.overlay || '',
                age: text('frame-age'), connection: text('connection')};
    }""")


def matched_frames(page, camera, needed: int, after_count: int = 0) -> list:
    """Wait for `needed` distinct frames whose shown u can be checked; return (stamp, u)."""
    seen = {}

    def enough():
        now = shown(page)
        if now['count'] > after_count and now['u'] and now['u_stamp'] == now['stamp']:
            seen[now['stamp']] = float(now['u'])
        return len(seen) >= needed
    wait_for(enough, f'{needed} new frames with their command on the page')
    return list(seen.items())


def check_matches(camera, pairs):
    for stamp, u in pairs:
        published = wait_for(lambda: camera.commands.get(stamp), f'the command of {stamp}',
                             timeout_s=10.0)
        assert u == published, f'frame {stamp}: page shows u = {u}, node published {published}'


def test_page_shows_live_frames_matching_commands_and_survives_a_node_restart(
        tiny_checkpoint, ros_domain_id, monkeypatch):
    monkeypatch.setenv('FASTDDS_BUILTIN_TRANSPORTS', 'LARGE_DATA')
    node = start_node(tiny_checkpoint)
    viewer, url = start_viewer()
    camera = Camera()
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.goto(url)
                pairs = matched_frames(page, camera, needed=5)     # frames update...
                check_matches(camera, pairs)   # ...showing the node's own u for each stamp
                wait_for(lambda: shown(page)['level'] == 'OK' and 'Hz' in shown(page)['rate'],
                         'the node status (OK, a rate)')
                assert shown(page)['overlay'] == 'node'     # the node's bgr8 overlay

                node.close()
                gone = wait_for(lambda: (lambda s: s if s['level'] == 'MISSING' and s['age']
                                         else None)(shown(page)), 'the page to notice the stop')
                assert 'no new frame' in gone['age']
                # back as the cheap variant: raw maps, drawn by the page over the camera JPEG
                node = start_node(tiny_checkpoint, attention_raw=True)
                pairs = matched_frames(page, camera, needed=3, after_count=gone['count'])
                check_matches(camera, pairs)
                assert all(stamp > gone['stamp'] for stamp, _ in pairs)
                wait_for(lambda: shown(page)['overlay'] == 'page', 'the page-drawn heat map')
                wait_for(lambda: shown(page)['level'] in ('OK', 'WARN'), 'the new node status')
                assert shown(page)['connection'] == 'connected'
            finally:
                browser.close()
    finally:
        camera.close()
        node.close()
        viewer.terminate()
        viewer.wait(timeout=20)
