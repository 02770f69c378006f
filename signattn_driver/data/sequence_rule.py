"""When an LSTM sequence starts: the one rule shared by training, evaluation, the node and sim.

A new sequence (fresh LSTM state) starts at the first frame, and at every frame whose stamp is

- more than `max_gap_s` after the previous frame's (a dropped stretch, a paused bag), or
- earlier than the previous frame's (time jumped back: a bag looped, a replay restarted, a
  clock reset), or
- after an explicit reset (the node's `~/reset_state` service, a new episode in the simulator).

Training and evaluation cut datasets into segments with `segment_starts` (vectorised); the node,
replay and the simulator's model controller feed frames one at a time to a `SequenceTracker`.
Both apply the same `SequenceRule`, so a model is run with the state boundaries it was trained
with.
"""

from dataclasses import dataclass
import math

import numpy as np

# A stamp gap longer than this starts a new sequence (fresh LSTM state): 10 frames at 20 Hz,
# so short stalls of a camera driver keep the state and a paused bag does not.
SEQUENCE_BREAK_GAP_S = 0.5
DEFAULT_MAX_GAP_S = SEQUENCE_BREAK_GAP_S   # the name ros/drive_parameters.py imports


@dataclass(frozen=True)
class SequenceRule:
    """Where sequences start.

    Attributes:
        max_gap_s: a stamp gap larger than this (seconds, > 0) starts a new sequence.
    """

    max_gap_s: float = SEQUENCE_BREAK_GAP_S

    def __post_init__(self):
        """Reject a gap that is not a positive finite number of seconds."""
        if not (isinstance(self.max_gap_s, (int, float)) and math.isfinite(self.max_gap_s)
                and self.max_gap_s > 0):
            raise ValueError(f'max_gap_s must be a positive number of seconds, '
                             f'got {self.max_gap_s!r}')

    @property
    def max_gap_ns(self) -> int:
        """The gap in integer nanoseconds (stamps are int64 ns)."""
        return int(round(self.max_gap_s * 1e9))

    def starts(self, previous_ns, stamp_ns) -> bool:
        """Whether a frame at `stamp_ns` after one at `previous_ns` (None: none) starts anew."""
        if previous_ns is None:
            return True
        delta = int(stamp_ns) - int(previous_ns)
        return delta < 0 or delta > self.max_gap_ns

    def segment_starts(self, stamps_ns) -> np.ndarray:
        """Mark sequence starts in a stamp series in arrival order.

        Args:
            stamps_ns: (n,) int64 stamps, in the order the frames are fed to the model.

        Returns:
            (n,) bool, True where a new sequence starts (always at index 0 when n > 0).
        """
        stamps = np.asarray(stamps_ns, dtype=np.int64)
        starts = np.ones(len(stamps), dtype=bool)
        if len(stamps) > 1:
            delta = np.diff(stamps)
            starts[1:] = (delta < 0) | (delta > self.max_gap_ns)
        return starts


class SequenceTracker:
    """Applies a `SequenceRule` frame by frame (the node, replay, the simulator controller).

    `observe(stamp_ns)` returns True when the model's state must be reset before this frame;
    `request_reset()` makes the next observed frame start a new sequence. `stepped(stamp_ns)`
    records that the model's state advanced on a frame, so that a copy of that frame can be
    told apart (`stepped_ns`; the drive node refuses it, ros/frame_gate.repeat_rejection);
    an explicit reset forgets it.
    """

    def __init__(self, rule: SequenceRule = SequenceRule()):
        """Start with no previous frame: the first observed frame starts a sequence."""
        self.rule = rule
        self._previous_ns = None
        self.stepped_ns = None   # stamp of the last frame the state advanced on, since a reset

    def request_reset(self):
        """Start a new sequence at the next frame (explicit reset)."""
        self._previous_ns = None
        self.stepped_ns = None

    def stepped(self, stamp_ns: int):
        """Record that the model's state advanced on the frame stamped `stamp_ns`."""
        self.stepped_ns = int(stamp_ns)

    def observe(self, stamp_ns: int) -> bool:
        """Record a frame; True when a new sequence starts at it."""
        start = self.rule.starts(self._previous_ns, stamp_ns)
        self._previous_ns = int(stamp_ns)
        return start

    @property
    def previous_ns(self):
        """Stamp of the last observed frame (None before the first or after a reset)."""
        return self._previous_ns
