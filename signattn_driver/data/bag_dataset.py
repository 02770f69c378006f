"""Build a dataset (signattn_driver.data.dataset) from ROS 2 bags in this package's layout.

Converted Udacity drives and simulated drives both carry their camera and ground truth in the
layout of `bag_layout`; this turns such bags back into network-ready frames and labels, e.g. to
evaluate a checkpoint offline on a drive that was only kept as a bag (`signattn convert bag`).
Labels come from the bag's raw steering-wheel angle and speed, interpolated to each frame stamp
by data.labels (as the converter does), and the writer applies eq. 2 and eq. 3 exactly as the
converter does: a converted Udacity drive turned back into a dataset has bit-identical labels.
"""

import logging
from pathlib import Path

import numpy as np

from signattn_driver.data.bag_layout import iter_camera_frames, read_ground_truth
from signattn_driver.data.dataset import DatasetWriter
from signattn_driver.data.labels import DEFAULT_SMOOTHING, LabelTrack
from signattn_driver.errors import DataError
from signattn_driver.preprocessing import compressed_to_hsv_u8, PreprocessingError
from signattn_driver.vehicle import VehicleProfile

log = logging.getLogger(__name__)


class BagDatasetError(DataError):
    """A bag that lacks what a dataset needs (camera frames, steering and speed)."""


def dataset_from_bags(bags, out, vehicle: VehicleProfile, smoothing_alpha=DEFAULT_SMOOTHING,
                      split: str = 'test', camera: str = 'center', overwrite: bool = False,
                      progress=None) -> Path:
    """Write one drive per bag (named after the bag folder) into a new dataset at `out`.

    Args:
        bags: ROS 2 bag folders in the bag_layout layout.
        out: dataset folder to create.
        vehicle: profile for eq. 3.
        smoothing_alpha: alpha_s of eq. 2.
        split: split recorded for every frame.
        camera: which camera to read.
        overwrite: replace an existing dataset.
        progress: optional callable(frames_done) called after each frame.

    Returns:
        The dataset path.

    Raises:
        BagDatasetError: a bag without ground truth or camera frames.
    """
    writer = DatasetWriter(out, vehicle=vehicle, smoothing_alpha=smoothing_alpha,
                           overwrite=overwrite)
    done = 0
    try:
        for bag in map(Path, bags):
            truth = read_ground_truth(bag)
            t = truth['stamp_ns']
            if len(t) == 0 or np.isnan(truth['steering_wheel_rad']).all() or \
                    np.isnan(truth['speed_mps']).all():
                raise BagDatasetError(f'{bag}: needs steering and speed ground truth '
                                      f'(/vehicle/steering_wheel_angle, /vehicle/twist)')
            track = LabelTrack(t, np.column_stack([truth['steering_wheel_rad'],
                                                   truth['speed_mps']]))
            drive = writer.drive(bag.name, split=split)
            outside = corrupt = 0
            for stamp_ns, data in iter_camera_frames(bag, camera):
                label = track.at(stamp_ns)
                if label is None:
                    outside += 1
                    continue
                try:
                    hsv = compressed_to_hsv_u8(data)
                except PreprocessingError:
                    corrupt += 1
                    continue
                drive.append(hsv, stamp_ns, *label, camera=camera)
                done += 1
                if progress:
                    progress(done)
            if not len(drive):
                raise BagDatasetError(f'{bag}: no {camera} camera frames inside the ground truth')
            writer.close_drive(drive, source=str(bag), dropped_outside_ground_truth=outside,
                               corrupt_frames=corrupt)
            log.info('%s: %d frames (%d outside ground truth, %d corrupt)', bag.name, len(drive),
                     outside, corrupt)
        return writer.finalize(source='bags')
    except BaseException:
        writer.abort()
        raise
