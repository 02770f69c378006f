"""Convert the Udacity CH2 data to ROS 2 bags and a training set (`signattn convert udacity`).

Inputs (one drive each; see docs/converter.md):
- a ROS 1 bag (HMB_1.bag ...) or a folder of them: read with rosbags' AnyReader, decoded with
  the message definitions embedded in the bag (the 2016 dbw_mkz_msgs/SteeringReport and later
  layouts alike); topics the converter does not use are skipped and listed;
- the CH2_001 test release folder: `center/<stamp_ns>.jpg` and a CSV `frame_id,steering_angle`
  (HMB_3_ground_truth.csv; `final_example.csv` holds dummy angles and is never used). It has no
  speed: a `speed` column is used when present, otherwise a constant `assumed_speed_mps`,
  recorded in the manifest as the drive's `speed_source`;
- a folder in the `interpolated.csv` layout of rwightman's udacity-driving-reader.

Output in OUT (everything built aside and renamed into place when complete):

    OUT/dataset/            signattn_driver.data.dataset (DatasetWriter): frames, labels, manifest
    OUT/bags/<drive>/       one ROS 2 bag per drive in the signattn_driver.data.bag_layout topics

Labels: the steering-wheel angle and speed of the steering record are linearly interpolated to
each camera header stamp; frames outside the record are dropped and counted; gaps in the record
longer than `max_gap_s` are reported. Ground truth in the ROS 2 bag: one message triple per kept
frame of the reference camera (the first of `cameras`), stamped with that frame's header stamp
and carrying exactly the values of its label row (u from the smoothed angle and speed, eq. 2-3).

Re-runs: a drive whose inputs (size and SHA-256 of every source file) and settings match the
existing output is kept as it is; different inputs for an existing drive need `force`.
"""

from collections import deque
from concurrent.futures import ThreadPoolExecutor
import csv
from dataclasses import dataclass, field
import hashlib
import logging
import os
from pathlib import Path
import shutil
import uuid

import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag1 import Reader as Reader1
from rosbags.typesys import get_types_from_msg, get_typestore, Stores

from signattn_driver.data.bag_layout import (camera_info_topic, camera_topic, CAMERAS,
                                             compressed_image, DriveBagWriter, STORAGES, TYPESTORE)
from signattn_driver.data.dataset import Dataset, DatasetError, DatasetWriter
from signattn_driver.preprocessing import decode_image, PreprocessingError, to_hsv_u8
from signattn_driver.vehicle import (DEFAULT_SMOOTHING, inverse_radius_from_steering,
                                     load_vehicle)

log = logging.getLogger(__name__)

CONVERTER_VERSION = 1
STEERING_REPORT_TOPIC = '/vehicle/steering_report'
STEERING_FIELDS = ('steering_wheel_angle', 'speed')   # rad (+ = left), m/s
# Steering reports come at ~50 Hz (20 ms); a hole of 10 reports or more is worth reporting.
DEFAULT_MAX_GAP_S = 0.2
# CH2_001 has no speed. Mean speed of the CH2_002 training drives (33808 center frames of
# train_round2_part1..5), so that eq. 3's slip term is about right on average.
DEFAULT_ASSUMED_SPEED_MPS = 15.6
TEST_DRIVES = ('HMB_3',)     # the CH2 test drive; everything else defaults to 'train'
_HASH_BLOCK = 1 << 20


class ConverterError(RuntimeError):
    """An input or output problem the user can act on (message names the file)."""


@dataclass
class ConvertConfig:
    """Settings of one conversion; all but `force`/`workers` are recorded in the manifest."""

    out: Path
    storage: str = 'mcap'                    # ROS 2 bag storage: 'mcap' | 'sqlite3'
    cameras: tuple = ('center',)             # the first one carries the bag's ground truth
    vehicle: str = 'mkz'                     # profile name or YAML path (eq. 3 constants)
    smoothing_alpha: float = DEFAULT_SMOOTHING
    max_gap_s: float = DEFAULT_MAX_GAP_S
    assumed_speed_mps: float = DEFAULT_ASSUMED_SPEED_MPS
    force: bool = False
    workers: int = 2                         # JPEG decode threads (OpenCV releases the GIL)
    chunk_frames: int = 1024

    def settings(self, vehicle) -> dict:
        """Return what decides the output's content (compared on re-runs)."""
        return {'converter_version': CONVERTER_VERSION, 'storage': self.storage,
                'cameras': list(self.cameras), 'vehicle': vehicle.to_dict(),
                'smoothing_alpha': self.smoothing_alpha, 'max_gap_s': self.max_gap_s,
                'assumed_speed_mps': self.assumed_speed_mps}


@dataclass
class ConversionResult:
    """What `convert_udacity` did."""

    dataset: Path
    bags: Path
    converted: list = field(default_factory=list)   # drive names converted in this run
    kept: list = field(default_factory=list)        # drives already up to date
    frames: int = 0                                 # frames written to the dataset this run
    counts: dict = field(default_factory=dict)      # drive -> counts entry


# ---------------------------------------------------------------------------------------------
# Labels: interpolation and gaps (pure functions)


def interpolate_labels(frame_stamps_ns, steering_stamps_ns, steering_wheel_rad, speed_mps):
    """Interpolate the steering record linearly to frame stamps.

    Args:
        frame_stamps_ns: (n,) int64 camera header stamps.
        steering_stamps_ns: (m,) int64 increasing steering header stamps.
        steering_wheel_rad, speed_mps: (m,) values at those stamps.

    Returns:
        (theta (n,), v (n,), inside (n,) bool): values are NaN where the frame lies outside
        [first, last] steering stamp (such frames are dropped, never zero-filled).
    """
    s = np.asarray(steering_stamps_ns, np.int64)
    f = np.asarray(frame_stamps_ns, np.int64)
    # Relative int64 first: absolute ns stamps (~1.5e18) do not fit a float64 mantissa.
    t = (s - s[0]).astype(np.float64)
    tf = (f - s[0]).astype(np.float64)
    inside = (f >= s[0]) & (f <= s[-1])
    theta = np.where(inside, np.interp(tf, t, np.asarray(steering_wheel_rad, np.float64)), np.nan)
    v = np.where(inside, np.interp(tf, t, np.asarray(speed_mps, np.float64)), np.nan)
    return theta, v, inside


def find_gaps(stamps_ns, max_gap_s: float) -> list:
    """Return the holes longer than `max_gap_s` in a sorted stamp series as manifest entries."""
    s = np.asarray(stamps_ns, np.int64)
    if len(s) < 2:
        return []
    d = np.diff(s)
    idx = np.flatnonzero(d > max_gap_s * 1e9)
    return [{'start_ns': int(s[i]), 'end_ns': int(s[i + 1]), 'duration_s': float(d[i]) / 1e9}
            for i in idx]


def default_split(name: str, kind: str) -> str:
    """Return 'test' for the CH2 test drive (HMB_3, the CH2_001 folder), else 'train'."""
    if kind == 'ch2_001' or any(name.startswith(t) for t in TEST_DRIVES):
        return 'test'
    return 'train'


# ---------------------------------------------------------------------------------------------
# Fingerprints of inputs


def file_fingerprint(path: Path) -> dict:
    """Return {path, size, sha256} of a file (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while block := f.read(_HASH_BLOCK):
            h.update(block)
    return {'path': str(Path(path).resolve()), 'size': path.stat().st_size,
            'sha256': h.hexdigest()}


def folder_fingerprint(folder: Path, pattern: str = '*.jpg') -> dict:
    """Fingerprint a folder of images: file count, total size, SHA-256 over names and hashes."""
    h = hashlib.sha256()
    size = n = 0
    for p in sorted(folder.glob(pattern)):
        fp = file_fingerprint(p)
        h.update(f'{p.name} {fp["sha256"]}\n'.encode())
        size += fp['size']
        n += 1
    return {'path': str(folder.resolve()), 'files': n, 'size': size, 'sha256': h.hexdigest()}


def _same_sources(a: list, b: list) -> bool:
    key = lambda fps: sorted((x['size'], x['sha256']) for x in fps)  # noqa: E731
    return key(a) == key(b)


# ---------------------------------------------------------------------------------------------
# Sources: each yields one drive's frames with labels


@dataclass
class _Frame:
    camera: str
    stamp_ns: int
    frame_id: str
    fmt: str
    data: object                  # JPEG bytes or uint8 array
    label: tuple | None           # (theta_rad, v_mps), None: outside the steering record


def _ros1_camera_info_to_ros2(msg):
    T = TYPESTORE.types
    roi = msg.roi
    return T['sensor_msgs/msg/CameraInfo'](
        header=T['std_msgs/msg/Header'](
            stamp=T['builtin_interfaces/msg/Time'](sec=msg.header.stamp.sec,
                                                   nanosec=msg.header.stamp.nanosec),
            frame_id=msg.header.frame_id),
        height=msg.height, width=msg.width, distortion_model=msg.distortion_model,
        d=np.asarray(msg.D, np.float64), k=np.asarray(msg.K, np.float64),
        r=np.asarray(msg.R, np.float64), p=np.asarray(msg.P, np.float64),
        binning_x=msg.binning_x, binning_y=msg.binning_y,
        roi=T['sensor_msgs/msg/RegionOfInterest'](
            x_offset=roi.x_offset, y_offset=roi.y_offset, height=roi.height, width=roi.width,
            do_rectify=roi.do_rectify))


def _stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


class _Ros1Bag:
    """A ROS 1 bag opened with AnyReader (embedded definitions).

    If AnyReader refuses the bag because of one unusable embedded definition (a custom type it
    cannot parse, a wrong md5), the bag is read with the plain rosbag1 reader and only the
    definitions of the topics the converter needs; the others are skipped and listed.
    """

    def __init__(self, path: Path, needed_topics):
        self.path = path
        self.type_problem = None
        try:
            self.reader = AnyReader([path])
            self.reader.open()
            self.connections = self.reader.connections
            self._deserialize = self.reader.deserialize
            return
        except AnyReaderError as err:
            first_error = err
        try:
            self.reader = Reader1(path)
            self.reader.open()
        except Exception as err:  # noqa: BLE001 - any failure here means an unreadable file
            raise _UnreadableBag(
                f'{path}: unreadable ROS 1 bag ({first_error}); nothing was converted from '
                f'it (a truncated download must be fetched again or `rosbag reindex`ed)'
            ) from err
        self.type_problem = str(first_error)
        store = get_typestore(Stores.EMPTY)
        for conn in self.reader.connections:
            if conn.topic in needed_topics:
                try:
                    store.register(get_types_from_msg(conn.msgdef.data, conn.msgtype))
                except Exception as err:  # noqa: BLE001
                    raise ConverterError(f'{path}: cannot use the embedded definition of '
                                         f'{conn.msgtype} on {conn.topic}: {err}') from err
        self.connections = self.reader.connections
        self._deserialize = lambda raw, typ: store.deserialize_ros1(raw, typ)

    def messages(self, connections):
        """Yield (connection, receive_ns, message) in receive order."""
        try:
            for conn, t, raw in self.reader.messages(connections=connections):
                yield conn, t, self._deserialize(raw, conn.msgtype)
        except Exception as err:  # noqa: BLE001 - rosbags raises several types for bad data
            raise _StreamError(str(err)) from err

    def close(self):
        """Close the reader."""
        self.reader.close()


class _StreamError(Exception):
    """A bag that fails while it is being read (corrupt chunk, truncation behind the index)."""


class _UnreadableBag(ConverterError):
    """A bag that cannot be read; the other inputs are still converted."""


class _BagDrive:
    kind = 'bag'

    def __init__(self, path: Path):
        self.path = path
        self.name = path.stem
        self.bag = None

    def fingerprint(self) -> list:
        return [file_fingerprint(self.path)]

    def open(self, cameras, max_gap_s: float, assumed_speed_mps: float):
        topics = {camera_topic(c) for c in CAMERAS} | {camera_info_topic(c) for c in CAMERAS}
        self.bag = _Ros1Bag(self.path, topics | {STEERING_REPORT_TOPIC})
        by_topic = {}
        for conn in self.bag.connections:
            by_topic.setdefault(conn.topic, []).append(conn)
        steering = by_topic.get(STEERING_REPORT_TOPIC)
        if not steering:
            self.close()
            found = ', '.join(sorted(by_topic)) or 'no topics'
            raise ConverterError(
                f'{self.path}: no {STEERING_REPORT_TOPIC} (dbw_mkz_msgs/SteeringReport) topic, '
                f'so there are no labels (found: {found}). HMB_3_release.bag is camera-only: '
                f'convert the CH2_001 folder with HMB_3_ground_truth.csv instead')
        self.cameras = [c for c in cameras if camera_topic(c) in by_topic]
        self.missing_cameras = [c for c in cameras if c not in self.cameras]
        if not self.cameras or self.cameras[0] != cameras[0]:
            self.close()
            raise ConverterError(f'{self.path}: no {camera_topic(cameras[0])} topic')
        self.image_conns = [x for c in self.cameras for x in by_topic[camera_topic(c)]]
        self.info_conns = [x for c in self.cameras for x in by_topic.get(camera_info_topic(c), [])]
        used = {STEERING_REPORT_TOPIC} | {camera_topic(c) for c in self.cameras} | {
            camera_info_topic(c) for c in self.cameras}
        self.skipped_topics = sorted(
            ({'topic': c.topic, 'type': c.msgtype, 'messages': c.msgcount}
             for c in self.bag.connections if c.topic not in used), key=lambda x: x['topic'])
        if self.bag.type_problem:
            for entry in self.skipped_topics:
                entry['note'] = f'definitions unusable as a set: {self.bag.type_problem}'
        self.total_frames = sum(c.msgcount for c in self.image_conns)
        self.speed_source = f'{STEERING_REPORT_TOPIC} speed (m/s)'
        self._read_steering(steering, max_gap_s)

    def _read_steering(self, conns, max_gap_s):
        rows = []
        try:
            for conn, _, msg in self.bag.messages(conns):
                if not all(hasattr(msg, f) for f in STEERING_FIELDS):
                    names = [f for f in getattr(msg, '__dataclass_fields__', {})]
                    raise ConverterError(
                        f'{self.path}: {conn.msgtype} on {STEERING_REPORT_TOPIC} has no '
                        f'{" / ".join(STEERING_FIELDS)} field (its embedded definition has: '
                        f'{", ".join(names)})')
                rows.append((_stamp_ns(msg.header), float(msg.steering_wheel_angle),
                             float(msg.speed)))
                self.steering_definition = conn.msgdef.data
                self.steering_md5 = conn.digest
        except _StreamError as err:
            self.close()
            raise _UnreadableBag(f'{self.path}: corrupt ROS 1 bag, reading failed after '
                                 f'{len(rows)} steering reports ({err}); nothing was converted '
                                 f'from it') from err
        if len(rows) < 2:
            self.close()
            raise ConverterError(f'{self.path}: {len(rows)} steering report(s); need at least 2 '
                                 f'to interpolate labels')
        rows.sort(key=lambda r: r[0])
        stamps = np.array([r[0] for r in rows], np.int64)
        values = np.array([r[1:] for r in rows], np.float64)    # (m, 2)
        keep = np.concatenate([[True], np.diff(stamps) > 0])   # duplicate stamps: first wins
        self.steering_stamps_ns = stamps[keep]
        self.steering_wheel_rad, self.speed_mps = values[keep, 0], values[keep, 1]
        self.gaps = find_gaps(self.steering_stamps_ns, max_gap_s)
        self.steering_reports = int(len(self.steering_stamps_ns))
        fields = [line.split()[1] for line in self.steering_definition.split('=' * 80)[0]
                  .splitlines() if line.strip() and not line.lstrip().startswith('#')]
        self.extra = {'steering_report': {'md5': self.steering_md5, 'fields': fields,
                                          'reports': self.steering_reports}}

    def close(self):
        bag, self.bag = self.bag, None
        if bag is not None:
            bag.close()

    def frames(self):
        s, first, last = self.steering_stamps_ns, self.steering_stamps_ns[0], \
            self.steering_stamps_ns[-1]
        t = (s - first).astype(np.float64)
        info_topics = {c.topic for c in self.info_conns}
        try:
            for conn, _, msg in self.bag.messages(self.image_conns + self.info_conns):
                camera = conn.topic.split('/')[1].split('_')[0]
                stamp = _stamp_ns(msg.header)
                if conn.topic in info_topics:
                    yield camera, stamp, _ros1_camera_info_to_ros2(msg)
                    continue
                label = None
                if first <= stamp <= last:
                    # np.interp on the bracketing samples only: the same arithmetic as
                    # interpolate_labels over the whole record, without its O(m) cost per frame.
                    j = int(np.searchsorted(s, stamp, side='right'))
                    lo, hi = max(j - 1, 0), min(j + 1, len(s))
                    x = float(stamp - first)
                    label = (float(np.interp(x, t[lo:hi], self.steering_wheel_rad[lo:hi])),
                             float(np.interp(x, t[lo:hi], self.speed_mps[lo:hi])))
                yield _Frame(camera, stamp, msg.header.frame_id, msg.format, msg.data, label)
        finally:
            self.close()


def _jpg_stamp(path: Path) -> int:
    try:
        return int(path.stem)
    except ValueError as err:
        raise ConverterError(f'{path}: image names must be <stamp_ns>.jpg') from err


class _FolderDrive:
    def close(self):
        pass


class _Ch2001Drive(_FolderDrive):
    """CH2_001: center/<stamp>.jpg and a CSV frame_id,steering_angle[,public][,speed]."""

    kind = 'ch2_001'

    def __init__(self, folder: Path, csv_path: Path):
        self.folder, self.csv_path = folder, csv_path
        self.name = folder.name

    def fingerprint(self) -> list:
        return [file_fingerprint(self.csv_path), folder_fingerprint(self.folder / 'center')]

    def open(self, cameras, max_gap_s, assumed_speed_mps):
        if cameras[0] != 'center':
            raise ConverterError(f'{self.folder}: CH2_001 has only the center camera')
        self.cameras, self.missing_cameras = ['center'], [c for c in cameras if c != 'center']
        with open(self.csv_path, newline='') as f:
            rows = list(csv.DictReader(f))
        if not rows or not {'frame_id', 'steering_angle'} <= set(rows[0]):
            raise ConverterError(f'{self.csv_path}: expected columns frame_id,steering_angle')
        has_speed = 'speed' in rows[0]
        try:
            self.labels = {int(r['frame_id']): (float(r['steering_angle']),
                                                float(r['speed']) if has_speed
                                                else assumed_speed_mps) for r in rows}
        except ValueError as err:
            raise ConverterError(f'{self.csv_path}: unreadable row ({err})') from err
        self.images = sorted(((_jpg_stamp(p), p) for p in (self.folder / 'center').glob('*.jpg')))
        self.total_frames = len(self.images)
        self.missing_images = len(set(self.labels) - {s for s, _ in self.images})
        self.speed_source = (f'{self.csv_path.name} speed column (m/s)' if has_speed else
                             f'assumed constant {assumed_speed_mps} m/s (the CSV has no speed)')
        self.gaps = find_gaps(sorted(self.labels), max_gap_s)
        self.skipped_topics = []
        self.extra = {'label_csv': self.csv_path.name, 'missing_images': self.missing_images}

    def frames(self):
        for stamp, path in self.images:
            yield _Frame('center', stamp, 'center_camera', 'jpeg', path.read_bytes(),
                         self.labels.get(stamp))


class _InterpolatedDrive(_FolderDrive):
    """rwightman's udacity-driving-reader output: interpolated.csv + <camera>/<stamp>.jpg."""

    kind = 'interpolated_csv'

    def __init__(self, folder: Path):
        self.folder = folder
        self.name = folder.name
        self.csv_path = folder / 'interpolated.csv'

    def fingerprint(self) -> list:
        fps = [file_fingerprint(self.csv_path)]
        for cam in CAMERAS:
            if (self.folder / cam).is_dir():
                fps.append(folder_fingerprint(self.folder / cam))
        return fps

    def open(self, cameras, max_gap_s, assumed_speed_mps):
        with open(self.csv_path, newline='') as f:
            rows = list(csv.DictReader(f))
        need = {'timestamp', 'frame_id', 'filename', 'angle', 'speed'}
        if not rows or not need <= set(rows[0]):
            raise ConverterError(f'{self.csv_path}: expected columns {sorted(need)}')
        try:
            table = sorted((int(r['timestamp']), r['frame_id'].split('_')[0], r['filename'],
                            float(r['angle']), float(r['speed'])) for r in rows)
        except ValueError as err:
            raise ConverterError(f'{self.csv_path}: unreadable row ({err})') from err
        present = {row[1] for row in table}
        self.cameras = [c for c in cameras if c in present]
        self.missing_cameras = [c for c in cameras if c not in present]
        if not self.cameras or self.cameras[0] != cameras[0]:
            raise ConverterError(f'{self.csv_path}: no {cameras[0]}_camera rows')
        self.rows = [r for r in table if r[1] in self.cameras]
        self.total_frames = len(self.rows)
        self.speed_source = 'interpolated.csv speed column (m/s)'
        self.gaps = find_gaps([r[0] for r in self.rows if r[1] == cameras[0]], max_gap_s)
        self.skipped_topics = []
        self.extra = {'note': 'labels as interpolated by udacity-driving-reader (frames before '
                              'its first steering sample carry 0)'}

    def frames(self):
        self.missing_images = 0
        for stamp, camera, filename, angle, speed in self.rows:
            path = self.folder / filename
            if not path.is_file():
                self.missing_images += 1
                continue
            yield _Frame(camera, stamp, f'{camera}_camera', 'jpeg', path.read_bytes(),
                         (angle, speed))
        self.extra['missing_images'] = self.missing_images


def _csv_candidates(folder: Path) -> list:
    out = []
    for p in sorted(folder.glob('*.csv')):
        if p.name == 'final_example.csv':
            continue    # the release's submission template: dummy angles
        with open(p, newline='') as f:
            header = next(csv.reader(f), [])
        if {'frame_id', 'steering_angle'} <= set(header):
            out.append(p)
    return out


def discover(inputs) -> list:
    """Turn INPUT paths into drive sources (bags, CH2_001 folders, interpolated.csv folders)."""
    drives = []
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise ConverterError(f'{path}: no such file or folder')
        if path.is_file():
            if path.suffix != '.bag':
                raise ConverterError(f'{path}: not a ROS 1 bag (.bag)')
            drives.append(_BagDrive(path))
        elif (path / 'interpolated.csv').is_file():
            drives.append(_InterpolatedDrive(path))
        elif (path / 'center').is_dir() and any((path / 'center').glob('*.jpg')):
            found = _csv_candidates(path)
            if len(found) != 1:
                what = 'no' if not found else f'{len(found)}'
                raise ConverterError(
                    f'{path}: CH2_001 layout with {what} label CSV(s) of columns frame_id,'
                    f'steering_angle besides final_example.csv (dummy angles); put exactly one '
                    f'there, e.g. HMB_3_ground_truth.csv')
            drives.append(_Ch2001Drive(path, found[0]))
        else:
            bags = sorted(path.glob('*.bag'))
            if not bags:
                raise ConverterError(f'{path}: no Udacity data found (expected *.bag files, a '
                                     f'CH2_001 folder with center/*.jpg, or interpolated.csv)')
            drives.extend(_BagDrive(b) for b in bags)
    names = [d.name for d in drives]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConverterError(f'two inputs make the same drive name(s) {dup}; rename one')
    return drives


# ---------------------------------------------------------------------------------------------
# Writing one drive


def _preprocess(data):
    try:
        return to_hsv_u8(decode_image(data))
    except PreprocessingError:
        return None


class _DriveSink:
    """Writes frames (in source order) to the drive's bag and dataset; decodes in threads."""

    def __init__(self, bag: DriveBagWriter, drive, pool, reference: str, vehicle, alpha: float,
                 progress, window: int = 64):
        self.bag, self.drive, self.pool = bag, drive, pool
        self.reference, self.vehicle, self.alpha = reference, vehicle, alpha
        self.progress, self.window = progress, window
        self.pending = deque()
        self.last_stamp = {}
        self.smoothed = None
        self.counts = {'camera_messages': {}, 'frames': {}, 'dropped_outside_steering': 0,
                       'corrupt_jpeg': 0, 'out_of_order': 0, 'ground_truth': 0,
                       'camera_info': 0}

    def add(self, item):
        if isinstance(item, _Frame):
            c = self.counts['camera_messages']
            c[item.camera] = c.get(item.camera, 0) + 1
            future = None
            if item.label is not None and item.stamp_ns > self.last_stamp.get(item.camera, -1):
                self.last_stamp[item.camera] = item.stamp_ns
                future = self.pool.submit(_preprocess, item.data)
            self.pending.append((item, future))
        else:
            self.pending.append((item, None))
        while self.pending and (len(self.pending) > self.window or
                                self.pending[0][1] is None or self.pending[0][1].done()):
            self._write(*self.pending.popleft())

    def _write(self, item, future):
        if not isinstance(item, _Frame):
            camera, stamp, msg = item
            self.bag.write_camera_info(stamp, msg, camera)
            self.counts['camera_info'] += 1
            return
        # The camera topic is copied unchanged, whatever happens to the frame in the dataset.
        self.bag.write(camera_topic(item.camera), item.stamp_ns,
                       compressed_image(item.stamp_ns, item.frame_id, item.data, item.fmt))
        self.progress(1)
        if item.label is None:
            self.counts['dropped_outside_steering'] += 1
            return
        if future is None:
            self.counts['out_of_order'] += 1
            return
        hsv = future.result()
        if hsv is None:
            self.counts['corrupt_jpeg'] += 1
            log.warning('%s: corrupt JPEG at stamp %d (%s camera) skipped', self.drive.name,
                        item.stamp_ns, item.camera)
            return
        theta, v = item.label
        self.drive.append(hsv, item.stamp_ns, theta, v, camera=item.camera)
        f = self.counts['frames']
        f[item.camera] = f.get(item.camera, 0) + 1
        if item.camera == self.reference:
            # eq. 2 in the same float64 operations as vehicle.smooth, so that the bag's u equals
            # the dataset's label row bit for bit.
            x = np.array([theta, v], np.float64)
            self.smoothed = x if self.smoothed is None else \
                self.alpha * x + (1.0 - self.alpha) * self.smoothed
            u = float(inverse_radius_from_steering(self.smoothed[0], self.smoothed[1],
                                                   self.vehicle))
            self.bag.write_ground_truth(item.stamp_ns, theta, v, u)
            self.counts['ground_truth'] += 1

    def finish(self):
        while self.pending:
            self._write(*self.pending.popleft())

    def cancel(self):
        for _, future in self.pending:
            if future is not None:
                future.cancel()
        self.pending.clear()


# ---------------------------------------------------------------------------------------------
# The conversion


def _bag_ok(path: Path) -> bool:
    return (path / 'metadata.yaml').is_file()


def _existing(dataset_root: Path, force: bool):
    if not dataset_root.exists():
        return None
    try:
        return Dataset(dataset_root)
    except DatasetError as err:
        if force:
            return None
        raise ConverterError(f'{dataset_root} exists but is not a complete dataset ({err}); '
                             f'pass --force to replace it') from err


def _replace_dir(src: Path, dst: Path):
    if dst.exists():
        old = dst.with_name(f'.{dst.name}.old-{uuid.uuid4().hex[:8]}')
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old)
    else:
        os.replace(src, dst)


def convert_udacity(inputs, config: ConvertConfig, progress=None) -> ConversionResult:
    """Convert Udacity inputs into OUT/dataset and OUT/bags/<drive>.

    Args:
        inputs: paths (ROS 1 bags, folders of bags, CH2_001 folders, interpolated.csv folders).
        config: output folder and settings.
        progress: optional callable(done_frames, total_frames), called as frames are written.

    Returns:
        A ConversionResult.

    Raises:
        ConverterError: bad input or output; for a bag that breaks while being read, after the
            other drives were written (the message names the file and what was kept).
    """
    if config.storage not in STORAGES:
        raise ConverterError(f'storage must be one of {sorted(STORAGES)}')
    bad = [c for c in config.cameras if c not in CAMERAS]
    if bad or not config.cameras:
        raise ConverterError(f'cameras must be among {CAMERAS}, got {list(config.cameras)}')
    try:
        vehicle = load_vehicle(config.vehicle)
    except (FileNotFoundError, ValueError) as err:
        raise ConverterError(str(err)) from err
    out = Path(config.out)
    dataset_root, bags_root = out / 'dataset', out / 'bags'
    if out.exists() and not out.is_dir():
        raise ConverterError(f'{out} exists and is not a folder')
    if out.is_dir() and any(out.iterdir()) and not dataset_root.exists() and \
            not bags_root.exists() and not config.force:
        raise ConverterError(f'{out} is not empty and holds no conversion; choose another '
                             f'--out or pass --force')
    drives = discover(inputs)
    settings = config.settings(vehicle)
    existing = _existing(dataset_root, config.force)
    kept = {}
    if existing is not None:
        old = existing.manifest.get('conversion', {}).get('settings')
        if old != settings:
            if not config.force:
                diff = sorted(k for k in settings if (old or {}).get(k) != settings[k])
                raise ConverterError(f'{dataset_root} was converted with other settings '
                                     f'({", ".join(diff)}); pass --force to rebuild it')
            log.warning('settings changed: rebuilding %s without its old drives', dataset_root)
        else:
            kept = dict(existing.manifest['drives'])
    result = ConversionResult(dataset=dataset_root, bags=bags_root)
    todo = []
    for drive in drives:
        log.info('fingerprinting %s', drive.name)
        sources = drive.fingerprint()
        entry = kept.get(drive.name)
        if entry is not None and not config.force:
            if _same_sources(entry.get('sources', []), sources) and \
                    _bag_ok(bags_root / drive.name):
                log.info('%s: already converted from the same inputs; kept', drive.name)
                result.kept.append(drive.name)
                continue
            raise ConverterError(f'{dataset_root}: drive {drive.name} was converted from other '
                                 f'inputs; pass --force to replace it')
        kept.pop(drive.name, None)
        todo.append((drive, sources))
    if not todo:
        log.info('nothing to convert: %s is up to date', out)
        return result
    opened, failures = [], []
    try:
        for drive, sources in todo:   # open every source first: bad inputs fail before any work
            try:
                drive.open(config.cameras, config.max_gap_s, config.assumed_speed_mps)
            except _UnreadableBag as err:
                log.error('%s', err)
                failures.append(err)
                continue
            opened.append((drive, sources))
        if not opened:
            raise ConverterError('; '.join(map(str, failures)) + f'. Nothing was written to '
                                 f'{out}') from failures[0]
        return _write_all(opened, kept, existing, config, vehicle, settings, result, progress,
                          failures)
    finally:
        for drive, _ in opened:
            drive.close()


def _write_all(todo, kept, existing, config, vehicle, settings, result, progress, failures):
    total = sum(d.total_frames for d, _ in todo)
    done = [0]

    def advance(n):
        done[0] += n
        if progress is not None:
            progress(done[0], total)

    result.bags.mkdir(parents=True, exist_ok=True)
    writer = DatasetWriter(result.dataset, vehicle, config.smoothing_alpha,
                           chunk_frames=config.chunk_frames, overwrite=result.dataset.exists())
    staged = []
    try:
        for name, entry in kept.items():
            writer.add_existing_drive(name, existing.root / name, entry)
        with ThreadPoolExecutor(max_workers=max(1, config.workers)) as pool:
            for drive, sources in todo:
                # The storage file is named after the bag folder: build <tmp>/<drive>/.
                tmp_bag = result.bags / f'.partial-{uuid.uuid4().hex[:8]}' / drive.name
                try:
                    entry = _write_drive(drive, sources, tmp_bag, writer, pool, config, vehicle,
                                         advance)
                except _StreamError as err:
                    shutil.rmtree(tmp_bag.parent, ignore_errors=True)
                    failure = ConverterError(
                        f'{drive.path}: corrupt ROS 1 bag, reading failed after {err.args[1]} '
                        f'camera frames ({err.args[0]}); this drive was not written')
                    failure.__cause__ = err
                    log.error('%s', failure)
                    failures.append(failure)
                    continue
                except BaseException:
                    shutil.rmtree(tmp_bag.parent, ignore_errors=True)
                    raise
                staged.append((tmp_bag, result.bags / drive.name))
                result.converted.append(drive.name)
                result.counts[drive.name] = entry['counts']
                result.frames += entry['frames']
        if not writer.drives:
            raise ConverterError('; '.join(map(str, failures)) + f'. Nothing was written to '
                                 f'{result.dataset.parent}') from failures[0]
        while staged:     # bags first: the manifest written last marks completion
            tmp_bag, dst = staged.pop()
            _replace_dir(tmp_bag, dst)
            tmp_bag.parent.rmdir()
        totals = {}
        for entry in writer.drives.values():
            for key in ('dropped_outside_steering', 'corrupt_jpeg', 'out_of_order',
                        'ground_truth'):
                totals[key] = totals.get(key, 0) + entry.get('counts', {}).get(key, 0)
        writer.finalize(conversion={'converter': 'udacity', 'settings': settings,
                                    'alpha_s': config.smoothing_alpha, 'totals': totals},
                        sources=[s for e in writer.drives.values() for s in e['sources']])
    except BaseException:
        writer.abort()
        for tmp_bag, _ in staged:
            shutil.rmtree(tmp_bag.parent, ignore_errors=True)
        raise
    if failures:
        written = ', '.join(sorted(writer.drives))
        raise ConverterError('; '.join(map(str, failures)) + f'. Salvaged: the other drives '
                             f'({written}) were written to {result.dataset.parent}'
                             ) from failures[0]
    return result


def _write_drive(drive, sources, tmp_bag, writer, pool, config, vehicle, advance) -> dict:
    split = default_split(drive.name, drive.kind)
    dw = writer.drive(drive.name, split)
    with_info = bool(getattr(drive, 'info_conns', None))
    sink = None
    try:
        with DriveBagWriter(tmp_bag, config.storage, cameras=drive.cameras,
                            with_camera_info=with_info) as bag:
            sink = _DriveSink(bag, dw, pool, drive.cameras[0], vehicle, config.smoothing_alpha,
                              advance)
            try:
                for item in drive.frames():
                    sink.add(item)
            except _StreamError as err:
                sink.cancel()
                raise _StreamError(str(err), sum(sink.counts['camera_messages'].values())) \
                    from err
            sink.finish()
    except BaseException:
        if sink is not None:
            sink.cancel()
        shutil.rmtree(dw.folder, ignore_errors=True)
        raise
    counts = sink.counts
    if counts['corrupt_jpeg']:
        log.warning('%s: %d corrupt JPEG frame(s) skipped', drive.name, counts['corrupt_jpeg'])
    if counts['dropped_outside_steering']:
        log.info('%s: %d frame(s) outside the steering record dropped', drive.name,
                 counts['dropped_outside_steering'])
    for gap in drive.gaps:
        log.warning('%s: no steering label for %.3f s from stamp %d (labels interpolated '
                    'across)', drive.name, gap['duration_s'], gap['start_ns'])
    extra = {'source_kind': drive.kind, 'sources': sources, 'counts': counts,
             'skipped_topics': drive.skipped_topics, 'gaps': drive.gaps,
             'max_gap_s': config.max_gap_s, 'speed_source': drive.speed_source,
             'missing_cameras': drive.missing_cameras,
             'bag': f'../bags/{drive.name}', 'storage': config.storage, **drive.extra}
    return writer.close_drive(dw, **extra)
