"""The viewer's web server: one page, its script and style, and one WebSocket (/ws).

asyncio + aiohttp in a thread of its own, so the ROS side only writes to the `StreamHub`.
Safe by default: binds 127.0.0.1; serves nothing but its three files and /ws (404 for any
other path); when bound to loopback it answers only requests whose Host names this machine (a
web site the browser also has open cannot reach the camera through DNS rebinding); the
WebSocket accepts only same-origin pages. Malformed requests get aiohttp's 400, a dropped
socket ends only its own handler, and every connection's state is freed when it closes.
"""

import asyncio
import contextlib
import logging
from pathlib import Path
import threading
from urllib.parse import urlsplit

from aiohttp import web, WSMsgType
from aiohttp.http_exceptions import HttpProcessingError

from signattn_driver.viewer.config import exposure_warning, ViewerConfig, ViewerError
from signattn_driver.viewer.hub import IMAGE_STREAMS, STATE_NAMES, StreamHub
from signattn_driver.viewer.protocol import (commands_message, frame_packet, hello_message,
                                             MAX_CLIENT_MESSAGE_BYTES, parse_ack, state_message)

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / 'static'
# URL path -> (file under static/, content type). Nothing else is served.
PAGES = {
    '/': ('index.html', 'text/html; charset=utf-8'),
    '/viewer.js': ('viewer.js', 'text/javascript; charset=utf-8'),
    '/viewer.css': ('viewer.css', 'text/css; charset=utf-8'),
}
HEARTBEAT_S = 10.0   # a browser that vanished without closing is dropped after about this
LOOPBACK_NAMES = ('127.0.0.1', 'localhost', '[::1]')


def _quiet_bad_requests(record: logging.LogRecord) -> bool:
    """Drop aiohttp's traceback for a malformed request (a logging filter).

    aiohttp answers it with 400 and logs the parser's exception at ERROR; a port scan would
    fill the terminal. It becomes one debug line instead.
    """
    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, HttpProcessingError):
        log.debug('malformed request refused: %s', str(error).splitlines()[0])
        return False
    return True


class ViewerServer:
    """Serve the page and the live streams of `hub` until `stop()`.

    Example:
        server = ViewerServer(hub, ViewerConfig(port=0)).start()
        print(server.url)      # http://127.0.0.1:<port>/
        server.stop()
    """

    def __init__(self, hub: StreamHub, config: ViewerConfig):
        self.hub, self.config = hub, config
        self.port = None                 # the bound port, set by start()
        self._files = {}
        self._loop = None
        self._thread = None
        self._runner = None
        self._sockets = set()            # open WebSocketResponses
        self._wakes = set()              # one asyncio.Event per connection
        self._credits = []               # one {stream: pictures allowed in flight} per connection
        self._wake_pending = False
        self._started = threading.Event()
        self._start_error = None

    # -- life cycle -----------------------------------------------------------------------------

    @property
    def client_count(self) -> int:
        """Browser connections open now (any thread may read it)."""
        return len(self._sockets)

    def ready(self, stream: str) -> bool:
        """Whether a browser waits for a new picture of `stream` (any thread may ask).

        The ROS side converts and encodes a picture only then: a browser slower than the
        camera costs encoding at its own rate, not the camera's.
        """
        return any(credits[stream] for credits in list(self._credits))

    @property
    def url(self) -> str:
        """The page's address (valid after start)."""
        host = f'[{self.config.host}]' if ':' in self.config.host else self.config.host
        return f'http://{host}:{self.port}/'

    def start(self, timeout_s: float = 10.0) -> 'ViewerServer':
        """Bind and serve in a background thread; raise ViewerError when it cannot bind."""
        for path, (name, _) in PAGES.items():
            self._files[path] = (STATIC_DIR / name).read_bytes()
        server_log = logging.getLogger('aiohttp.server')
        if _quiet_bad_requests not in server_log.filters:
            server_log.addFilter(_quiet_bad_requests)
        warning = exposure_warning(self.config)
        if warning:
            log.warning(warning)
        self._thread = threading.Thread(target=self._run, name='viewer_http', daemon=True)
        self._thread.start()
        if not self._started.wait(timeout_s):
            raise ViewerError(f'the viewer did not start within {timeout_s} s')
        if self._start_error is not None:
            self._thread.join()
            raise self._start_error
        self.hub.add_listener(self._on_change)
        return self

    def stop(self, timeout_s: float = 5.0):
        """Close every connection, unbind and end the thread."""
        self.hub.remove_listener(self._on_change)
        if self._loop is None or self._thread is None:
            return
        with contextlib.suppress(RuntimeError):   # the loop already closed
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout_s)
        self._thread = None

    def __enter__(self):
        """Start serving."""
        return self.start()

    def __exit__(self, *exc):
        """Stop serving."""
        self.stop()

    def _run(self):
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._bind())
        except OSError as err:
            self._start_error = ViewerError(
                f'cannot listen on {self.config.host}:{self.config.port}: {err.strerror or err} '
                f'(another viewer running? choose another --port)')
        except Exception as err:   # bad host name and the like: reported to start()
            self._start_error = ViewerError(f'cannot start the viewer: {err}')
        self._started.set()
        if self._start_error is None:
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
        pending = asyncio.all_tasks(loop)   # handlers of connections cut by the shutdown
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()

    async def _bind(self):
        app = web.Application(middlewares=[self._guard], client_max_size=4096)
        for path in PAGES:
            app.router.add_get(path, self._page)
        app.router.add_get('/ws', self._websocket)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            raise
        self.port = self._runner.addresses[0][1]
        log.info('viewer on %s', self.url)

    async def _shutdown(self):
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b'viewer stopped')
        await self._runner.cleanup()

    # -- requests -------------------------------------------------------------------------------

    def _allowed_host(self, host: str) -> bool:
        if not self.config.loopback:
            return True
        host = host.lower()
        names = (*LOOPBACK_NAMES, self.config.host.lower())
        return any(host in (name, f'{name}:{self.port}') for name in names)

    @web.middleware
    async def _guard(self, request, handler):
        """Answer only requests addressed to this machine by name (DNS rebinding)."""
        if not self._allowed_host(request.host):
            return web.Response(status=403, text='this viewer answers only to '
                                f'{self.url} (Host {request.host!r})\n')
        return await handler(request)

    async def _page(self, request):
        body = self._files[request.path]
        return web.Response(body=body, content_type=None, headers={
            'Content-Type': PAGES[request.path][1],
            'Cache-Control': 'no-store',
            'X-Content-Type-Options': 'nosniff',
            'Referrer-Policy': 'no-referrer',
            'Content-Security-Policy': (
                "default-src 'none'; script-src 'self'; style-src 'self'; "
                f"img-src 'self' blob: data:; connect-src 'self' ws://{request.host}; "
                "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
        })

    async def _websocket(self, request):
        origin = request.headers.get('Origin')
        if origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
            return web.Response(status=403, text='cross-origin WebSocket refused\n')
        if len(self._sockets) >= self.config.max_clients:
            return web.Response(status=503, text=f'{self.config.max_clients} viewers are '
                                'connected already\n')
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_CLIENT_MESSAGE_BYTES,
                                   compress=False)
        await ws.prepare(request)
        wake = asyncio.Event()
        credits = {stream: 1 for stream in IMAGE_STREAMS}   # pictures allowed in flight
        self._sockets.add(ws)
        self._wakes.add(wake)
        self._credits.append(credits)
        sender = asyncio.create_task(self._send(ws, wake, credits))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    stream = parse_ack(msg.data)
                    if stream is not None:
                        credits[stream] = 1
                        wake.set()
                # binary or unknown messages from a browser are ignored
        finally:
            self._wakes.discard(wake)
            self._sockets.discard(ws)
            self._credits.remove(credits)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    async def _send(self, ws, wake: asyncio.Event, credits: dict):
        """Send what changed, newest first-hand: one picture in flight per stream."""
        sent = {name: 0 for name in (*IMAGE_STREAMS, *STATE_NAMES)}
        cursor = 0
        config = self.config
        try:
            await ws.send_str(hello_message(config.trace_s, config.stale_s, config.vehicle))
            while not ws.closed:
                wake.clear()
                for stream in IMAGE_STREAMS:
                    if credits[stream]:
                        version, frame = self.hub.frame(stream)
                        if frame is not None and version != sent[stream]:
                            credits[stream], sent[stream] = 0, version
                            await ws.send_bytes(frame_packet(frame, version))
                commands = self.hub.commands_since(cursor)
                if commands:
                    cursor = commands[-1].seq
                    await ws.send_str(commands_message(commands))
                for name in STATE_NAMES:
                    version, value = self.hub.state(name)
                    if value is not None and version != sent[name]:
                        sent[name] = version
                        await ws.send_str(state_message(name, value))
                await wake.wait()
        except (ConnectionError, RuntimeError) as err:   # the browser went away mid-send
            log.debug('viewer connection closed while sending: %s', err)

    def _on_change(self):
        """Hub listener (any thread): wake every connection's sender once."""
        if self._wake_pending or self._loop is None:
            return
        self._wake_pending = True
        with contextlib.suppress(RuntimeError):   # loop closed during stop()
            self._loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self):
        self._wake_pending = False
        for wake in self._wakes:
            wake.set()
