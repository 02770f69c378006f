"""The drive node's bookkeeping without ROS: frame counters, per-stage times, health verdict.

The node (ros/drive_node.py) counts what happens to each frame here, times its stages and asks
once per diagnostics tick for a verdict: OK, or WARN with the reasons a user can act on. No
rclpy import, so all of it is tested without a ROS graph (test/ros/test_node_health.py).
"""

import collections
from dataclasses import dataclass

from signattn_driver.latency import latency_summary

# diagnostic_msgs/DiagnosticStatus levels (bytes there; plain ints here)
OK, WARN, ERROR = 0, 1, 2
FRAME_KEYS = ('received', 'processed', 'dropped', 'rejected', 'state_resets',
              'attention_published', 'contribution_published')
REJECTION_KINDS = ('encoding', 'zero_size', 'step', 'truncated', 'corrupt', 'too_large',
                   'stale', 'future', 'duplicate', 'non_finite_output', 'cuda_oom')
LATENCY_WINDOW = 1000  # frames kept for the p50/p99 in /diagnostics
# Per-frame stages timed in /diagnostics (ms): node clock at receipt minus the header stamp,
# receipt to the worker taking the frame, decoding, preprocessing, network, publishing.
STAGES = ('age_at_receipt', 'wait', 'decode', 'preprocess', 'network', 'publish')
# `latency`: receipt -> last publish; `compute`: conversion + network + publishing.
TIMED = ('latency', 'compute', *STAGES)
DROP_WINDOW_S = 10  # diagnostics ticks (1 s) over which max_drop_fraction is judged


@dataclass(frozen=True)
class CounterSnapshot:
    """The counters at one diagnostics tick (for differences over the drop window)."""

    received: int
    dropped: int
    rejected: int
    rejections: dict


class FrameCounters:
    """What happened to the frames: `frames[key]` for FRAME_KEYS, `rejections[kind]`."""

    def __init__(self):
        self.frames = collections.Counter({k: 0 for k in FRAME_KEYS})
        self.rejections = collections.Counter({k: 0 for k in REJECTION_KINDS})

    def reject(self, kind: str):
        """Count one rejected frame of `kind` (one of REJECTION_KINDS)."""
        if kind not in self.rejections:
            raise ValueError(f'unknown rejection kind {kind!r}; known: {REJECTION_KINDS}')
        self.frames['rejected'] += 1
        self.rejections[kind] += 1

    def snapshot(self) -> CounterSnapshot:
        """Return the counts that the drop window compares."""
        return CounterSnapshot(self.frames['received'], self.frames['dropped'],
                               self.frames['rejected'], dict(self.rejections))


class StageTimes:
    """The last `window` per-frame times (ms) of each name in TIMED, summarised as p50/p99."""

    def __init__(self, window: int = LATENCY_WINDOW):
        self.ms = {name: collections.deque(maxlen=window) for name in TIMED}

    def add(self, times_ms: dict):
        """Record one frame's times: name -> ms, for the names that frame has."""
        for name, value in times_ms.items():
            self.ms[name].append(value)

    def summary(self) -> dict:
        """Return `{name}_p50_ms` and `{name}_p99_ms` per name; NaN before the first frame."""
        out = {}
        for name, values in self.ms.items():
            out.update(latency_summary(values, f'{name}_'))
        return out


@dataclass(frozen=True)
class InputView:
    """What the node sees of its input topic at a diagnostics tick.

    Attributes:
        topic: the input topic's resolved name.
        publishers: publishers on it, any QoS.
        incompatible_qos: publishers whose QoS cannot match the subscription.
        best_effort: whether the subscription is best effort (a hint for lost raw frames).
    """

    topic: str
    publishers: int
    incompatible_qos: int = 0
    best_effort: bool = True


class HealthMonitor:
    """Judge the input once per diagnostics tick (see `judge`).

    Args:
        counters: the node's counters (read, never written).
        now_s: a monotonic clock reading at start, s.
        window_ticks: ticks over which the drop fraction is judged.
    """

    def __init__(self, counters: FrameCounters, now_s: float,
                 window_ticks: int = DROP_WINDOW_S):
        self.counters = counters
        self._window = collections.deque([counters.snapshot()], maxlen=window_ticks + 1)
        self._last_frame_s = self._publishers_since_s = now_s

    def frame_arrived(self, now_s: float):
        """Note a frame's arrival (monotonic s)."""
        self._last_frame_s = now_s

    def judge(self, now_s: float, view: InputView, stale_input_s: float,
              max_drop_fraction: float, device_note: str = '') -> tuple[int, str]:
        """Return (level, message): OK, or WARN with every reason and its counts.

        WARN when the input topic has publishers but no frame arrived for `stale_input_s`
        (0 = never), when more than `max_drop_fraction` of the frames received in the last
        `window_ticks` calls was dropped or rejected, or when `device_note` says something
        (e.g. a CUDA fallback). Call it once per tick: each call moves the window on.
        """
        problems = [device_note] if device_note else []
        now = self.counters.snapshot()
        self._window.append(now)
        if not view.publishers:
            self._publishers_since_s = now_s
        silent_s = now_s - max(self._last_frame_s, self._publishers_since_s)
        if view.publishers and stale_input_s > 0 and silent_s > stale_input_s:
            hint = ('; large raw frames sent best effort are lost with Fast DDS LARGE_DATA: try '
                    'input_reliability:=reliable' if view.best_effort else '')
            if view.incompatible_qos:
                hint = f'; {view.incompatible_qos} publisher(s) with incompatible QoS'
            problems.append(f'no frame for {silent_s:.1f} s from {view.publishers} publisher(s) '
                            f'on {view.topic} (frames_received {now.received}){hint}')
        old = self._window[0]
        received = now.received - old.received
        dropped, rejected = now.dropped - old.dropped, now.rejected - old.rejected
        if received and (dropped + rejected) / received > max_drop_fraction:
            kinds = ', '.join(f'{k} {v - old.rejections[k]}' for k, v in now.rejections.items()
                              if v > old.rejections[k])
            problems.append(f'{dropped + rejected} of {received} frames in the last '
                            f'{len(self._window) - 1} s dropped ({dropped}) or rejected '
                            f'({rejected}{": " + kinds if kinds else ""}) > max_drop_fraction '
                            f'{max_drop_fraction}')
        if problems:
            return WARN, '; '.join(problems)
        return OK, 'ok'


def idle_verdict(started: bool, start_error: str = '') -> tuple[int, str]:
    """Return (level, message) of a node that is not steering (a managed node, not active).

    Args:
        started: configured (network loaded) but not active.
        start_error: why the last configure failed ('' = it did not fail): ERROR.
    """
    if start_error:
        return ERROR, f'unconfigured: configure failed: {start_error}'
    if started:
        return OK, 'inactive: configured, not steering (activate to steer)'
    return OK, 'unconfigured: not steering (configure, then activate)'


def diagnostic_values(counters: FrameCounters, latency_ms: dict, input_publishers: int,
                      input_qos_incompatible: int, **about) -> dict:
    """Return the key -> value pairs of the node's /diagnostics status, in their order.

    Args:
        counters: the frame counters.
        latency_ms: StageTimes.summary() (written with 3 decimals).
        input_publishers: publishers on the input topic, any QoS.
        input_qos_incompatible: publishers whose QoS cannot match the subscription.
        **about: further keys appended as given (device, precision, checkpoint, ...).
    """
    frames = counters.frames
    return {
        **{f'frames_{k}': frames[k] for k in ('received', 'processed', 'dropped', 'rejected')},
        'state_resets': frames['state_resets'],
        'attention_published': frames['attention_published'],
        'contribution_published': frames['contribution_published'],
        'input_publishers': input_publishers,
        'input_qos_incompatible': input_qos_incompatible,
        **{f'rejected_{k}': v for k, v in counters.rejections.items()},
        **{k: f'{v:.3f}' for k, v in latency_ms.items()},
        **about,
    }
