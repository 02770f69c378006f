"""Writing one drive: frames in source order to its ROS 2 bag and dataset drive.

JPEG decoding runs in a thread pool (OpenCV releases the GIL) while a window of frames waits
in order. Ground truth in the bag: one message triple per kept frame of the reference camera,
stamped with that frame's header stamp and carrying exactly the values of its label row (u from
the smoothed angle and speed, eq. 2-3, in the same float64 operations as the dataset writer).
"""

from collections import deque
import logging

import numpy as np

from signattn_driver.data.bag_layout import camera_topic, compressed_image, DriveBagWriter
from signattn_driver.data.labels import Smoother
from signattn_driver.preprocessing import compressed_to_hsv_u8, PreprocessingError
from signattn_driver.udacity.sources import Frame
from signattn_driver.vehicle import inverse_radius_from_steering

log = logging.getLogger(__name__)


def _preprocess(data):
    try:
        return compressed_to_hsv_u8(data)
    except PreprocessingError:
        return None


class DriveSink:
    """Writes frames (in source order) to the drive's bag and dataset; decodes in threads."""

    def __init__(self, bag: DriveBagWriter, drive, pool, reference: str, vehicle, alpha: float,
                 progress, window: int = 64):
        self.bag, self.drive, self.pool = bag, drive, pool
        self.reference, self.vehicle, self.alpha = reference, vehicle, alpha
        self.progress, self.window = progress, window
        self.pending = deque()
        self.last_stamp = {}
        self.smoother = Smoother(alpha)
        self.counts = {'camera_messages': {}, 'frames': {}, 'dropped_outside_steering': 0,
                       'corrupt_jpeg': 0, 'out_of_order': 0, 'ground_truth': 0,
                       'camera_info': 0}

    def add(self, item):
        """Queue a Frame or a (camera, stamp_ns, CameraInfo) triple; write what is ready."""
        if isinstance(item, Frame):
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
        if not isinstance(item, Frame):
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
            # eq. 2 as data.labels.smooth computes it, so that the bag's u equals the dataset's
            # label row bit for bit.
            theta_s, v_s = self.smoother.update(np.array([theta, v], np.float64))
            u = float(inverse_radius_from_steering(theta_s, v_s, self.vehicle))
            self.bag.write_ground_truth(item.stamp_ns, theta, v, u)
            self.counts['ground_truth'] += 1

    def finish(self):
        """Write every queued item (waits for their decoding)."""
        while self.pending:
            self._write(*self.pending.popleft())

    def cancel(self):
        """Drop the queue and cancel decoding not yet started."""
        for _, future in self.pending:
            if future is not None:
                future.cancel()
        self.pending.clear()
