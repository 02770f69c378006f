"""Which camera frames the drive node takes, and how the newest one reaches its worker thread.

`stamp_rejection` is the gate on header stamps (too old, too far in the future) and
`repeat_rejection` the one on a resent copy of the frame just steered on; the pixel limit is
checked while decoding (ros/image_conversion.py, from the header, before any pixel is
decoded). `NewestFrameSlot` hands frames from the subscription callback to the inference
thread, keeping only the newest. No rclpy import: test/ros/test_frame_gate.py tests it directly.
"""

from dataclasses import dataclass
import threading


@dataclass(frozen=True)
class Rejection:
    """Why a frame is not steered on: `kind` (a node_health.REJECTION_KINDS entry), `detail`."""

    kind: str
    detail: str = ''


def stamp_rejection(stamp_ns: int, now_ns: int, max_frame_age_s: float,
                    max_future_s: float) -> Rejection | None:
    """Return why a frame stamped `stamp_ns` is refused at node time `now_ns`, or None.

    Args:
        stamp_ns: the frame's header stamp, ns.
        now_ns: the node clock, ns (0: use_sim_time before the first /clock).
        max_frame_age_s: refuse frames older than this (0 = off).
        max_future_s: refuse frames stamped more than this ahead of the node clock (0 = off).
            A camera with a wrong clock is refused rather than taken as a time jump, which
            would reset the LSTM state on every later frame.
    """
    if max_frame_age_s > 0:
        age_s = (now_ns - stamp_ns) * 1e-9
        if age_s > max_frame_age_s:
            return Rejection('stale', f'frame {age_s:.3f} s old > max_frame_age_s '
                             f'{max_frame_age_s}')
    if max_future_s > 0 and now_ns > 0:
        ahead_s = (stamp_ns - now_ns) * 1e-9
        if ahead_s > max_future_s:
            return Rejection('future', f'frame stamped {ahead_s:.3f} s ahead of the node clock '
                             f'> max_future_s {max_future_s}')
    return None


def repeat_rejection(stamp_ns: int, stepped_ns: int | None) -> Rejection | None:
    """Return why a frame stamped `stamp_ns` is refused as a copy, or None.

    A publisher that resends a frame it has no answer for yet (the simulator's lock-step
    controller, ros/sim_controller.py; a retrying camera driver) would otherwise make the LSTM
    step twice on one picture, which no drive in training and no in-process run does. The
    sequence rule (data/sequence_rule.py) cannot tell: a stamp delta of 0 continues a sequence.

    Args:
        stamp_ns: the frame's header stamp, ns.
        stepped_ns: stamp of the last frame the LSTM stepped on since its last explicit reset
            (None: none), ns.
    """
    if stepped_ns is not None and int(stamp_ns) == int(stepped_ns):
        return Rejection('duplicate', f'frame stamped {stamp_ns} ns was already steered on')
    return None


def attention_due(frame_index: int, every_n: int, enabled: bool, subscribers: int) -> bool:
    """Whether frame number `frame_index` (0-based) publishes a map: every n-th, if listened to."""
    return enabled and subscribers > 0 and frame_index % every_n == 0


class NewestFrameSlot:
    """A one-place hand-over between threads where a newer item replaces a waiting one.

    The subscription callback `put`s each frame; the worker `take`s it. A frame still waiting
    when the next arrives is dropped (`put` returns True), so the worker always works on the
    newest picture. `close` wakes a waiting `take`, which then returns None.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._item = None
        self._closed = False

    def put(self, item) -> bool:
        """Offer `item` (not None); return whether it replaced one that was never taken."""
        with self._cond:
            dropped = self._item is not None
            self._item = item
            self._cond.notify()
        return dropped

    def take(self, timeout_s: float | None = None):
        """Wait for an item and return it; None once closed (or after `timeout_s`)."""
        with self._cond:
            self._cond.wait_for(lambda: self._item is not None or self._closed, timeout_s)
            if self._closed:
                return None
            item, self._item = self._item, None
            return item

    def clear(self) -> bool:
        """Forget a waiting item; return whether there was one."""
        with self._cond:
            had, self._item = self._item is not None, None
            return had

    def close(self):
        """Make every `take` return None from now on."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
