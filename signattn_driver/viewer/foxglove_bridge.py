"""The viewer's streams through the Foxglove WebSocket protocol (the `foxglove-sdk` package).

For the Foxglove app (Open connection -> Foxglove WebSocket -> ws://127.0.0.1:8765; steps in
docs/viewer.md). Channels, with Foxglove's own schemas where one fits:

- /attention, /attention/contribution: foxglove.CompressedImage (JPEG, the page's pictures);
- /steering/command: JSON `signattn_driver.SteeringCommand` (camera stamp, u in 1/m, the
  kinematic steering-wheel angle): plot `/steering/command.inverse_radius_per_m`;
- /drive_node/status: JSON `signattn_driver.NodeStatus` (rate, latency, counters, level);
- /drive_node/log: foxglove.Log, one entry per WARN/ERROR status (for the Log panel);
- /route/command: JSON `signattn_driver.RouteCommand`.

Messages are logged with the time they reached the viewer (the camera stamp is inside), so a
bag replayed with old stamps still lines up with the status. Pictures are encoded only while a
Foxglove client subscribes to them (`wants`).
"""

import logging
import threading
import time

from signattn_driver.viewer.config import ViewerConfig, ViewerError
from signattn_driver.viewer.frames import FrameEncodingError, overlay_jpeg
from signattn_driver.viewer.hub import IMAGE_STREAMS, StreamHub

log = logging.getLogger(__name__)
IMAGE_TOPICS = {'attention': '/attention', 'contribution': '/attention/contribution'}
COMMAND_TOPIC = '/steering/command'
STATUS_TOPIC = '/drive_node/status'
LOG_TOPIC = '/drive_node/log'
ROUTE_TOPIC = '/route/command'
_TIME = {'type': 'object', 'properties': {'sec': {'type': 'integer'},
                                          'nsec': {'type': 'integer'}}}
COMMAND_SCHEMA = {
    'title': 'signattn_driver.SteeringCommand', 'type': 'object',
    'properties': {
        'timestamp': {**_TIME, 'description': 'header stamp of the camera frame'},
        'inverse_radius_per_m': {'type': 'number', 'description': 'u, 1/m, + = left'},
        'steering_wheel_deg': {'type': 'number',
                               'description': 'kinematic steering-wheel angle (speed 0)'},
    },
}
_NUMBER = {'type': ['number', 'null']}
STATUS_SCHEMA = {
    'title': 'signattn_driver.NodeStatus', 'type': 'object',
    'properties': {
        'level': {'type': 'string'}, 'message': {'type': 'string'},
        'rate_hz': _NUMBER, 'latency_p50_ms': _NUMBER, 'latency_p99_ms': _NUMBER,
        'frames_received': _NUMBER, 'frames_processed': _NUMBER, 'frames_dropped': _NUMBER,
        'frames_rejected': _NUMBER, 'device': {'type': 'string'},
    },
}
ROUTE_SCHEMA = {'title': 'signattn_driver.RouteCommand', 'type': 'object',
                'properties': {'code': {'type': 'integer'}, 'name': {'type': 'string'}}}


def _timestamp(stamp_ns: int):
    from foxglove.messages import Timestamp
    sec, nsec = divmod(int(stamp_ns), 10**9)
    return Timestamp(sec, nsec)


class FoxgloveBridge:
    """Serve the hub's streams on ws://config.host:config.foxglove_port until `stop()`."""

    def __init__(self, hub: StreamHub, config: ViewerConfig):
        self.hub, self.config = hub, config
        self.port = None
        self._server = None
        self._lock = threading.Lock()
        self._sent = {}
        self._cursor = 0

    def start(self) -> 'FoxgloveBridge':
        """Start the Foxglove server; ViewerError when the package is missing or the port busy."""
        try:
            import foxglove
            from foxglove.channels import CompressedImageChannel, LogChannel
        except ImportError as err:
            raise ViewerError('--foxglove needs the foxglove-sdk package: pip install '
                              '-r requirements.txt (foxglove-sdk)') from err
        # A context of its own (channels of another bridge stay apart), kept alive here: the
        # server advertises nothing once its context is garbage-collected.
        context = self._context = foxglove.Context()
        try:
            self._server = foxglove.start_server(name='signattn_driver viewer',
                                                 host=self.config.host,
                                                 port=self.config.foxglove_port,
                                                 context=context)
        except Exception as err:   # the SDK raises its own error types (port in use, ...)
            raise ViewerError(f'cannot start the Foxglove server on {self.config.host}:'
                              f'{self.config.foxglove_port}: {err}') from err
        self.port = self._server.port
        self._images = {stream: CompressedImageChannel(topic, context=context)
                        for stream, topic in IMAGE_TOPICS.items()}
        self._command = foxglove.Channel(COMMAND_TOPIC, schema=COMMAND_SCHEMA, context=context)
        self._status = foxglove.Channel(STATUS_TOPIC, schema=STATUS_SCHEMA, context=context)
        self._route = foxglove.Channel(ROUTE_TOPIC, schema=ROUTE_SCHEMA, context=context)
        self._log = LogChannel(LOG_TOPIC, context=context)
        self._cursor = self.hub.last_command_seq
        self.hub.add_listener(self._on_change)
        log.info('Foxglove WebSocket server on %s', self.url)
        return self

    @property
    def url(self) -> str:
        """The address to open in the Foxglove app."""
        return f'ws://{self.config.host}:{self.port}'

    def wants(self, stream: str) -> bool:
        """Whether a Foxglove client subscribes to the pictures of `stream`."""
        channel = getattr(self, '_images', {}).get(stream)
        return channel is not None and channel.has_sinks()

    def stop(self):
        """Stop serving and unadvertise the channels."""
        self.hub.remove_listener(self._on_change)
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _on_change(self):
        """Hub listener: log what is new (called from the writer's thread)."""
        from foxglove.messages import CompressedImage
        now_ns = time.time_ns()
        with self._lock:
            for stream in IMAGE_STREAMS:
                version, frame = self.hub.frame(stream)
                if frame is None or self._sent.get(stream) == version:
                    continue
                self._sent[stream] = version
                if self._images[stream].has_sinks():
                    try:
                        data = overlay_jpeg(frame, self.config.jpeg_quality)
                    except FrameEncodingError as err:
                        log.warning('%s picture not sent to Foxglove: %s', stream, err)
                        continue
                    self._images[stream].log(CompressedImage(
                        timestamp=_timestamp(frame.stamp_ns), frame_id='camera',
                        data=data, format='jpeg'), log_time=now_ns)
            commands = self.hub.commands_since(self._cursor)
            if commands:
                self._cursor = commands[-1].seq
            for command in commands:
                sec, nsec = divmod(command.stamp_ns, 10**9)
                self._command.log({'timestamp': {'sec': sec, 'nsec': nsec},
                                   'inverse_radius_per_m': command.inverse_radius_per_m,
                                   'steering_wheel_deg': command.steering_wheel_deg},
                                  log_time=now_ns)
            self._log_state('status', now_ns)
            self._log_state('route', now_ns)

    def _log_state(self, name: str, now_ns: int):
        version, value = self.hub.state(name)
        if value is None or self._sent.get(name) == version:
            return
        self._sent[name] = version
        if name == 'route':
            self._route.log(value, log_time=now_ns)
            return
        self._status.log({k: v for k, v in value.items() if k in STATUS_SCHEMA['properties']},
                         log_time=now_ns)
        if value.get('level') in ('WARN', 'ERROR'):
            from foxglove.messages import Log, LogLevel
            self._log.log(Log(timestamp=_timestamp(now_ns), message=value.get('message', ''),
                              name=value.get('name', 'drive_node'),
                              level=LogLevel.Warning if value['level'] == 'WARN' else
                              LogLevel.Error), log_time=now_ns)
