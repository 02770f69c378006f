"""The training/evaluation set on disk: preprocessed frames, per-frame labels, a manifest.

Layout (DATASET_VERSION 1), one folder per dataset:

    DATASET/
      manifest.json                 written last: its presence marks the set complete
      <drive>/
        frames_00000.npy ...        (n <= chunk_frames, 80, 160, 3) uint8 HSV (preprocessing v1)
        masks_00000.npy ...         optional (n, 80, 160) uint8 ground-truth relevance masks
        labels.csv                  one row per frame, in stamp order per camera (LABEL_COLUMNS)

Frames are NumPy .npy chunks, opened with mmap_mode='r' (no copy until a slice is read).
Labels: raw and smoothed (eq. 2) steering-wheel angle and speed, u from eq. 3, the source
camera, the drive and a split ('train' | 'val' | 'test').

The writer builds the dataset in a hidden sibling folder and renames it into place in
`finalize`, so an interrupted run never leaves a set that looks complete.
"""

import csv
from dataclasses import dataclass
import json
import os
from pathlib import Path
import shutil
import uuid

import numpy as np

from signattn_driver.model import INPUT_HEIGHT, INPUT_WIDTH
from signattn_driver.preprocessing import PREPROCESSING
from signattn_driver.data.labels import smooth
from signattn_driver.errors import DataError
from signattn_driver.vehicle import inverse_radius_from_steering, VehicleProfile

DATASET_FORMAT = 'signattn_driver.dataset'
DATASET_VERSION = 1
MANIFEST = 'manifest.json'
LABELS = 'labels.csv'
LABEL_COLUMNS = (
    'index', 'stamp_ns', 'camera', 'drive', 'split',
    'steering_wheel_rad', 'speed_mps',                    # raw, interpolated to the frame stamp
    'steering_wheel_smoothed_rad', 'speed_smoothed_mps',  # eq. 2
    'inverse_radius_per_m',                               # eq. 3 from the smoothed values
)
SPLITS = ('train', 'val', 'test')
FRAME_SHAPE = (INPUT_HEIGHT, INPUT_WIDTH, 3)


class DatasetError(DataError):
    """A dataset folder that is missing, incomplete or inconsistent."""


class DriveWriter:
    """Appends one drive's frames and raw labels; smoothing and eq. 3 are applied on close."""

    def __init__(self, folder: Path, name: str, split: str, chunk_frames: int):
        if split not in SPLITS:
            raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
        self.folder, self.name, self.split = folder, name, split
        self.chunk_frames = chunk_frames
        self.folder.mkdir(parents=True)
        self._frames, self._masks, self._rows = [], [], []
        self._chunks = 0
        self._has_masks = None

    def append(self, hsv_u8: np.ndarray, stamp_ns: int, steering_wheel_rad: float,
               speed_mps: float, camera: str = 'center', mask_u8: np.ndarray | None = None):
        """Add one preprocessed frame (80, 160, 3) uint8 with its raw labels at `stamp_ns`."""
        if hsv_u8.shape != FRAME_SHAPE or hsv_u8.dtype != np.uint8:
            raise ValueError(f'frame must be {FRAME_SHAPE} uint8, got {hsv_u8.shape} '
                             f'{hsv_u8.dtype}')
        if self._has_masks is None:
            self._has_masks = mask_u8 is not None
        if (mask_u8 is not None) != self._has_masks:
            raise ValueError('give a mask for every frame of a drive or for none')
        self._frames.append(hsv_u8)
        if mask_u8 is not None:
            self._masks.append(np.asarray(mask_u8, np.uint8).reshape(INPUT_HEIGHT, INPUT_WIDTH))
        self._rows.append((int(stamp_ns), camera, float(steering_wheel_rad), float(speed_mps)))
        if len(self._frames) >= self.chunk_frames:
            self._flush()

    def __len__(self):
        """Return the number of frames appended so far."""
        return len(self._rows)

    def _flush(self):
        if not self._frames:
            return
        np.save(self.folder / f'frames_{self._chunks:05d}.npy', np.stack(self._frames))
        if self._masks:
            np.save(self.folder / f'masks_{self._chunks:05d}.npy', np.stack(self._masks))
        self._frames, self._masks = [], []
        self._chunks += 1

    def close(self, vehicle: VehicleProfile, smoothing_alpha: float) -> dict:
        """Write the last chunk and labels.csv; return this drive's manifest entry."""
        self._flush()
        n = len(self._rows)
        stamps = np.array([r[0] for r in self._rows], np.int64)
        cameras = np.array([r[1] for r in self._rows])
        raw = np.array([[r[2], r[3]] for r in self._rows], np.float64).reshape(n, 2)
        smoothed = np.zeros_like(raw)
        for camera in np.unique(cameras):
            # eq. 2 runs along each camera's own time series (frames are stamp-ordered).
            idx = np.flatnonzero(cameras == camera)
            smoothed[idx] = smooth(raw[idx], smoothing_alpha)
        u = inverse_radius_from_steering(smoothed[:, 0], smoothed[:, 1], vehicle)
        with open(self.folder / LABELS, 'w', newline='') as f:
            w = csv.writer(f)
            w.writerow(LABEL_COLUMNS)
            for i in range(n):
                # repr of a Python float round-trips exactly.
                w.writerow([i, int(stamps[i]), cameras[i], self.name, self.split,
                            *(repr(float(v)) for v in (raw[i, 0], raw[i, 1], smoothed[i, 0],
                                                       smoothed[i, 1], u[i]))])
        return {'frames': n, 'chunks': self._chunks, 'split': self.split,
                'cameras': sorted(set(cameras.tolist())), 'masks': bool(self._has_masks),
                'first_stamp_ns': int(stamps.min()) if n else None,
                'last_stamp_ns': int(stamps.max()) if n else None}


class DatasetWriter:
    """Builds a dataset folder atomically.

    Example:
        writer = DatasetWriter(out, vehicle=load_vehicle('mkz'), smoothing_alpha=0.2)
        drive = writer.drive('HMB_1')
        drive.append(hsv, stamp_ns, theta_rad, v_mps)
        writer.close_drive(drive)
        writer.finalize(sources=[...])
    """

    def __init__(self, root, vehicle: VehicleProfile, smoothing_alpha: float,
                 chunk_frames: int = 1024, overwrite: bool = False):
        self.root = Path(root)
        if self.root.exists() and not overwrite:
            raise DatasetError(f'{self.root} exists; pass overwrite (--force) to replace it')
        self.vehicle, self.smoothing_alpha = vehicle, smoothing_alpha
        self.chunk_frames = chunk_frames
        self.overwrite = overwrite
        self.tmp = self.root.with_name(f'.{self.root.name}.partial-{uuid.uuid4().hex[:8]}')
        self.tmp.mkdir(parents=True)
        self.drives = {}

    def drive(self, name: str, split: str = 'train') -> DriveWriter:
        """Start a drive folder; close it with `close_drive`."""
        if name in self.drives or '/' in name or name.startswith('.'):
            raise ValueError(f'bad or duplicate drive name {name!r}')
        return DriveWriter(self.tmp / name, name, split, self.chunk_frames)

    def close_drive(self, drive: DriveWriter, **extra) -> dict:
        """Finish a drive; `extra` (counts, sources, ...) goes into its manifest entry."""
        entry = drive.close(self.vehicle, self.smoothing_alpha)
        entry.update(extra)
        self.drives[drive.name] = entry
        return entry

    def add_existing_drive(self, name: str, folder: Path, entry: dict):
        """Copy an already converted drive (e.g. unchanged inputs on a re-run) into the set."""
        shutil.copytree(folder, self.tmp / name)
        self.drives[name] = entry

    def finalize(self, **extra) -> Path:
        """Write manifest.json last and move the folder into place; return the dataset path."""
        counts = {'frames': sum(d['frames'] for d in self.drives.values()), 'drives':
                  len(self.drives)}
        manifest = {'format': DATASET_FORMAT, 'version': DATASET_VERSION,
                    'preprocessing': dict(PREPROCESSING), 'vehicle': self.vehicle.to_dict(),
                    'smoothing_alpha': self.smoothing_alpha, 'label_columns': list(LABEL_COLUMNS),
                    'counts': counts, 'drives': self.drives, **extra}
        with open(self.tmp / MANIFEST, 'w') as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
        if self.root.exists():
            old = self.root.with_name(f'.{self.root.name}.old-{uuid.uuid4().hex[:8]}')
            os.replace(self.root, old)
            os.replace(self.tmp, self.root)
            shutil.rmtree(old)
        else:
            os.replace(self.tmp, self.root)
        return self.root

    def abort(self):
        """Remove the partial folder (the destination is untouched)."""
        shutil.rmtree(self.tmp, ignore_errors=True)


@dataclass
class Drive:
    """One drive of an opened dataset: memory-mapped frame chunks and its label columns."""

    name: str
    folder: Path
    labels: dict            # column -> numpy array (len = frames)
    chunks: list            # memory-mapped (n, 80, 160, 3) uint8 arrays
    mask_chunks: list       # same layout, (n, 80, 160), or empty
    offsets: np.ndarray     # first frame index of each chunk, plus the total at the end

    def __len__(self):
        """Return the number of frames."""
        return int(self.offsets[-1])

    def _gather(self, chunks, start: int, stop: int) -> np.ndarray:
        parts = []
        i = int(np.searchsorted(self.offsets, start, side='right') - 1)
        while start < stop:
            lo = start - self.offsets[i]
            take = min(stop, self.offsets[i + 1]) - start
            parts.append(chunks[i][lo:lo + take])
            start += take
            i += 1
        return np.concatenate(parts) if len(parts) != 1 else np.asarray(parts[0])

    def frames(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) as (n, 80, 160, 3) uint8 HSV."""
        if not 0 <= start <= stop <= len(self):
            raise IndexError(f'{self.name}: frames [{start}, {stop}) outside 0..{len(self)}')
        if start == stop:
            return np.zeros((0, *FRAME_SHAPE), np.uint8)
        return self._gather(self.chunks, start, stop)

    def masks(self, start: int, stop: int) -> np.ndarray:
        """Ground-truth masks [start, stop) as (n, 80, 160) uint8; DatasetError if absent."""
        if not self.mask_chunks:
            raise DatasetError(f'{self.name}: this drive has no masks')
        return self._gather(self.mask_chunks, start, stop)


class Dataset:
    """A read-only dataset folder; drives are opened lazily with memory-mapped frames."""

    def __init__(self, root):
        self.root = Path(root)
        path = self.root / MANIFEST
        if not path.is_file():
            raise DatasetError(f'{self.root}: no {MANIFEST} (not a dataset, or conversion did '
                               f'not finish)')
        try:
            self.manifest = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise DatasetError(f'{path}: unreadable manifest: {err}') from err
        if self.manifest.get('format') != DATASET_FORMAT:
            raise DatasetError(f'{self.root}: not a signattn_driver dataset')
        if self.manifest.get('version') != DATASET_VERSION:
            raise DatasetError(f'{self.root}: dataset version {self.manifest.get("version")}, '
                               f'this package reads {DATASET_VERSION}')
        prep = self.manifest.get('preprocessing', {}).get('version')
        if prep != PREPROCESSING['version']:
            raise DatasetError(f'{self.root}: frames use preprocessing version {prep}, this '
                               f'package uses {PREPROCESSING["version"]}; convert again')
        self.vehicle = VehicleProfile(**self.manifest['vehicle'])
        self._cache = {}

    @property
    def drive_names(self) -> list:
        """List drive names in manifest order."""
        return list(self.manifest['drives'])

    def drive(self, name: str) -> Drive:
        """Return one drive, opened memory-mapped."""
        if name not in self._cache:
            self._cache[name] = _open_drive(self.root / name, name,
                                            self.manifest['drives'][name])
        return self._cache[name]

    def __iter__(self):
        """Iterate over drives."""
        return (self.drive(n) for n in self.drive_names)


def _read_labels(path: Path) -> dict:
    with open(path, newline='') as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    if tuple(header[:len(LABEL_COLUMNS)]) != LABEL_COLUMNS:
        raise DatasetError(f'{path}: unexpected columns {header}')
    columns = {}
    for j, name in enumerate(header):
        values = [r[j] for r in body]
        if name in ('camera', 'drive', 'split'):
            columns[name] = np.array(values, dtype=str)
        elif name in ('index', 'stamp_ns'):
            columns[name] = np.array(values, dtype=np.int64)
        else:
            columns[name] = np.array(values, dtype=np.float64)
    return columns


def _open_drive(folder: Path, name: str, entry: dict) -> Drive:
    labels = _read_labels(folder / LABELS)
    chunks = [np.load(p, mmap_mode='r') for p in sorted(folder.glob('frames_*.npy'))]
    masks = [np.load(p, mmap_mode='r') for p in sorted(folder.glob('masks_*.npy'))]
    if len(chunks) != entry['chunks'] or (masks and len(masks) != len(chunks)):
        raise DatasetError(f'{folder}: {len(chunks)} frame chunks, manifest says '
                           f'{entry["chunks"]}')
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in chunks])]).astype(np.int64)
    if offsets[-1] != len(labels['index']) or offsets[-1] != entry['frames']:
        raise DatasetError(f'{folder}: {offsets[-1]} frames but {len(labels["index"])} labels')
    for c in chunks:
        if c.shape[1:] != FRAME_SHAPE or c.dtype != np.uint8:
            raise DatasetError(f'{folder}: frame chunk of shape {c.shape} {c.dtype}')
    return Drive(name, folder, labels, chunks, masks, offsets)


def open_datasets(paths) -> list:
    """Open several dataset folders (e.g. `signattn train --data A B`)."""
    return [Dataset(p) for p in paths]
