"""Bags in the package layout back into a dataset: labels follow the bag's ground truth."""

import cv2
import numpy as np
import pytest

from signattn_driver.data.bag_dataset import BagDatasetError, dataset_from_bags
from signattn_driver.data.bag_layout import DriveBagWriter, read_ground_truth
from signattn_driver.cli import main
from signattn_driver.data.dataset import Dataset
from signattn_driver.preprocessing import decode_image, to_hsv_u8
from signattn_driver.data.labels import smooth
from signattn_driver.vehicle import inverse_radius_from_steering, load_vehicle


def write_bag(path, camera_frames, n=6, ground_truth=True):
    with DriveBagWriter(path) as bag:
        for i in range(n):
            stamp = 2_000_000_000 + i * 50_000_000
            ok, jpeg = cv2.imencode('.jpg', camera_frames[i % len(camera_frames)])
            bag.write_image(stamp, jpeg.tobytes())
            if ground_truth:
                bag.write_ground_truth(stamp, 0.1 * i, 10.0 + i, 0.0)
        bag.write_image(2_000_000_000 + n * 50_000_000, b'not a jpeg')   # counted, skipped
    return path


def test_labels_and_frames_follow_the_bag(tmp_path, camera_frames):
    bag = write_bag(tmp_path / 'drive1', camera_frames)
    truth = read_ground_truth(bag)
    assert truth['steering_wheel_rad'].tolist() == pytest.approx([0.1 * i for i in range(6)])
    mkz = load_vehicle('mkz')
    out = dataset_from_bags([bag], tmp_path / 'set', mkz, smoothing_alpha=0.5)
    drive = Dataset(out).drive('drive1')
    assert len(drive) == 6
    theta = smooth(0.1 * np.arange(6), 0.5)
    speed = smooth(10.0 + np.arange(6), 0.5)
    assert np.allclose(drive.labels['inverse_radius_per_m'],
                       inverse_radius_from_steering(theta, speed, mkz))
    ok, jpeg = cv2.imencode('.jpg', camera_frames[2])
    assert np.array_equal(drive.frames(2, 3)[0], to_hsv_u8(decode_image(jpeg.tobytes())))
    assert Dataset(out).manifest['drives']['drive1']['dropped_outside_ground_truth'] == 1


def test_bag_without_ground_truth_is_refused(tmp_path, camera_frames):
    bag = write_bag(tmp_path / 'nogt', camera_frames, ground_truth=False)
    with pytest.raises(BagDatasetError, match='ground truth'):
        dataset_from_bags([bag], tmp_path / 'set', load_vehicle('mkz'))
    assert not (tmp_path / 'set').exists()


def test_cli(tmp_path, camera_frames, capsys):
    bag = write_bag(tmp_path / 'drive1', camera_frames)
    assert main(['convert', 'bag', str(bag), '--out', str(tmp_path / 'set')]) == 0
    assert len(Dataset(tmp_path / 'set').drive('drive1')) == 6
    assert main(['convert', 'bag', str(bag), '--out', str(tmp_path / 'set')]) == 2
    assert 'exists' in capsys.readouterr().err
