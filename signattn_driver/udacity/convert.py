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

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
import logging
import os
from pathlib import Path
import shutil
import uuid

from signattn_driver.data.bag_layout import CAMERAS, DriveBagWriter, STORAGES
from signattn_driver.data.dataset import Dataset, DatasetError, DatasetWriter
from signattn_driver.data.labels import DEFAULT_SMOOTHING
from signattn_driver.udacity.errors import BagStreamError, ConverterError, UnreadableBagError
from signattn_driver.udacity.fingerprints import same_sources
from signattn_driver.udacity.sink import DriveSink
from signattn_driver.udacity.sources import default_split, discover
from signattn_driver.vehicle import load_vehicle

__all__ = ['ConversionResult', 'ConvertConfig', 'ConverterError', 'convert_udacity',
           'DEFAULT_ASSUMED_SPEED_MPS', 'REPORTED_STEERING_GAP_S']

log = logging.getLogger(__name__)

CONVERTER_VERSION = 1
# Steering reports come at ~50 Hz (20 ms); a hole in the record of 10 reports or more is worth
# reporting in the manifest (labels are interpolated across it; sequences are not cut here).
REPORTED_STEERING_GAP_S = 0.2
# CH2_001 has no speed. Mean speed of the CH2_002 training drives (33808 center frames of
# train_round2_part1..5), so that eq. 3's slip term is about right on average.
DEFAULT_ASSUMED_SPEED_MPS = 15.6


@dataclass
class ConvertConfig:
    """Settings of one conversion; all but `force`/`workers` are recorded in the manifest."""

    out: Path
    storage: str = 'mcap'                    # ROS 2 bag storage: 'mcap' | 'sqlite3'
    cameras: tuple = ('center',)             # the first one carries the bag's ground truth
    vehicle: str = 'mkz'                     # profile name or YAML path (eq. 3 constants)
    smoothing_alpha: float = DEFAULT_SMOOTHING
    max_gap_s: float = REPORTED_STEERING_GAP_S   # label record holes reported as gaps
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
    vehicle = _checked_vehicle(config)
    out = Path(config.out)
    dataset_root, bags_root = out / 'dataset', out / 'bags'
    _check_out(out, dataset_root, bags_root, config.force)
    drives = discover(inputs)
    settings = config.settings(vehicle)
    existing = _existing(dataset_root, config.force)
    kept = _kept_drives(existing, settings, dataset_root, config.force)
    result = ConversionResult(dataset=dataset_root, bags=bags_root)
    todo = _drives_to_convert(drives, kept, result, config.force)
    if not todo:
        log.info('nothing to convert: %s is up to date', out)
        return result
    failures = []
    with _opened_drives(todo, config, failures) as opened:
        if not opened:
            raise ConverterError('; '.join(map(str, failures)) + f'. Nothing was written to '
                                 f'{out}') from failures[0]
        return _write_all(opened, kept, existing, config, vehicle, settings, result, progress,
                          failures)


def _checked_vehicle(config: ConvertConfig):
    """Check storage and cameras of `config` and return its loaded vehicle profile."""
    if config.storage not in STORAGES:
        raise ConverterError(f'storage must be one of {sorted(STORAGES)}')
    bad = [c for c in config.cameras if c not in CAMERAS]
    if bad or not config.cameras:
        raise ConverterError(f'cameras must be among {CAMERAS}, got {list(config.cameras)}')
    try:
        return load_vehicle(config.vehicle)
    except (FileNotFoundError, ValueError) as err:
        raise ConverterError(str(err)) from err


def _check_out(out: Path, dataset_root: Path, bags_root: Path, force: bool):
    """Refuse an OUT that is a file or a non-empty folder holding no conversion (unless forced)."""
    if out.exists() and not out.is_dir():
        raise ConverterError(f'{out} exists and is not a folder')
    if out.is_dir() and any(out.iterdir()) and not dataset_root.exists() and \
            not bags_root.exists() and not force:
        raise ConverterError(f'{out} is not empty and holds no conversion; choose another '
                             f'--out or pass --force')


def _kept_drives(existing, settings: dict, dataset_root: Path, force: bool) -> dict:
    """Return the manifest entries (drive -> entry) of the existing output that may be kept.

    None are kept when the settings changed (which needs `force`) or nothing exists yet.
    """
    if existing is None:
        return {}
    old = existing.manifest.get('conversion', {}).get('settings')
    if old == settings:
        return dict(existing.manifest['drives'])
    if not force:
        diff = sorted(k for k in settings if (old or {}).get(k) != settings[k])
        raise ConverterError(f'{dataset_root} was converted with other settings '
                             f'({", ".join(diff)}); pass --force to rebuild it')
    log.warning('settings changed: rebuilding %s without its old drives', dataset_root)
    return {}


def _drives_to_convert(drives, kept: dict, result: ConversionResult, force: bool) -> list:
    """Return [(drive, sources)] to convert; up-to-date drives go to `result.kept`.

    A drive converted before from other inputs needs `force`; a drive to convert is removed
    from `kept` (its old entry is replaced).
    """
    todo = []
    for drive in drives:
        log.info('fingerprinting %s', drive.name)
        sources = drive.fingerprint()
        entry = kept.get(drive.name)
        if entry is not None and not force:
            if same_sources(entry.get('sources', []), sources) and \
                    _bag_ok(result.bags / drive.name):
                log.info('%s: already converted from the same inputs; kept', drive.name)
                result.kept.append(drive.name)
                continue
            raise ConverterError(f'{result.dataset}: drive {drive.name} was converted from '
                                 f'other inputs; pass --force to replace it')
        kept.pop(drive.name, None)
        todo.append((drive, sources))
    return todo


@contextmanager
def _opened_drives(todo: list, config: ConvertConfig, failures: list):
    """Open every drive of `todo` first, so bad inputs fail before any work; close on exit.

    Yields the [(drive, sources)] that opened; an unreadable bag is logged and appended to
    `failures` instead.
    """
    opened = []
    try:
        for drive, sources in todo:
            try:
                drive.open(config.cameras, config.max_gap_s, config.assumed_speed_mps)
            except UnreadableBagError as err:
                log.error('%s', err)
                failures.append(err)
                continue
            opened.append((drive, sources))
        yield opened
    finally:
        for drive, _ in opened:
            drive.close()


def _write_all(todo, kept, existing, config, vehicle, settings, result, progress, failures):
    advance = _frame_counter(sum(d.total_frames for d, _ in todo), progress)
    result.bags.mkdir(parents=True, exist_ok=True)
    writer = DatasetWriter(result.dataset, vehicle, config.smoothing_alpha,
                           chunk_frames=config.chunk_frames, overwrite=result.dataset.exists())
    staged = []
    try:
        for name, entry in kept.items():
            writer.add_existing_drive(name, existing.root / name, entry)
        _stage_drives(todo, writer, config, vehicle, advance, result, staged, failures)
        if not writer.drives:
            raise ConverterError('; '.join(map(str, failures)) + f'. Nothing was written to '
                                 f'{result.dataset.parent}') from failures[0]
        _install_bags(staged)   # bags first: the manifest written last marks completion
        writer.finalize(conversion={'converter': 'udacity', 'settings': settings,
                                    'alpha_s': config.smoothing_alpha,
                                    'totals': _count_totals(writer.drives)},
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


def _frame_counter(total: int, progress):
    """Return advance(n): count n more written frames and report (done, total) to `progress`."""
    done = [0]

    def advance(n):
        done[0] += n
        if progress is not None:
            progress(done[0], total)

    return advance


def _stage_drives(todo, writer, config, vehicle, advance, result, staged, failures):
    """Write each drive to the dataset and its bag to a hidden folder under OUT/bags.

    Appends (staged bag, final bag folder) to `staged` and fills `result`. A drive whose bag
    breaks while being read is left out (its error appended to `failures`); any other error
    removes that drive's staged bag and propagates.
    """
    with ThreadPoolExecutor(max_workers=max(1, config.workers)) as pool:
        for drive, sources in todo:
            # The storage file is named after the bag folder: build <tmp>/<drive>/.
            tmp_bag = result.bags / f'.partial-{uuid.uuid4().hex[:8]}' / drive.name
            try:
                entry = _write_drive(drive, sources, tmp_bag, writer, pool, config, vehicle,
                                     advance)
            except BagStreamError as err:
                shutil.rmtree(tmp_bag.parent, ignore_errors=True)
                log.error('%s', err)
                failures.append(err)
                continue
            except BaseException:
                shutil.rmtree(tmp_bag.parent, ignore_errors=True)
                raise
            staged.append((tmp_bag, result.bags / drive.name))
            result.converted.append(drive.name)
            result.counts[drive.name] = entry['counts']
            result.frames += entry['frames']


def _install_bags(staged: list):
    """Move the staged bags into place, popping each from `staged` once it is there."""
    while staged:
        tmp_bag, dst = staged.pop()
        _replace_dir(tmp_bag, dst)
        tmp_bag.parent.rmdir()


def _count_totals(drives: dict) -> dict:
    """Sum the manifest's per-drive counts that the conversion reports in its totals."""
    totals = {}
    for entry in drives.values():
        for key in ('dropped_outside_steering', 'corrupt_jpeg', 'out_of_order',
                    'ground_truth'):
            totals[key] = totals.get(key, 0) + entry.get('counts', {}).get(key, 0)
    return totals


def _write_drive(drive, sources, tmp_bag, writer, pool, config, vehicle, advance) -> dict:
    split = default_split(drive.name, drive.kind)
    dw = writer.drive(drive.name, split)
    sink = None
    try:
        with DriveBagWriter(tmp_bag, config.storage, cameras=drive.cameras,
                            with_camera_info=drive.has_camera_info) as bag:
            sink = DriveSink(bag, dw, pool, drive.cameras[0], vehicle, config.smoothing_alpha,
                             advance)
            try:
                for item in drive.frames():
                    sink.add(item)
            except BagStreamError as err:
                sink.cancel()
                raise err.after(sum(sink.counts['camera_messages'].values())) from err
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
