"""Newest-value slots between the ROS side (writers) and the viewer's servers (readers).

A camera runs at 20 Hz and a browser may be slower: every image stream keeps only its newest
frame (a version number tells readers whether it changed), never a queue, so a slow reader
skips frames instead of falling behind. Commands are small and drawn as a trace, so they are
kept for the last `trace_s` seconds and read incrementally by sequence number. Writers call
from any thread; listeners registered with `add_listener` are called after every change (from
the writer's thread) and must only wake their reader.
"""

import collections
from dataclasses import dataclass
import threading
import time

IMAGE_STREAMS = ('attention', 'contribution')
STATE_NAMES = ('status', 'route')


@dataclass(frozen=True)
class Frame:
    """One picture ready to send: JPEG bytes and the camera stamp it belongs to.

    With `attention_map` set, `jpeg` is the plain camera picture and the heat map of the
    (h, w) map is drawn over it by the page (the node published attention_raw:=true).
    """

    stream: str          # one of IMAGE_STREAMS
    stamp_ns: int        # header stamp of the camera frame (= the command's stamp)
    jpeg: bytes
    width: int
    height: int
    attention_map: object = None   # (h, w) float32 numpy array, or None


@dataclass(frozen=True)
class Command:
    """One steering command as published by the node."""

    seq: int                       # 1, 2, ... in arrival order (readers' cursor)
    stamp_ns: int                  # header stamp = the camera frame it was computed from
    inverse_radius_per_m: float    # u, + = left (REP-103)
    steering_wheel_deg: float      # kinematic steering-wheel angle for u (eq. 3 at speed 0)
    received_mono_s: float         # time.monotonic() at arrival (trims the trace)


def stamp_text(stamp_ns: int) -> str:
    """Format a stamp as 'sec.nanosec' (exact; JavaScript numbers cannot hold int64 ns)."""
    sec, nanosec = divmod(int(stamp_ns), 10**9)
    return f'{sec}.{nanosec:09d}'


class StreamHub:
    """Thread-safe newest frame per image stream, a command trace and named state dicts.

    Args:
        trace_s: how long commands are kept (the page's trace length), seconds.
    """

    def __init__(self, trace_s: float = 30.0):
        self.trace_s = float(trace_s)
        self._lock = threading.Lock()
        self._frames = {name: (0, None) for name in IMAGE_STREAMS}
        self._states = {name: (0, None) for name in STATE_NAMES}
        self._commands = collections.deque()
        self._command_seq = 0
        self._listeners = []

    # -- listeners ------------------------------------------------------------------------------

    def add_listener(self, callback):
        """Call `callback()` after every change (from the writing thread; keep it short)."""
        with self._lock:
            self._listeners.append(callback)

    def remove_listener(self, callback):
        """Stop calling `callback` (no error when it was not registered)."""
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def _changed(self):
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            callback()

    # -- writers --------------------------------------------------------------------------------

    def put_frame(self, frame: Frame) -> int:
        """Replace the newest frame of `frame.stream`; return its version."""
        if frame.stream not in self._frames:
            raise ValueError(f'unknown image stream {frame.stream!r} (one of {IMAGE_STREAMS})')
        with self._lock:
            version = self._frames[frame.stream][0] + 1
            self._frames[frame.stream] = (version, frame)
        self._changed()
        return version

    def put_command(self, stamp_ns: int, inverse_radius_per_m: float,
                    steering_wheel_deg: float, received_mono_s: float | None = None) -> Command:
        """Append a command to the trace and drop the ones older than `trace_s`."""
        now = time.monotonic() if received_mono_s is None else received_mono_s
        with self._lock:
            self._command_seq += 1
            command = Command(self._command_seq, int(stamp_ns), float(inverse_radius_per_m),
                              float(steering_wheel_deg), now)
            self._commands.append(command)
            while self._commands and now - self._commands[0].received_mono_s > self.trace_s:
                self._commands.popleft()
        self._changed()
        return command

    def put_state(self, name: str, value: dict) -> int:
        """Replace the named state ('status' or 'route'); return its version."""
        if name not in self._states:
            raise ValueError(f'unknown state {name!r} (one of {STATE_NAMES})')
        with self._lock:
            version = self._states[name][0] + 1
            self._states[name] = (version, dict(value))
        self._changed()
        return version

    # -- readers --------------------------------------------------------------------------------

    def frame(self, stream: str) -> tuple[int, Frame | None]:
        """Return (version, newest frame or None) of an image stream."""
        with self._lock:
            return self._frames[stream]

    def state(self, name: str) -> tuple[int, dict | None]:
        """Return (version, newest value or None) of a named state."""
        with self._lock:
            return self._states[name]

    def commands_since(self, seq: int) -> list[Command]:
        """Return the kept commands with a sequence number above `seq`, oldest first."""
        with self._lock:
            if not self._commands or self._commands[-1].seq <= seq:
                return []
            return [c for c in self._commands if c.seq > seq]

    @property
    def last_command_seq(self) -> int:
        """Sequence number of the newest command (0 before the first)."""
        with self._lock:
            return self._command_seq
