"""What the viewer's WebSocket (/ws) carries; static/viewer.js is the other end.

Server -> browser:
- binary, one picture: uint32 big-endian header length, the header as UTF-8 JSON
  ({"stream", "stamp", "version", "width", "height"}, and "map": {"height", "width",
  "values"} when the page is to draw the attention heat map over the picture itself), then the
  JPEG bytes;
- text, JSON with a "type": "hello" (settings), "commands" (new trace entries
  [stamp, u_per_m, steering_wheel_deg]), "status" (node health), "route".

Browser -> server: text JSON {"ack": STREAM} once a picture of STREAM is on screen. A stream
gets its next picture only after the ack (one picture in flight), so a slow browser always
receives the newest frame instead of a backlog. Anything else the browser sends is ignored.

Stamps travel as 'sec.nanosec' strings: a JavaScript number cannot hold int64 nanoseconds.
"""

import json
import struct

import numpy as np

from signattn_driver.viewer.config import ViewerError
from signattn_driver.viewer.hub import Command, Frame, IMAGE_STREAMS, stamp_text

_LENGTH = struct.Struct('>I')
MAX_CLIENT_MESSAGE_BYTES = 1024


class ProtocolError(ViewerError, ValueError):
    """Bytes that are not a frame packet of this protocol."""


def frame_packet(frame: Frame, version: int) -> bytes:
    """Pack a picture for the browser."""
    header = {'stream': frame.stream, 'stamp': stamp_text(frame.stamp_ns), 'version': version,
              'width': frame.width, 'height': frame.height}
    if frame.attention_map is not None:
        height, width = frame.attention_map.shape
        header['map'] = {'height': int(height), 'width': int(width),
                         'values': [float(f'{v:.4g}') for v in np.nan_to_num(
                             frame.attention_map, nan=0.0, posinf=0.0, neginf=0.0).ravel()]}
    header = json.dumps(header).encode()
    return _LENGTH.pack(len(header)) + header + frame.jpeg


def parse_frame_packet(data: bytes) -> tuple[dict, bytes]:
    """Unpack a picture packet into (header dict, JPEG bytes); for tests and tools."""
    if len(data) < _LENGTH.size:
        raise ProtocolError(f'frame packet of {len(data)} bytes is too short')
    (length,) = _LENGTH.unpack_from(data)
    end = _LENGTH.size + length
    if end > len(data):
        raise ProtocolError(f'frame header of {length} bytes runs past the packet')
    try:
        header = json.loads(data[_LENGTH.size:end])
    except ValueError as err:
        raise ProtocolError(f'frame header is not JSON: {err}') from err
    return header, bytes(data[end:])


def commands_message(commands: list[Command]) -> str:
    """Pack trace entries for the browser: [[stamp, u, steering_wheel_deg], ...]."""
    return json.dumps({'type': 'commands', 'items': [
        [stamp_text(c.stamp_ns), c.inverse_radius_per_m, c.steering_wheel_deg]
        for c in commands]})


def state_message(kind: str, value: dict) -> str:
    """Pack a status or route update."""
    return json.dumps({'type': kind, **value})


def hello_message(trace_s: float, stale_s: float, vehicle: str) -> str:
    """Pack the settings the page needs before the first data."""
    return json.dumps({'type': 'hello', 'trace_s': trace_s, 'stale_s': stale_s,
                       'vehicle': vehicle, 'streams': list(IMAGE_STREAMS)})


def parse_ack(text: str) -> str | None:
    """Return the stream a browser message acknowledges, or None for anything else."""
    if len(text) > MAX_CLIENT_MESSAGE_BYTES:
        return None
    try:
        message = json.loads(text)
    except ValueError:
        return None
    stream = message.get('ack') if isinstance(message, dict) else None
    return stream if stream in IMAGE_STREAMS else None
