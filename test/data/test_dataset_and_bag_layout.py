"""Dataset writer/reader round trip and the bag layout read back with rosbags."""

import json

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from signattn_driver.data.bag_layout import (camera_topic, DriveBagWriter, INVERSE_RADIUS_TOPIC,
                                             STEERING_TOPIC, TWIST_TOPIC, TYPESTORE)
from signattn_driver.data.dataset import Dataset, DatasetError, DatasetWriter
from signattn_driver.data.labels import smooth, stamp_ns_of
from signattn_driver.vehicle import inverse_radius_from_steering, load_vehicle


def write_set(root, n=25, chunk=10, masks=False, overwrite=False):
    mkz = load_vehicle('mkz')
    writer = DatasetWriter(root, vehicle=mkz, smoothing_alpha=0.5, chunk_frames=chunk,
                           overwrite=overwrite)
    drive = writer.drive('d1', split='train')
    for i in range(n):
        frame = np.full((80, 160, 3), i, np.uint8)
        drive.append(frame, 1_000_000_000 + i * 50_000_000, 0.01 * i, 10.0,
                     mask_u8=np.full((80, 160), i % 2, np.uint8) if masks else None)
    writer.close_drive(drive, sources=[{'path': 'x.bag'}])
    return writer.finalize(note='test')


def test_round_trip_frames_labels_manifest(tmp_path):
    root = write_set(tmp_path / 'set', masks=True)
    ds = Dataset(root)
    assert ds.drive_names == ['d1']
    d = ds.drive('d1')
    assert len(d) == 25 and len(d.chunks) == 3
    frames = d.frames(8, 23)          # spans three chunks
    assert frames.shape == (15, 80, 160, 3)
    assert frames[:, 0, 0, 0].tolist() == list(range(8, 23))
    assert d.masks(9, 11)[:, 0, 0].tolist() == [1, 0]
    theta = 0.01 * np.arange(25)
    sm = smooth(theta, 0.5)
    assert np.allclose(d.labels['steering_wheel_smoothed_rad'], sm)
    assert np.allclose(d.labels['inverse_radius_per_m'],
                       inverse_radius_from_steering(sm, 10.0, ds.vehicle))
    assert d.labels['stamp_ns'][1] - d.labels['stamp_ns'][0] == 50_000_000
    manifest = json.loads((root / 'manifest.json').read_text())
    assert manifest['counts'] == {'frames': 25, 'drives': 1} and manifest['note'] == 'test'


def test_existing_output_needs_overwrite_and_partial_sets_are_not_datasets(tmp_path):
    root = write_set(tmp_path / 'set')
    with pytest.raises(DatasetError, match='exists'):
        write_set(root)
    write_set(root, n=5, overwrite=True)
    assert len(Dataset(root).drive('d1')) == 5
    writer = DatasetWriter(tmp_path / 'crashed', vehicle=load_vehicle('mkz'), smoothing_alpha=1)
    writer.drive('d1').append(np.zeros((80, 160, 3), np.uint8), 0, 0.0, 0.0)
    assert not (tmp_path / 'crashed').exists()          # nothing renamed before finalize
    with pytest.raises(DatasetError, match='manifest'):
        Dataset(writer.tmp)
    writer.abort()
    assert not writer.tmp.exists()


def test_bag_layout_round_trip(tmp_path):
    path = tmp_path / 'drive_bag'
    with DriveBagWriter(path) as bag:
        for i in range(3):
            stamp = 5_000_000_000 + i * 50_000_000
            bag.write_image(stamp, b'\xff\xd8jpeg')
            bag.write_ground_truth(stamp, 0.1 * i, 12.0, 0.002 * i)
    seen = {}
    with AnyReader([path], default_typestore=TYPESTORE) as reader:
        for conn, t, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            seen.setdefault(conn.topic, []).append((t, stamp_ns_of(msg.header), msg))
    assert {k: len(v) for k, v in seen.items()} == {
        camera_topic(): 3, STEERING_TOPIC: 3, TWIST_TOPIC: 3, INVERSE_RADIUS_TOPIC: 3}
    t, stamp, msg = seen[INVERSE_RADIUS_TOPIC][2]
    assert t == stamp == 5_100_000_000 and msg.vector.x == pytest.approx(0.004)
    assert seen[STEERING_TOPIC][1][2].position.tolist() == [pytest.approx(0.1)]
    assert seen[TWIST_TOPIC][2][2].twist.linear.x == 12.0
    assert bytes(seen[camera_topic()][0][2].data) == b'\xff\xd8jpeg'
