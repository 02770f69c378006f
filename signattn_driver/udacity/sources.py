"""The three kinds of Udacity input, each one drive that yields its frames with labels.

- `BagDrive`: a ROS 1 bag (steering record interpolated to each camera stamp, data.labels);
- `Ch2001Drive`: the CH2_001 test release folder (center/<stamp>.jpg and a label CSV);
- `InterpolatedDrive`: a folder in the interpolated.csv layout of udacity-driving-reader.

All three are `DriveSource`s: `discover` turns the user's INPUT paths into them, `open()` checks
the input and reads its labels, and `frames()` yields `Frame`s (and, where `has_camera_info`,
CameraInfo triples) in source order; `label` is None outside the steering record.
"""

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from signattn_driver.data.bag_layout import camera_info_topic, camera_topic, CAMERAS
from signattn_driver.data.labels import find_gaps, LabelTrack, stamp_ns_of
from signattn_driver.udacity.errors import BagStreamError, ConverterError, UnreadableBagError
from signattn_driver.udacity.fingerprints import file_fingerprint, folder_fingerprint
from signattn_driver.udacity.ros1 import (camera_info_to_ros2, Ros1Bag, STEERING_FIELDS,
                                          STEERING_REPORT_TOPIC)

TEST_DRIVES = ('HMB_3',)     # the CH2 test drive; everything else defaults to 'train'


def default_split(name: str, kind: str) -> str:
    """Return 'test' for the CH2 test drive (HMB_3, the CH2_001 folder), else 'train'."""
    if kind == 'ch2_001' or any(name.startswith(t) for t in TEST_DRIVES):
        return 'test'
    return 'train'


@dataclass
class Frame:
    """One camera message of a drive with its label."""

    camera: str
    stamp_ns: int
    frame_id: str
    fmt: str
    data: object                  # JPEG bytes or uint8 array
    label: tuple | None           # (theta_rad, v_mps), None: outside the steering record


class DriveSource:
    """One drive of Udacity input, as `convert_udacity` reads it.

    Attributes:
        kind: 'bag' | 'ch2_001' | 'interpolated_csv' (recorded in the manifest).
        name: the drive's name in the dataset and under bags/.
        cameras: cameras converted, the reference camera first (set by `open`).
        missing_cameras: cameras asked for that the input lacks (set by `open`).
        total_frames: camera messages to convert, for progress (set by `open`).
        speed_source: where the speed of the labels comes from, for the manifest.
        gaps: label record holes longer than `max_gap_s` (data.labels.find_gaps entries).
        skipped_topics: topics of the input that are not converted (manifest entries).
        extra: further manifest entries of this kind of input.
        has_camera_info: `frames()` also yields (camera, stamp_ns, CameraInfo) triples.
    """

    kind = ''

    def __init__(self, name: str):
        """Name the drive; everything read from the input waits for `open`."""
        self.name = name
        self.cameras: list = []
        self.missing_cameras: list = []
        self.total_frames = 0
        self.speed_source = ''
        self.gaps: list = []
        self.skipped_topics: list = []
        self.extra: dict = {}
        self.has_camera_info = False

    def fingerprint(self) -> list:
        """Return the fingerprints of every source file (compared on re-runs)."""
        raise NotImplementedError

    def open(self, cameras, max_gap_s: float, assumed_speed_mps: float):
        """Check the input and read its labels; fails before any frame is written.

        Args:
            cameras: cameras to convert; the first carries the ground truth.
            max_gap_s: label record holes longer than this are reported in `gaps`.
            assumed_speed_mps: speed of inputs that record none.

        Raises:
            ConverterError: the input cannot be converted (message names the file).
        """
        raise NotImplementedError

    def frames(self):
        """Yield the drive's Frames (and CameraInfo triples) in source order."""
        raise NotImplementedError

    def close(self):
        """Release the input (again: no-op)."""


class BagDrive(DriveSource):
    """A ROS 1 bag with a steering record (dbw_mkz_msgs/SteeringReport)."""

    kind = 'bag'

    def __init__(self, path: Path):
        """Refer to the bag at `path`; `open` reads it."""
        super().__init__(path.stem)
        self.path = path
        self.bag = None
        self.image_conns: list = []
        self.info_conns: list = []
        self.steering = None     # LabelTrack of (theta rad, v m/s)

    def fingerprint(self) -> list:
        """Return the fingerprints of every source file (compared on re-runs)."""
        return [file_fingerprint(self.path)]

    def open(self, cameras, max_gap_s: float, assumed_speed_mps: float):
        """Check the input and read its labels; fails before any frame is written."""
        topics = {camera_topic(c) for c in CAMERAS} | {camera_info_topic(c) for c in CAMERAS}
        self.bag = Ros1Bag(self.path, topics | {STEERING_REPORT_TOPIC})
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
        self.has_camera_info = bool(self.info_conns)
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
                rows.append((stamp_ns_of(msg.header), float(msg.steering_wheel_angle),
                             float(msg.speed)))
                self.steering_definition = conn.msgdef.data
                self.steering_md5 = conn.digest
        except BagStreamError as err:
            self.close()
            raise UnreadableBagError(f'{self.path}: corrupt ROS 1 bag, reading failed after '
                                     f'{len(rows)} steering reports ({err.detail}); nothing '
                                     f'was converted from it') from err
        if len(rows) < 2:
            self.close()
            raise ConverterError(f'{self.path}: {len(rows)} steering report(s); need at least 2 '
                                 f'to interpolate labels')
        rows.sort(key=lambda r: r[0])
        stamps = np.array([r[0] for r in rows], np.int64)
        values = np.array([r[1:] for r in rows], np.float64)    # (m, 2)
        keep = np.concatenate([[True], np.diff(stamps) > 0])   # duplicate stamps: first wins
        self.steering = LabelTrack(stamps[keep], values[keep])   # (theta rad, v m/s)
        self.gaps = find_gaps(self.steering.stamps_ns, max_gap_s)
        self.steering_reports = int(len(self.steering.stamps_ns))
        fields = [line.split()[1] for line in self.steering_definition.split('=' * 80)[0]
                  .splitlines() if line.strip() and not line.lstrip().startswith('#')]
        self.extra = {'steering_report': {'md5': self.steering_md5, 'fields': fields,
                                          'reports': self.steering_reports}}

    def close(self):
        """Close the bag (again: no-op)."""
        bag, self.bag = self.bag, None
        if bag is not None:
            bag.close()

    def frames(self):
        """Yield Frames and (camera, stamp_ns, CameraInfo) in receive order; closes the bag."""
        info_topics = {c.topic for c in self.info_conns}
        try:
            for conn, _, msg in self.bag.messages(self.image_conns + self.info_conns):
                camera = conn.topic.split('/')[1].split('_')[0]
                stamp = stamp_ns_of(msg.header)
                if conn.topic in info_topics:
                    yield camera, stamp, camera_info_to_ros2(msg)
                    continue
                label = self.steering.at(stamp)
                yield Frame(camera, stamp, msg.header.frame_id, msg.format, msg.data, label)
        finally:
            self.close()


def _jpg_stamp(path: Path) -> int:
    try:
        return int(path.stem)
    except ValueError as err:
        raise ConverterError(f'{path}: image names must be <stamp_ns>.jpg') from err


class Ch2001Drive(DriveSource):
    """CH2_001: center/<stamp>.jpg and a CSV frame_id,steering_angle[,public][,speed]."""

    kind = 'ch2_001'

    def __init__(self, folder: Path, csv_path: Path):
        """Refer to the release folder and its label CSV; `open` reads them."""
        super().__init__(folder.name)
        self.folder, self.csv_path = folder, csv_path
        self.labels: dict = {}     # stamp_ns -> (theta rad, v m/s)
        self.images: list = []     # (stamp_ns, path) in stamp order
        self.missing_images = 0

    def fingerprint(self) -> list:
        """Return the fingerprints of every source file (compared on re-runs)."""
        return [file_fingerprint(self.csv_path), folder_fingerprint(self.folder / 'center')]

    def open(self, cameras, max_gap_s, assumed_speed_mps):
        """Check the input and read its labels; fails before any frame is written."""
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
        self.extra = {'label_csv': self.csv_path.name, 'missing_images': self.missing_images}

    def frames(self):
        """Yield the drive's Frames in stamp order."""
        for stamp, path in self.images:
            yield Frame('center', stamp, 'center_camera', 'jpeg', path.read_bytes(),
                        self.labels.get(stamp))


class InterpolatedDrive(DriveSource):
    """rwightman's udacity-driving-reader output: interpolated.csv + <camera>/<stamp>.jpg."""

    kind = 'interpolated_csv'

    def __init__(self, folder: Path):
        """Refer to the folder; `open` reads its interpolated.csv."""
        super().__init__(folder.name)
        self.folder = folder
        self.csv_path = folder / 'interpolated.csv'
        self.rows: list = []       # (stamp_ns, camera, filename, theta rad, v m/s)
        self.missing_images = 0    # image files named in the CSV but absent (set by frames())

    def fingerprint(self) -> list:
        """Return the fingerprints of every source file (compared on re-runs)."""
        fps = [file_fingerprint(self.csv_path)]
        for cam in CAMERAS:
            if (self.folder / cam).is_dir():
                fps.append(folder_fingerprint(self.folder / cam))
        return fps

    def open(self, cameras, max_gap_s, assumed_speed_mps):
        """Check the input and read its labels; fails before any frame is written."""
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
        self.extra = {'note': 'labels as interpolated by udacity-driving-reader (frames before '
                              'its first steering sample carry 0)'}

    def frames(self):
        """Yield the drive's Frames in stamp order (missing image files are counted)."""
        self.missing_images = 0
        for stamp, camera, filename, angle, speed in self.rows:
            path = self.folder / filename
            if not path.is_file():
                self.missing_images += 1
                continue
            yield Frame(camera, stamp, f'{camera}_camera', 'jpeg', path.read_bytes(),
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
            drives.append(BagDrive(path))
        elif (path / 'interpolated.csv').is_file():
            drives.append(InterpolatedDrive(path))
        elif (path / 'center').is_dir() and any((path / 'center').glob('*.jpg')):
            found = _csv_candidates(path)
            if len(found) != 1:
                what = 'no' if not found else f'{len(found)}'
                raise ConverterError(
                    f'{path}: CH2_001 layout with {what} label CSV(s) of columns frame_id,'
                    f'steering_angle besides final_example.csv (dummy angles); put exactly one '
                    f'there, e.g. HMB_3_ground_truth.csv')
            drives.append(Ch2001Drive(path, found[0]))
        else:
            bags = sorted(path.glob('*.bag'))
            if not bags:
                raise ConverterError(f'{path}: no Udacity data found (expected *.bag files, a '
                                     f'CH2_001 folder with center/*.jpg, or interpolated.csv)')
            drives.extend(BagDrive(b) for b in bags)
    names = [d.name for d in drives]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConverterError(f'two inputs make the same drive name(s) {dup}; rename one')
    return drives
