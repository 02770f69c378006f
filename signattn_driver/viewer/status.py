"""The drive node's health for the viewer, from its /diagnostics status (plain values in/out).

drive_node publishes one DiagnosticStatus a second (name 'drive_node: ...') with counters and
latency percentiles as strings; the processing rate is not among them, so it is derived here
from two successive `frames_processed` counts. A counter that goes back means the node was
restarted: the rate is unknown until the next status.
"""

import math

DRIVE_STATUS_PREFIX = 'drive_node'
# diagnostic_msgs/DiagnosticStatus levels
LEVEL_NAMES = {0: 'OK', 1: 'WARN', 2: 'ERROR', 3: 'STALE'}
COUNTERS = ('frames_received', 'frames_processed', 'frames_dropped', 'frames_rejected')
LATENCIES = ('latency_p50_ms', 'latency_p99_ms')


def _number(text, kind=float):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class NodeStatusTracker:
    """Turn successive drive_node statuses into what the page shows."""

    def __init__(self):
        self._last = None   # (received_s, frames_processed)

    def update(self, level: int, message: str, values: dict, received_s: float,
               name: str = DRIVE_STATUS_PREFIX) -> dict:
        """Summarise one status.

        Args:
            level: DiagnosticStatus level (0 OK, 1 WARN, 2 ERROR, 3 STALE).
            message: its message ('ok' or the problems).
            values: its key/value pairs.
            received_s: monotonic arrival time in seconds (the rate's clock).
            name: the status name.

        Returns:
            dict: name, level ('OK', 'WARN', ...), message, rate_hz (None when unknown),
            latency_p50_ms / latency_p99_ms (None before the first frame), the frame counters
            (ints or None), device.
        """
        counts = {key: _number(values.get(key), int) for key in COUNTERS}
        processed = counts['frames_processed']
        rate_hz = None
        if processed is not None:
            if self._last is not None and processed >= self._last[1] and \
                    received_s > self._last[0]:
                rate_hz = (processed - self._last[1]) / (received_s - self._last[0])
            self._last = (received_s, processed)
        return {
            'name': name,
            'level': LEVEL_NAMES.get(int(level), f'level {int(level)}'),
            'message': str(message),
            'rate_hz': rate_hz,
            **{key: _number(values.get(key)) for key in LATENCIES},
            **counts,
            'device': values.get('device', ''),
        }


ROUTE_NAMES = {0: 'follow lane', 1: 'turn left', 2: 'go straight', 3: 'turn right'}


def route_state(code: int) -> dict:
    """Describe a route/command value (std_msgs/UInt8: 0 follow, 1 left, 2 straight, 3 right)."""
    return {'code': int(code), 'name': ROUTE_NAMES.get(int(code), f'unknown ({int(code)})')}
