"""The viewer's web server without ROS: what it serves, newest-frame delivery, robustness.

The server runs in this process (its own thread), clients are aiohttp and raw sockets on
127.0.0.1; the hub is fed directly, as viewer_node does from the drive node's topics.
"""

import asyncio
import gc
import json
import os
from pathlib import Path
import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

aiohttp = pytest.importorskip('aiohttp', reason='aiohttp is not installed (requirements.txt)')

from signattn_driver.viewer.config import exposure_warning, ViewerConfig, ViewerError  # noqa
from signattn_driver.viewer.frames import make_frame, raw_map_bgr  # noqa: E402
from signattn_driver.viewer.hub import Frame, stamp_text, StreamHub  # noqa: E402
from signattn_driver.viewer.protocol import frame_packet, parse_frame_packet  # noqa: E402
from signattn_driver.viewer.server import ViewerServer  # noqa: E402
from signattn_driver.viewer.status import NodeStatusTracker  # noqa: E402

STAMP0_NS = 1_600_000_000_050_000_000


def picture(seed: int, size_hw=(120, 160)) -> np.ndarray:
    """Make a noisy BGR image; it compresses badly, giving realistic JPEG sizes."""
    return np.random.default_rng(seed).integers(0, 256, (*size_hw, 3), dtype=np.uint8)


@pytest.fixture
def served():
    hub = StreamHub(trace_s=30.0)
    server = ViewerServer(hub, ViewerConfig(port=0)).start()
    yield hub, server
    server.stop()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def receive_until(ws, predicate, timeout_s=5.0):
    """Receive messages until predicate(message) is true; return that message."""
    deadline = time.monotonic() + timeout_s
    while True:
        message = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            raise AssertionError('the viewer closed the connection')
        if predicate(message):
            return message


def is_picture(message) -> bool:
    return message.type == aiohttp.WSMsgType.BINARY


def is_text(*kinds):
    return lambda m: m.type == aiohttp.WSMsgType.TEXT and json.loads(m.data)['type'] in kinds


def http_get(port: int, path: str, host: str | None = None) -> tuple[int, bytes]:
    """Send a plain HTTP/1.1 GET over a raw socket; return (status, body)."""
    request = (f'GET {path} HTTP/1.1\r\nHost: {host or f"127.0.0.1:{port}"}\r\n'
               'Connection: close\r\n\r\n').encode()
    return _status(raw_exchange(port, request))


def raw_exchange(port: int, data: bytes, timeout_s: float = 5.0,
                 half_close: bool = False) -> bytes:
    with socket.create_connection(('127.0.0.1', port), timeout=timeout_s) as sock:
        sock.sendall(data)
        if half_close:   # all sent: the server sees the end at once
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (socket.timeout, ConnectionResetError):
            pass
    return b''.join(chunks)


def _status(response: bytes) -> tuple[int, bytes]:
    head, _, body = response.partition(b'\r\n\r\n')
    return int(head.split(b' ', 2)[1]), body


# -- what it serves ----------------------------------------------------------------------------

def test_page_script_and_style_are_served_with_a_strict_policy(served):
    _, server = served
    status, body = http_get(server.port, '/')
    assert status == 200 and b'<script src="/viewer.js">' in body
    assert b'://' not in body.replace(b'http://www.w3.org', b'')   # nothing from elsewhere
    for path in ('/viewer.js', '/viewer.css'):
        assert http_get(server.port, path)[0] == 200
    response = raw_exchange(server.port, f'GET / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n'
                            'Connection: close\r\n\r\n'.encode()).lower()
    assert b"content-security-policy: default-src 'none'; script-src 'self'" in response
    assert b'x-content-type-options: nosniff' in response


@pytest.mark.parametrize('path', ['/index.html', '/static/viewer.js', '/../server.py',
                                  '/%2e%2e/server.py', '/viewer.js/', '/etc/passwd', '/ws/x',
                                  '/favicon.ico', '//viewer.js'])
def test_only_its_own_files_are_served(served, path):
    _, server = served
    status, body = http_get(server.port, path)
    assert status == 404, (path, status, body[:200])


def test_foreign_host_names_and_cross_origin_sockets_are_refused(served):
    """DNS rebinding (a foreign Host) and other sites' pages (a foreign Origin) get 403."""
    _, server = served
    assert http_get(server.port, '/', host=f'attacker.example:{server.port}')[0] == 403
    assert http_get(server.port, '/', host=f'localhost:{server.port}')[0] == 200

    async def connect(origin):
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f'{server.url}ws', origin=origin):
                return True
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        run(connect('http://attacker.example'))
    assert refused.value.status == 403
    assert run(connect(f'http://127.0.0.1:{server.port}'))


def test_other_addresses_than_loopback_are_warned_about():
    assert exposure_warning(ViewerConfig()) is None
    assert exposure_warning(ViewerConfig(host='localhost')) is None
    assert exposure_warning(ViewerConfig(host='::1')) is None
    text = exposure_warning(ViewerConfig(host='0.0.0.0'))
    assert '0.0.0.0' in text and 'sees the camera' in text


def test_port_in_use_is_one_clear_error(served):
    hub, server = served
    with pytest.raises(ViewerError, match=f'cannot listen on 127.0.0.1:{server.port}.*--port'):
        ViewerServer(hub, ViewerConfig(port=server.port)).start()


def test_settings_are_checked_by_the_config():
    with pytest.raises(ViewerError, match='port'):
        ViewerConfig(port=70000)
    with pytest.raises(ViewerError, match='jpeg_quality'):
        ViewerConfig(jpeg_quality=0)


# -- streams -----------------------------------------------------------------------------------

def test_a_slow_browser_gets_the_newest_frame_never_a_backlog(served):
    """One picture in flight: frames replaced meanwhile are skipped, the newest one follows."""
    hub, server = served

    async def watch():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f'{server.url}ws') as ws:
                hub.put_frame(make_frame('attention', STAMP0_NS, picture(0), 80))
                header, jpeg = parse_frame_packet((await receive_until(ws, is_picture)).data)
                assert header['stamp'] == stamp_text(STAMP0_NS) and jpeg[:2] == b'\xff\xd8'
                assert not server.ready('attention')     # nothing is encoded for it now
                for i in range(1, 30):       # the browser has not acknowledged yet
                    hub.put_frame(make_frame('attention', STAMP0_NS + i * 50_000_000,
                                             picture(i), 80))
                with pytest.raises(asyncio.TimeoutError):
                    await receive_until(ws, is_picture, timeout_s=0.5)
                await ws.send_str(json.dumps({'ack': 'attention'}))
                header, _ = parse_frame_packet((await receive_until(ws, is_picture)).data)
                assert header['stamp'] == stamp_text(STAMP0_NS + 29 * 50_000_000)
                assert not server.ready('attention') and server.ready('contribution')
                assert header['version'] == 30
                await ws.send_str(json.dumps({'ack': 'attention'}))
                with pytest.raises(asyncio.TimeoutError):   # nothing new: nothing sent
                    await receive_until(ws, is_picture, timeout_s=0.3)
    run(watch())


def test_commands_arrive_complete_in_order_and_status_as_sent(served):
    hub, server = served
    values = [0.001 * i - 0.02 for i in range(40)]

    async def watch():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f'{server.url}ws') as ws:
                hello = json.loads((await receive_until(ws, is_text('hello'))).data)
                assert hello['trace_s'] == 30.0
                for i, u in enumerate(values):
                    hub.put_command(STAMP0_NS + i * 50_000_000, u, u * 100)
                tracker = NodeStatusTracker()
                tracker.update(0, 'ok', {'frames_processed': '100'}, 10.0)
                hub.put_state('status', tracker.update(
                    1, 'no frame for 2.5 s', {'frames_processed': '120',
                                              'latency_p50_ms': '4.500'}, 11.0))
                # the status may come between two batches of commands: keep whichever arrives
                got, status = [], None
                commands_or_status = is_text('commands', 'status')
                while len(got) < len(values) or status is None:
                    message = json.loads((await receive_until(ws, commands_or_status)).data)
                    if message['type'] == 'commands':
                        got += message['items']
                    else:
                        status = message
                return got, status
    got, status = run(watch())
    assert [item[1] for item in got] == values            # exact floats, none lost
    assert got[3][0] == stamp_text(STAMP0_NS + 3 * 50_000_000)
    assert status['level'] == 'WARN' and status['message'] == 'no frame for 2.5 s'
    assert status['rate_hz'] == pytest.approx(20.0) and status['latency_p50_ms'] == 4.5


def test_a_new_browser_first_gets_the_kept_trace_and_the_current_picture(served):
    hub, server = served
    for i in range(5):
        hub.put_command(STAMP0_NS + i, 0.01 * i, 1.0)
    hub.put_frame(make_frame('contribution', STAMP0_NS + 4, picture(4), 80))

    async def watch():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f'{server.url}ws') as ws:
                header, _ = parse_frame_packet((await receive_until(ws, is_picture)).data)
                items = json.loads((await receive_until(ws, is_text('commands'))).data)['items']
                return header, items
    header, items = run(watch())
    assert header['stream'] == 'contribution' and len(items) == 5


def test_status_rate_is_unknown_after_a_node_restart():
    tracker = NodeStatusTracker()
    tracker.update(0, 'ok', {'frames_processed': '500'}, 1.0)
    restarted = tracker.update(0, 'ok', {'frames_processed': '3'}, 2.0)
    assert restarted['rate_hz'] is None and restarted['frames_processed'] == 3
    assert tracker.update(0, 'ok', {'frames_processed': '23'}, 3.0)['rate_hz'] == 20.0


def test_a_raw_map_travels_with_the_camera_jpeg_for_the_page_to_draw():
    attention = np.full((10, 20), 1 / 200, np.float32)
    attention[0, 0] = np.nan                       # never becomes invalid JSON
    camera_jpeg = make_frame('attention', STAMP0_NS, picture(1), 80).jpeg
    frame = Frame('attention', STAMP0_NS, camera_jpeg, 160, 120, attention_map=attention)
    header, jpeg = parse_frame_packet(frame_packet(frame, 3))
    assert jpeg == camera_jpeg and (header['width'], header['height']) == (160, 120)
    assert (header['map']['height'], header['map']['width']) == (10, 20)
    assert header['map']['values'][0] == 0.0 and header['map']['values'][1] == 0.005


def test_raw_attention_maps_become_a_picture():
    alpha = np.zeros((10, 20), np.float32)
    alpha[2, 15] = 1.0
    image = raw_map_bgr(alpha)
    assert image.shape == (320, 640, 3) and image.dtype == np.uint8
    b, _, r = image[80, 496].astype(int)          # the centre of cell (2, 15): red (jet top)
    assert r > 100 and b < 50
    b, _, r = image[300, 20].astype(int)           # far from it: blue (jet bottom)
    assert b > 100 and r < 50


# -- robustness --------------------------------------------------------------------------------

MALFORMED = [
    b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' + bytes(64),        # a TLS hello
    b'GARBAGE\r\n\r\n',
    b'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n' + b'X-Long: ' + b'a' * 100_000 + b'\r\n\r\n',
    b'GET /' + b'a' * 100_000 + b' HTTP/1.1\r\n\r\n',
    b'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999\r\n\r\nxx',
    b'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
    b'Sec-WebSocket-Key: not-a-key\r\nSec-WebSocket-Version: 13\r\n\r\n',
    b'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n',
    b'GET / HTTP/1.1\r\nHo',                                             # cut short
]


def test_malformed_requests_and_dropped_sockets_leave_it_serving(served):
    hub, server = served
    for data in MALFORMED:
        raw_exchange(server.port, data, timeout_s=2.0, half_close=True)
    for _ in range(5):   # connect and vanish without a word, mid-request and mid-stream
        sock = socket.create_connection(('127.0.0.1', server.port))
        sock.sendall(b'GET / HTTP/1.1\r\n')
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        sock.close()   # RST

    async def abuse():
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f'{server.url}ws')
            for text in ('{', '[]', '{"ack": "nothing"}', '{"ack": 5}', 'x' * 900, '\u0000'):
                await ws.send_str(text)
            await ws.send_bytes(b'\x00\x01')
            await ws.send_str('y' * 5000)                  # over the 1 KiB limit: closed
            while (await ws.receive(timeout=5)).type not in (aiohttp.WSMsgType.CLOSE,
                                                             aiohttp.WSMsgType.CLOSED):
                pass
            assert ws.close_code == 1009                   # message too big
        async with aiohttp.ClientSession() as session:   # dropped while pictures stream
            ws = await session.ws_connect(f'{server.url}ws')
            for i in range(20):
                hub.put_frame(make_frame('attention', STAMP0_NS + i, picture(i, (480, 640)),
                                         90))
                await ws.send_str(json.dumps({'ack': 'attention'}))
            ws._response.connection.transport.abort()
    run(abuse())
    status, body = http_get(server.port, '/')
    assert status == 200 and b'viewer.js' in body
    assert _wait(lambda: server.client_count == 0)


def _wait(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _rss_bytes() -> int:
    for line in Path(f'/proc/{os.getpid()}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) * 1024
    raise AssertionError('no VmRSS')


@pytest.mark.skipif(not Path('/proc/self/status').exists(), reason='needs /proc (Linux)')
def test_fifty_connections_opened_and_closed_free_memory_and_threads(served):
    """Each browser gets pictures and commands; after they close, RSS and threads come back."""
    hub, server = served
    hub.put_frame(make_frame('attention', STAMP0_NS, picture(0, (480, 640)), 90))  # ~250 kB

    async def browse(count: int):
        async with aiohttp.ClientSession() as session:
            for i in range(count):
                ws = await session.ws_connect(f'{server.url}ws')
                await receive_until(ws, is_picture)
                hub.put_command(STAMP0_NS + i, 0.01, 1.0)
                await receive_until(ws, is_text('commands'))
                if i % 2:
                    await ws.close()
                else:   # the browser vanishes: no close handshake
                    ws._response.connection.transport.abort()

    run(browse(5))   # warm up: first-use allocations are not a leak
    assert _wait(lambda: server.client_count == 0)
    gc.collect()
    rss_before, threads_before = _rss_bytes(), threading.active_count()
    run(browse(50))
    assert _wait(lambda: server.client_count == 0)
    gc.collect()
    grown_mb = (_rss_bytes() - rss_before) / 2**20
    assert threading.active_count() == threads_before
    assert grown_mb < 8, f'RSS grew {grown_mb:.1f} MB over 50 connections'
    assert not server._wakes and not server._sockets


def test_view_command_reports_a_busy_port_in_one_line(served, ros_domain_id):
    """`signattn view` on a port in use: exit status 2 and one line saying what to do."""
    _, server = served
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, '-m', 'signattn_driver', 'view', '--port',
                             str(server.port)], cwd=root, capture_output=True, text=True,
                            timeout=120, env=dict(os.environ, PYTHONPATH=str(root)))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('signattn view: error: cannot listen on '
                                                   f'127.0.0.1:{server.port}')
    assert '--port' in lines[0]
