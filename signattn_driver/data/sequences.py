"""Time-contiguous frame sequences of one camera: segments, validation splits and windows.

Training and evaluation both read a dataset (signattn_driver.data.dataset) as *segments*:
the frames
of one camera in one drive, in stamp order, broken where the time stamps jump. A segment is cut
into *windows* of `sequence_length` frames (the unit of truncated back-propagation through
time); consecutive windows of a segment form an *episode* over which the LSTM state is carried.

    index = SequenceIndex(open_datasets(paths), camera='center', splits=('train', 'val'))
    train, val = index.split('time_blocks', val_fraction=0.1, block_s=60, guard_s=2, seed=0)
    window = index.window(val[0], 0, 20)     # dict of numpy arrays, see `SequenceIndex.window`
    episodes = make_episodes(train, sequence_length=20, episode_windows=10)
    dataset = DriveSequences(index, episodes.windows)    # torch Dataset of padded windows

Validation splits never put neighbouring frames on both sides: either whole drives are held
out ('drive') or whole time blocks are, with a guard gap of `guard_s` seconds removed from the
training side of every boundary ('time_blocks'), so that the smoothed labels (eq. 2) and the
motion blur of adjacent frames cannot leak.
"""

from dataclasses import dataclass, field
import logging

import numpy as np
import torch

from signattn_driver.data.dataset import Dataset, DatasetError, FRAME_SHAPE
from signattn_driver.data.sequence_rule import SEQUENCE_BREAK_GAP_S, SequenceRule

SPLIT_MODES = ('drive', 'time_blocks')
log = logging.getLogger(__name__)


@dataclass
class Segment:
    """Frames of one camera of one drive, consecutive in time.

    Attributes:
        dataset: index into `SequenceIndex.datasets`.
        drive: drive name in that dataset.
        rows: (n,) int64 frame rows of the drive (label rows == frame indices), stamp order.
        stamps_ns: (n,) int64 time stamps of those rows.
    """

    dataset: int
    drive: str
    rows: np.ndarray
    stamps_ns: np.ndarray = field(repr=False)

    def __len__(self):
        """Return the number of frames."""
        return len(self.rows)

    def part(self, mask: np.ndarray) -> list:
        """Split into the maximal runs of consecutive frames where `mask` (n,) is True."""
        edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
        return [Segment(self.dataset, self.drive, self.rows[a:b], self.stamps_ns[a:b])
                for a, b in zip(edges[::2], edges[1::2])]


@dataclass
class Episodes:
    """Windows of `sequence_length` frames grouped into episodes (state carried within one).

    Attributes:
        windows: list of (segment index, start, stop) into the segment list, stop - start <=
            sequence_length (only the last window of a segment may be shorter).
        episodes: list of lists of window ids, consecutive windows of one segment.
        sequence_length: T.
    """

    windows: list
    episodes: list
    sequence_length: int

    @property
    def frames(self) -> int:
        """Count real (unpadded) frames."""
        return sum(stop - start for _, start, stop in self.windows)


class SequenceIndex:
    """The frames of one camera of opened datasets, as time-contiguous segments."""

    def __init__(self, datasets: list, camera: str = 'center', splits=('train', 'val'),
                 max_gap_s: float = SEQUENCE_BREAK_GAP_S):
        """Index every drive whose manifest split is in `splits`.

        Args:
            datasets: opened `Dataset`s (drives are opened here, so unreadable data fails now).
            camera: label column 'camera' value to keep.
            splits: manifest splits to take ('train', 'val', 'test').
            max_gap_s: a larger jump between consecutive stamps starts a new segment.

        Raises:
            DatasetError: a drive that cannot be opened, or no frames of `camera` at all.
        """
        self.datasets = list(datasets)
        self.camera = camera
        self.segments = []
        self.drive_splits = {}   # (dataset, drive) -> manifest split
        for d, ds in enumerate(self.datasets):
            for name in ds.drive_names:
                split = ds.manifest['drives'][name].get('split', 'train')
                if split not in splits:
                    continue
                try:
                    drive = ds.drive(name)
                except DatasetError:
                    raise
                except Exception as err:  # np.load on a damaged chunk, a broken labels.csv
                    raise DatasetError(f'{ds.root / name}: unreadable drive: {err}') from err
                rows = np.flatnonzero(drive.labels['camera'] == camera).astype(np.int64)
                if not len(rows):
                    continue
                stamps = drive.labels['stamp_ns'][rows]
                order = np.argsort(stamps, kind='stable')
                rows, stamps = rows[order], stamps[order]
                self.drive_splits[(d, name)] = split
                # A stamp jump (a dropped recording) starts a new segment.
                whole = Segment(d, name, rows, stamps)
                self.segments += _split_at_gaps(whole, max_gap_s)
        if not self.segments:
            raise DatasetError(f'no frames of camera {camera!r} in drives of split '
                               f'{list(splits)} of {[str(ds.root) for ds in self.datasets]}')

    @property
    def roots(self) -> list:
        """Dataset folders, in `datasets` order."""
        return [str(ds.root) for ds in self.datasets]

    def vehicle(self, segment: Segment):
        """Return the VehicleProfile of the dataset a segment belongs to."""
        return self.datasets[segment.dataset].vehicle

    def window(self, segment: Segment, start: int, stop: int) -> dict:
        """Read frames [start, stop) of a segment.

        Returns:
            dict of numpy arrays: frames (n, 80, 160, 3) uint8 HSV, inverse_radius_per_m (n,)
            float64 (label u, 1/m), speed_smoothed_mps (n,) and steering_wheel_smoothed_rad
            (n,) float64 (eq. 2; the dataset's columns of the same names), stamp_ns (n,) int64.
        """
        return read_window(self.datasets[segment.dataset].drive(segment.drive),
                           segment.rows[start:stop])

    def labels(self, segment: Segment, start: int = 0, stop: int | None = None) -> dict:
        """Labels of frames [start, stop) of a segment without reading frames (see `window`)."""
        rows = segment.rows[start:stop]
        return _labels(self.datasets[segment.dataset].drive(segment.drive), rows)

    def split(self, mode: str = 'drive', val_fraction: float = 0.1, val_drives=(),
              block_s: float = 60.0, guard_s: float = 2.0, seed: int = 0):
        """Divide the segments into training and validation segments.

        Args:
            mode: 'drive' holds out whole drives: `val_drives` by name if given, else the
                drives the manifest marks 'val', else a seeded `val_fraction` of the drives.
                'time_blocks' holds out a seeded `val_fraction` of the `block_s`-second blocks
                of every drive and drops training frames closer than `guard_s` to a
                validation frame of the same drive.
            val_fraction: share of drives or blocks; 0 gives no validation set.
            val_drives: drive names (any dataset) to hold out in 'drive' mode.
            block_s: block length in seconds ('time_blocks').
            guard_s: minimum time between a training and a validation frame ('time_blocks').
            seed: makes the choice repeatable.

        Returns:
            (train segments, val segments).

        Raises:
            ValueError: unknown mode, unknown val drive, or nothing left to train on.
        """
        if mode not in SPLIT_MODES:
            raise ValueError(f'val_split must be one of {SPLIT_MODES}, got {mode!r}')
        rng = np.random.default_rng(seed)
        if mode == 'drive':
            train, val = self._split_drives(val_fraction, list(val_drives), rng)
        else:
            train, val = self._split_blocks(val_fraction, block_s, guard_s, rng)
        if not train:
            raise ValueError('the validation split leaves no training frames')
        return train, val

    def _split_drives(self, fraction, val_drives, rng):
        keys = sorted({(s.dataset, s.drive) for s in self.segments})
        if val_drives:
            known = {name for _, name in keys}
            missing = sorted(set(val_drives) - known)
            if missing:
                raise ValueError(f'val_drives {missing} not found; drives: {sorted(known)}')
            held = {k for k in keys if k[1] in val_drives}
        elif any(self.drive_splits[k] == 'val' for k in keys):
            held = {k for k in keys if self.drive_splits[k] == 'val'}
        elif fraction > 0:
            if len(keys) < 2:
                raise ValueError('val_split drive needs two drives or more; use val_split: '
                                 'time_blocks for a single drive')
            n = min(len(keys) - 1, max(1, int(round(fraction * len(keys)))))
            held = {keys[i] for i in rng.choice(len(keys), n, replace=False)}
        else:
            held = set()
        train = [s for s in self.segments if (s.dataset, s.drive) not in held]
        val = [s for s in self.segments if (s.dataset, s.drive) in held]
        return train, val

    def _split_blocks(self, fraction, block_s, guard_s, rng):
        if not block_s > 0 or guard_s < 0:
            raise ValueError('block_s must be > 0 and guard_s >= 0')
        drives = {}
        for s in self.segments:
            drives.setdefault((s.dataset, s.drive), []).append(s)
        blocks = []   # (drive key, block number)
        block_of = {}
        for key, segs in drives.items():
            stamps = np.concatenate([s.stamps_ns for s in segs])
            b = ((stamps - stamps.min()) // int(block_s * 1e9)).astype(np.int64)
            block_of[key] = (stamps.min(), b)
            blocks += [(key, int(i)) for i in np.unique(b)]
        n = int(round(fraction * len(blocks)))
        if fraction > 0:
            n = min(len(blocks) - 1, max(1, n))
        held = {blocks[i] for i in rng.choice(len(blocks), n, replace=False)} if n > 0 else set()
        train, val = [], []
        guard_ns = int(guard_s * 1e9)
        for key, segs in drives.items():
            t0 = block_of[key][0]
            block = [(s.stamps_ns - t0) // int(block_s * 1e9) for s in segs]
            is_val = [np.array([(key, int(b)) in held for b in bs], bool) for bs in block]
            val_stamps = np.sort(np.concatenate(
                [s.stamps_ns[m] for s, m in zip(segs, is_val)]))
            for s, m in zip(segs, is_val):
                val += s.part(m)
                train += s.part(~m & (_distance_ns(s.stamps_ns, val_stamps) > guard_ns))
        return train, val


def _split_at_gaps(seg: Segment, max_gap_s: float) -> list:
    cut = np.flatnonzero(SequenceRule(max_gap_s).segment_starts(seg.stamps_ns)[1:]) + 1
    bounds = [0, *cut.tolist(), len(seg)]
    return [Segment(seg.dataset, seg.drive, seg.rows[a:b], seg.stamps_ns[a:b])
            for a, b in zip(bounds[:-1], bounds[1:])]


def _distance_ns(stamps: np.ndarray, sorted_others: np.ndarray) -> np.ndarray:
    """Time from each stamp (n,) to the nearest of `sorted_others`; inf when there are none."""
    if not len(sorted_others):
        return np.full(len(stamps), np.inf)
    i = np.searchsorted(sorted_others, stamps)
    before = sorted_others[np.clip(i - 1, 0, len(sorted_others) - 1)]
    after = sorted_others[np.clip(i, 0, len(sorted_others) - 1)]
    return np.minimum(np.abs(stamps - before), np.abs(after - stamps)).astype(np.float64)


def read_window(drive, rows: np.ndarray) -> dict:
    """Frames and labels of the given stamp-ordered rows of an opened `Drive` (see `window`)."""
    lo, hi = int(rows[0]), int(rows[-1]) + 1
    frames = drive.frames(lo, hi)
    frames = np.array(frames if hi - lo == len(rows) else frames[rows - lo])  # copy off the mmap
    return {'frames': frames, **_labels(drive, rows)}


def _labels(drive, rows: np.ndarray) -> dict:
    labels = drive.labels
    return {'inverse_radius_per_m': labels['inverse_radius_per_m'][rows],
            'speed_smoothed_mps': labels['speed_smoothed_mps'][rows],
            'steering_wheel_smoothed_rad': labels['steering_wheel_smoothed_rad'][rows],
            'stamp_ns': labels['stamp_ns'][rows]}


def make_episodes(segments: list, sequence_length: int, episode_windows: int = 0) -> Episodes:
    """Cut segments into windows of `sequence_length` frames and group them into episodes.

    Args:
        segments: from `SequenceIndex.split` (or `.segments`).
        sequence_length: T, frames per window.
        episode_windows: windows per episode; 0 makes each segment one episode (evaluation).
    """
    if sequence_length < 1:
        raise ValueError('sequence_length must be >= 1')
    windows, episodes = [], []
    for i, seg in enumerate(segments):
        ids = []
        for start in range(0, len(seg), sequence_length):
            ids.append(len(windows))
            windows.append((i, start, min(start + sequence_length, len(seg))))
        step = episode_windows if episode_windows > 0 else max(1, len(ids))
        episodes += [ids[j:j + step] for j in range(0, len(ids), step)]
    return Episodes(windows, episodes, sequence_length)


class DriveSequences(torch.utils.data.Dataset):
    """Map-style dataset of windows, padded to `sequence_length`; safe in worker processes.

    An item key is a window id, or a tuple (window id, brightness gain, flip) from a sampler
    that plans augmentation; window id -1 is an all-padding window (empty lane). Items are dicts
    of tensors: frames (T, 80, 160, 3) uint8, inverse_radius_per_m (T,), speed_smoothed_mps (T,),
    valid (T,) bool, gain () float32, flip () bool. Augmentation itself runs on the device.
    """

    def __init__(self, index: SequenceIndex, segments: list, episodes: Episodes):
        """Describe the windows of `episodes` over `segments` of `index`."""
        self.roots = index.roots
        self.camera = index.camera
        self.sequence_length = episodes.sequence_length
        self.windows = [(segments[s].dataset, segments[s].drive, segments[s].rows[a:b])
                        for s, a, b in episodes.windows]
        self._datasets = list(index.datasets)

    def __getstate__(self):
        """Pickle without the memory maps (a spawned worker reopens the datasets)."""
        state = dict(self.__dict__)
        state['_datasets'] = None
        return state

    def __len__(self):
        """Return the number of windows."""
        return len(self.windows)

    def __getitem__(self, key):
        """Load one window (see the class docstring)."""
        wid, gain, flip = key if isinstance(key, tuple) else (key, 1.0, False)
        t = self.sequence_length
        item = {'frames': np.zeros((t, *FRAME_SHAPE), np.uint8),
                'inverse_radius_per_m': np.zeros(t, np.float32),
                'speed_smoothed_mps': np.zeros(t, np.float32),
                'valid': np.zeros(t, bool)}
        if wid >= 0:
            if self._datasets is None:
                self._datasets = [Dataset(r) for r in self.roots]
            d, name, rows = self.windows[wid]
            w = read_window(self._datasets[d].drive(name), rows)
            n = len(rows)
            for k in ('frames', 'inverse_radius_per_m', 'speed_smoothed_mps'):
                item[k][:n] = w[k]
            item['valid'][:n] = True
        out = {k: torch.from_numpy(v) for k, v in item.items()}
        out['gain'] = torch.tensor(float(gain), dtype=torch.float32)
        out['flip'] = torch.tensor(bool(flip))
        return out
