"""Label math shared by every writer of labels: stamps, interpolation, eq. 2 smoothing, gaps.

The Udacity converter, `signattn convert bag` (bag -> dataset), the simulator's recorder and the
dataset writer all derive labels here, with the same float64 operations, so that one drive
converted two ways carries bit-identical labels:

- header stamps are int64 nanoseconds (`stamp_ns_of`);
- a label record (steering-wheel angle, speed) is interpolated linearly to frame stamps
  relative to its first stamp, in int64 first (`LabelTrack`): absolute ns stamps (~1.5e18) do
  not fit a float64 mantissa, so subtracting after the conversion would round them;
- eq. 2, y_t = a x_t + (1 - a) y_{t-1}, y_0 = x_0, runs over a whole series (`smooth`) or frame
  by frame as frames are written (`Smoother`), in the same operations.
"""

import numpy as np

from signattn_driver.errors import ConfigError

DEFAULT_SMOOTHING = 0.2  # alpha_s of eq. 2; the paper does not state its value


def stamp_ns_of(header) -> int:
    """Return the stamp of a (rosbags or rclpy) std_msgs/Header in nanoseconds."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def _check_alpha(alpha_s: float):
    if not 0.0 < alpha_s <= 1.0:
        raise ConfigError(f'alpha_s must be in (0, 1], got {alpha_s}')


def smooth(values, alpha_s: float = DEFAULT_SMOOTHING) -> np.ndarray:
    """Exponential smoothing of a time series (eq. 2): y_t = a x_t + (1 - a) y_{t-1}, y_0 = x_0.

    Args:
        values: (T,) or (T, K) samples in time order.
        alpha_s: 0 < alpha_s <= 1; smaller smooths more, 1 returns the input.
    """
    _check_alpha(alpha_s)
    x = np.asarray(values, dtype=np.float64)
    out = np.empty_like(x)
    smoother = Smoother(alpha_s)
    for t in range(len(x)):
        out[t] = smoother.update(x[t])
    return out


class Smoother:
    """Eq. 2 applied frame by frame (causal), e.g. to write a bag's u while frames come."""

    def __init__(self, alpha_s: float = DEFAULT_SMOOTHING):
        """Start empty: the first value passes unchanged (y_0 = x_0)."""
        _check_alpha(alpha_s)
        self.alpha_s = alpha_s
        self.value = None

    def update(self, x) -> np.ndarray:
        """Add one sample (scalar or (K,)); return the smoothed value as float64."""
        x = np.asarray(x, dtype=np.float64)
        a = self.alpha_s
        self.value = x if self.value is None else a * x + (1.0 - a) * self.value
        return self.value


class LabelTrack:
    """A label record (stamps and value columns) sampled at frame stamps.

    Args:
        stamps_ns: (m,) int64 increasing stamps (m >= 1).
        values: (m,) or (m, K) float values at those stamps.
    """

    def __init__(self, stamps_ns, values):
        self.stamps_ns = np.asarray(stamps_ns, np.int64)
        if len(self.stamps_ns) == 0:
            raise ValueError('a label track needs at least one stamp')
        values = np.asarray(values, np.float64)
        self.values = values[:, None] if values.ndim == 1 else values      # (m, K)
        self.first_ns, self.last_ns = int(self.stamps_ns[0]), int(self.stamps_ns[-1])
        # Relative int64 first: absolute ns stamps (~1.5e18) do not fit a float64 mantissa.
        self._t = (self.stamps_ns - self.stamps_ns[0]).astype(np.float64)

    def inside(self, stamps_ns) -> np.ndarray:
        """(n,) bool: frame stamps within [first, last] label stamp."""
        f = np.asarray(stamps_ns, np.int64)
        return (f >= self.first_ns) & (f <= self.last_ns)

    def at_stamps(self, stamps_ns):
        """Interpolate every column to frame stamps.

        Returns:
            (values (n, K) float64, NaN outside [first, last]; inside (n,) bool). Frames outside
            the record are dropped by callers, never zero-filled.
        """
        f = np.asarray(stamps_ns, np.int64)
        tf = (f - self.stamps_ns[0]).astype(np.float64)
        inside = self.inside(f)
        out = np.stack([np.interp(tf, self._t, self.values[:, k])
                        for k in range(self.values.shape[1])], axis=-1)
        out[~inside] = np.nan
        return out, inside

    def at(self, stamp_ns: int):
        """Values (tuple of K floats) at one frame stamp, None outside the record.

        np.interp on the bracketing samples only: the same arithmetic as `at_stamps` over the
        whole record, without its O(m) cost per frame.
        """
        stamp_ns = int(stamp_ns)
        if not self.first_ns <= stamp_ns <= self.last_ns:
            return None
        s = self.stamps_ns
        j = int(np.searchsorted(s, stamp_ns, side='right'))
        lo, hi = max(j - 1, 0), min(j + 1, len(s))
        x = float(stamp_ns - self.first_ns)
        return tuple(float(np.interp(x, self._t[lo:hi], self.values[lo:hi, k]))
                     for k in range(self.values.shape[1]))


def interpolate_labels(frame_stamps_ns, steering_stamps_ns, steering_wheel_rad, speed_mps):
    """Interpolate a steering record linearly to frame stamps.

    Args:
        frame_stamps_ns: (n,) int64 camera header stamps.
        steering_stamps_ns: (m,) int64 increasing steering header stamps.
        steering_wheel_rad, speed_mps: (m,) values at those stamps.

    Returns:
        (theta (n,), v (n,), inside (n,) bool): values are NaN where the frame lies outside
        [first, last] steering stamp.
    """
    track = LabelTrack(steering_stamps_ns, np.column_stack([steering_wheel_rad, speed_mps]))
    values, inside = track.at_stamps(frame_stamps_ns)
    return values[:, 0], values[:, 1], inside


def find_gaps(stamps_ns, max_gap_s: float) -> list:
    """Return the holes longer than `max_gap_s` in a sorted stamp series as manifest entries."""
    s = np.asarray(stamps_ns, np.int64)
    if len(s) < 2:
        return []
    d = np.diff(s)
    idx = np.flatnonzero(d > max_gap_s * 1e9)
    return [{'start_ns': int(s[i]), 'end_ns': int(s[i + 1]), 'duration_s': float(d[i]) / 1e9}
            for i in idx]
