"""Udacity conversion: fixtures -> convert -> read back the ROS 2 bag and the dataset."""

import json

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.rosbag1 import Reader as Reader1
from rosbags.rosbag1 import Writer as Writer1

from fixtures.udacity_bags import (FixtureSpec, STEERING_REPORT_MD5_2016,
                                   steering_typestore, write_ch2_001_folder,
                                   write_interpolated_folder, write_udacity_bag)
from signattn_driver.cli import main as cli_main
from signattn_driver.data.bag_dataset import dataset_from_bags
from signattn_driver.data.bag_layout import (camera_info_topic, camera_topic, INVERSE_RADIUS_TOPIC,
                                             STEERING_TOPIC, TWIST_TOPIC)
from signattn_driver.data.dataset import Dataset
from signattn_driver.data.labels import find_gaps, interpolate_labels, smooth, stamp_ns_of
from signattn_driver.udacity.convert import (ConvertConfig, convert_udacity, ConverterError,
                                             DEFAULT_ASSUMED_SPEED_MPS)
from signattn_driver.udacity.errors import BagStreamError, UnreadableBagError
from signattn_driver.vehicle import inverse_radius_from_steering, load_vehicle


def convert(inputs, out, **kw):
    return convert_udacity([str(p) for p in inputs], ConvertConfig(out=out, **kw))


def read_bag(path):
    """Return topic -> list of (log_ns, message) of a ROS 2 bag folder."""
    out = {}
    with AnyReader([path]) as reader:
        for conn, t, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t, reader.deserialize(raw, conn.msgtype)))
    return out


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    """One 2016-layout bag with two cameras, a late steering start, a gap and a corrupt JPEG."""
    root = tmp_path_factory.mktemp('udacity')
    spec = FixtureSpec(frames=60, cameras=('center', 'left'), steering_start_s=0.12,
                       steering_gap_s=(1.0, 0.5), corrupt_frames=(20,))
    truth = write_udacity_bag(root / 'HMB_1.bag', spec)
    result = convert([root / 'HMB_1.bag'], root / 'out', cameras=('center', 'left'))
    return root, truth, result


def test_fixture_is_faithful_2016_steering_report(converted):
    root, _, _ = converted
    assert steering_typestore('2016').generate_msgdef(
        'dbw_mkz_msgs/msg/SteeringReport')[1] == STEERING_REPORT_MD5_2016
    with Reader1(root / 'HMB_1.bag') as bag:
        conns = {c.topic: c for c in bag.connections}
    steer = conns['/vehicle/steering_report']
    assert steer.msgtype == 'dbw_mkz_msgs/msg/SteeringReport'
    assert steer.digest == '25bf2c220d904531d8bc16ab5271325d'
    assert '# Current steering wheel angle in radians' in steer.msgdef.data   # as recorded
    assert conns[camera_topic('center')].msgtype == 'sensor_msgs/msg/CompressedImage'
    assert conns[camera_info_topic('left')].msgtype == 'sensor_msgs/msg/CameraInfo'
    # ~50 Hz over the 3.1 s - 0.12 s late start - 0.5 s gap of the steering record
    assert 45 <= steer.msgcount / (3.1 - 0.12 - 0.5) <= 55
    assert {'/vehicle/wheel_speed_report', '/can_bus_dbw/can_rx'} <= set(conns)


def test_round_trip_dataset_counts_stamps_labels(converted):
    root, truth, result = converted
    ds = Dataset(root / 'out' / 'dataset')
    assert ds.drive_names == ['HMB_1'] and result.converted == ['HMB_1']
    entry = ds.manifest['drives']['HMB_1']
    counts = entry['counts']
    # steering starts 0.12 s late: center frames 0..2 (stamps ~0, 50, 100 ms) are outside it;
    # left frames are 1 ms later, same three.
    assert counts['dropped_outside_steering'] == 6
    assert counts['corrupt_jpeg'] == 1
    assert counts['frames'] == {'center': 60 - 3 - 1, 'left': 60 - 3}
    assert counts['camera_messages'] == {'center': 60, 'left': 60}
    assert entry['split'] == 'train' and entry['source_kind'] == 'bag'
    assert entry['sources'][0]['size'] == (root / 'HMB_1.bag').stat().st_size
    assert len(entry['sources'][0]['sha256']) == 64
    skipped = {t['topic'] for t in entry['skipped_topics']}
    assert {'/can_bus_dbw/can_rx', '/vehicle/gps/fix', '/vehicle/wheel_speed_report'} == skipped
    assert len(entry['gaps']) == 1 and 0.5 <= entry['gaps'][0]['duration_s'] < 0.55
    assert ds.manifest['conversion']['alpha_s'] == 0.2
    assert ds.manifest['vehicle']['name'] == 'mkz'
    assert ds.manifest['sources'][0]['path'].endswith('HMB_1.bag')

    drive = ds.drive('HMB_1')
    lab = drive.labels
    center = lab['camera'] == 'center'
    kept = [i for i in range(3, 60) if i != 20]
    np.testing.assert_array_equal(lab['stamp_ns'][center], truth.camera_stamps_ns['center'][kept])
    theta, v, inside = interpolate_labels(
        truth.camera_stamps_ns['center'][kept], truth.steering_stamps_ns,
        truth.steering_wheel_rad.astype(np.float64), truth.speed_mps.astype(np.float64))
    assert inside.all()
    np.testing.assert_array_equal(lab['steering_wheel_rad'][center], theta)
    np.testing.assert_array_equal(lab['speed_mps'][center], v)
    sm = smooth(np.stack([theta, v], 1), 0.2)
    np.testing.assert_allclose(lab['inverse_radius_per_m'][center],
                               inverse_radius_from_steering(sm[:, 0], sm[:, 1], ds.vehicle))
    frames = drive.frames(0, len(drive))
    assert frames.shape == (len(drive), 80, 160, 3) and frames.dtype == np.uint8
    assert frames[:, :, :, 2].mean() > 50          # a real image, not zeros


def test_round_trip_ros2_bag(converted):
    root, truth, _ = converted
    ds = Dataset(root / 'out' / 'dataset')
    lab = ds.drive('HMB_1').labels
    msgs = read_bag(root / 'out' / 'bags' / 'HMB_1')
    images = msgs[camera_topic('center')]
    # the camera topic is copied whole and unchanged, dropped and corrupt frames included
    assert [stamp_ns_of(m.header) for _, m in images] == truth.camera_stamps_ns['center'].tolist()
    assert [bytes(m.data) for _, m in images] == truth.jpeg['center']
    assert images[0][1].header.frame_id == 'center_camera' and images[0][1].format == 'jpeg'
    assert len(msgs[camera_topic('left')]) == 60
    assert len(msgs[camera_info_topic('center')]) == 60
    info = msgs[camera_info_topic('center')][0][1]
    assert info.k[0] == 1.0e3 and info.distortion_model == 'plumb_bob'
    center = lab['camera'] == 'center'
    joint = msgs[STEERING_TOPIC]
    u_msgs = msgs[INVERSE_RADIUS_TOPIC]
    twist = msgs[TWIST_TOPIC]
    assert [stamp_ns_of(m.header) for _, m in joint] == lab['stamp_ns'][center].tolist()
    assert [t for t, _ in u_msgs] == lab['stamp_ns'][center].tolist()
    assert [m.position[0] for _, m in joint] == lab['steering_wheel_rad'][center].tolist()
    assert [m.twist.linear.x for _, m in twist] == lab['speed_mps'][center].tolist()
    # bit-identical to the dataset's label rows (same eq. 2 / eq. 3 arithmetic)
    assert [m.vector.x for _, m in u_msgs] == lab['inverse_radius_per_m'][center].tolist()


def test_convert_bag_labels_are_bit_identical_to_convert_udacity(converted, tmp_path):
    """`signattn convert bag` on the converter's own ROS 2 bag gives the same label rows."""
    root, _, _ = converted
    udacity = Dataset(root / 'out' / 'dataset')
    again = Dataset(dataset_from_bags([root / 'out' / 'bags' / 'HMB_1'], tmp_path / 'again',
                                      udacity.vehicle, udacity.manifest['conversion']['alpha_s']))
    first, second = udacity.drive('HMB_1'), again.drive('HMB_1')
    center = first.labels['camera'] == 'center'
    assert center.sum() == len(second) > 0
    for column in ('stamp_ns', 'steering_wheel_rad', 'speed_mps', 'steering_wheel_smoothed_rad',
                   'speed_smoothed_mps', 'inverse_radius_per_m'):
        a, b = first.labels[column][center], second.labels[column]
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), column
    np.testing.assert_array_equal(first.frames(0, len(first))[center],
                                  second.frames(0, len(second)))


def test_interpolation_and_eq3_hand_computed():
    s = np.array([1_000_000_000, 1_020_000_000, 1_040_000_000], np.int64) + 1_479_424_215 * 10**9
    theta = np.array([0.0, 0.2, -0.2])
    v = np.array([10.0, 12.0, 12.0])
    frames = s[0] + np.array([-1, 0, 5_000_000, 30_000_000, 40_000_000, 40_000_001])
    th, vv, inside = interpolate_labels(frames, s, theta, v)
    assert inside.tolist() == [False, True, True, True, True, False]
    np.testing.assert_allclose(th[1:5], [0.0, 0.05, 0.0, -0.2], atol=1e-12)
    np.testing.assert_allclose(vv[1:5], [10.0, 10.5, 12.0, 12.0], atol=1e-12)
    assert np.isnan(th[0]) and np.isnan(vv[5])
    # eq. 3 for the MKZ: 0.5 / (2.8498 * 16.0 * (1 + 0.0014 * 10^2)) = 0.5 / 51.980352
    u = inverse_radius_from_steering(0.5, 10.0, load_vehicle('mkz'))
    assert u == pytest.approx(0.00961901912476468, rel=1e-12)
    assert find_gaps(np.array([0, 20, 40, 300, 320]) * 1_000_000, 0.2) == [
        {'start_ns': 40_000_000, 'end_ns': 300_000_000, 'duration_s': 0.26}]


def test_later_steering_report_layout_converts(tmp_path):
    write_udacity_bag(tmp_path / 'HMB_2.bag', FixtureSpec(frames=12, layout='1.0.7',
                                                          with_camera_info=False))
    result = convert([tmp_path / 'HMB_2.bag'], tmp_path / 'out')
    entry = Dataset(tmp_path / 'out' / 'dataset').manifest['drives']['HMB_2']
    fields = entry['steering_report']['fields']
    assert 'timeout' in fields and 'driver' not in fields and 'fault_connector' not in fields
    assert entry['steering_report']['md5'] != STEERING_REPORT_MD5_2016
    assert result.frames == 12 and entry['counts']['frames'] == {'center': 12}


def test_ch2_001_folder(tmp_path):
    folder = tmp_path / 'CH2_001'
    truth = write_ch2_001_folder(folder, frames=15)
    (folder / 'HMB_3_release.bag').write_bytes(b'')     # camera-only bag of the release: ignored
    convert([folder], tmp_path / 'out')
    ds = Dataset(tmp_path / 'out' / 'dataset')
    entry = ds.manifest['drives']['CH2_001']
    assert entry['split'] == 'test' and entry['source_kind'] == 'ch2_001'
    assert entry['label_csv'] == 'HMB_3_ground_truth.csv'
    assert 'assumed constant 15.6 m/s' in entry['speed_source']
    lab = ds.drive('CH2_001').labels
    np.testing.assert_array_equal(lab['stamp_ns'], truth.camera_stamps_ns['center'])
    np.testing.assert_array_equal(lab['steering_wheel_rad'], truth.steering_wheel_rad)
    assert (lab['speed_mps'] == DEFAULT_ASSUMED_SPEED_MPS).all()
    msgs = read_bag(tmp_path / 'out' / 'bags' / 'CH2_001')
    assert [bytes(m.data) for _, m in msgs[camera_topic('center')]] == truth.jpeg['center']
    # with a speed column, it is used
    folder2 = tmp_path / 'HMB_3_with_speed'
    truth2 = write_ch2_001_folder(folder2, frames=6, with_speed=True)
    convert([folder2], tmp_path / 'out2')
    lab2 = Dataset(tmp_path / 'out2' / 'dataset').drive('HMB_3_with_speed').labels
    np.testing.assert_array_equal(lab2['speed_mps'], truth2.speed_mps)


def test_ch2_001_without_ground_truth_csv_is_refused(tmp_path):
    folder = tmp_path / 'CH2_001'
    write_ch2_001_folder(folder, frames=3)
    (folder / 'HMB_3_ground_truth.csv').unlink()      # only final_example.csv (dummy angles)
    with pytest.raises(ConverterError, match='final_example.csv'):
        convert([folder], tmp_path / 'out')


def test_interpolated_csv_folder(tmp_path):
    truth = write_interpolated_folder(tmp_path / 'HMB_5', frames=10, cameras=('center', 'left'))
    convert([tmp_path / 'HMB_5'], tmp_path / 'out', cameras=('center', 'left'))
    ds = Dataset(tmp_path / 'out' / 'dataset')
    lab = ds.drive('HMB_5').labels
    assert (lab['camera'] == 'center').sum() == 10 and (lab['camera'] == 'left').sum() == 10
    np.testing.assert_array_equal(lab['stamp_ns'][lab['camera'] == 'left'],
                                  truth.camera_stamps_ns['left'])
    assert ds.manifest['drives']['HMB_5']['source_kind'] == 'interpolated_csv'


# ---------------------------------------------------------------------------------------------
# Bad input


def test_truncated_bag_names_file_and_salvages_the_others(tmp_path):
    write_udacity_bag(tmp_path / 'bags' / 'HMB_1.bag', FixtureSpec(frames=8))
    write_udacity_bag(tmp_path / 'bags' / 'HMB_2.bag', FixtureSpec(frames=30))
    bad = tmp_path / 'bags' / 'HMB_2.bag'
    bad.write_bytes(bad.read_bytes()[:bad.stat().st_size * 2 // 3])
    with pytest.raises(ConverterError, match=r'HMB_2\.bag: unreadable.*Salvaged.*HMB_1') as err:
        convert([tmp_path / 'bags'], tmp_path / 'out')
    assert isinstance(err.value.__cause__, UnreadableBagError)
    ds = Dataset(tmp_path / 'out' / 'dataset')
    assert ds.drive_names == ['HMB_1']
    assert sorted(p.name for p in (tmp_path / 'out' / 'bags').iterdir()) == ['HMB_1']


def test_corrupt_record_inside_bag_is_reported_after_salvaging_the_others(tmp_path):
    path = tmp_path / 'HMB_4.bag'
    write_udacity_bag(path, FixtureSpec(frames=60, extra_topics=False))
    write_udacity_bag(tmp_path / 'HMB_5.bag', FixtureSpec(frames=5, extra_topics=False))
    with Reader1(path) as bag:    # break one camera message record in the second chunk
        cam = [c for c in bag.connections if c.topic == camera_topic('center')][0]
        info = bag.chunk_infos[1]
        entry = [e for e in bag.indexes[cam.id] if e.chunk_pos == info.pos][0]
        at = bag.chunks[info.pos].datapos + entry.offset
    data = bytearray(path.read_bytes())
    data[at:at + 4] = bytes(4)
    path.write_bytes(bytes(data))
    with pytest.raises(ConverterError, match=r'HMB_4\.bag: corrupt ROS 1 bag, reading failed '
                                             r'after \d+ camera frames.*Salvaged.*HMB_5') as err:
        convert([path, tmp_path / 'HMB_5.bag'], tmp_path / 'out')
    stream = err.value.__cause__     # one exception tree: a ConverterError with attributes
    assert isinstance(stream, BagStreamError) and isinstance(stream, ConverterError)
    assert stream.path == path and 0 < stream.frames_read < 60 and stream.detail
    assert Dataset(tmp_path / 'out' / 'dataset').drive_names == ['HMB_5']
    assert [p.name for p in (tmp_path / 'out' / 'bags').iterdir()] == ['HMB_5']
    with pytest.raises(ConverterError, match=r'HMB_4\.bag.*Nothing was written'):
        convert([path], tmp_path / 'out2')
    assert not (tmp_path / 'out2' / 'dataset').exists()


def test_missing_steering_topic_is_a_clear_error(tmp_path):
    write_udacity_bag(tmp_path / 'HMB_3_release.bag', FixtureSpec(frames=5, with_steering=False))
    with pytest.raises(ConverterError, match='no /vehicle/steering_report.*CH2_001'):
        convert([tmp_path / 'HMB_3_release.bag'], tmp_path / 'out')
    assert not (tmp_path / 'out' / 'dataset').exists()


def test_unparseable_custom_definition_is_skipped_not_fatal(tmp_path):
    path = tmp_path / 'HMB_6.bag'
    write_udacity_bag(path, FixtureSpec(frames=10, extra_topics=False))
    # Append a bag of the same content plus a custom type with a broken definition.
    broken = tmp_path / 'broken' / 'HMB_6.bag'
    broken.parent.mkdir()
    with Reader1(path) as src, Writer1(broken) as dst:
        conns = {c.id: dst.add_connection(c.topic, c.msgtype, msgdef=c.msgdef.data,
                                          md5sum=c.digest) for c in src.connections}
        odd = dst.add_connection('/vehicle/mystery', 'mystery_msgs/msg/Odd',
                                 msgdef='float32[ broken', md5sum='0' * 32)
        for conn, t, raw in src.messages():
            dst.write(conns[conn.id], t, raw)
        dst.write(odd, t, b'\x00' * 4)
    convert([broken], tmp_path / 'out')
    entry = Dataset(tmp_path / 'out' / 'dataset').manifest['drives']['HMB_6']
    assert entry['counts']['frames'] == {'center': 10}
    assert [t['topic'] for t in entry['skipped_topics']] == ['/vehicle/mystery']


def test_rerun_skips_same_inputs_and_refuses_to_overwrite(tmp_path):
    bag = tmp_path / 'HMB_1.bag'
    write_udacity_bag(bag, FixtureSpec(frames=8))
    out = tmp_path / 'out'
    convert([bag], out)
    manifest = out / 'dataset' / 'manifest.json'
    before = manifest.stat().st_mtime_ns
    again = convert([bag], out)
    assert again.kept == ['HMB_1'] and again.converted == []
    assert manifest.stat().st_mtime_ns == before            # nothing rewritten
    # a new drive is added, the old one kept
    write_udacity_bag(tmp_path / 'HMB_2.bag', FixtureSpec(frames=6))
    more = convert([bag, tmp_path / 'HMB_2.bag'], out)
    assert more.kept == ['HMB_1'] and more.converted == ['HMB_2']
    assert Dataset(out / 'dataset').drive_names == ['HMB_1', 'HMB_2']
    # different inputs under an existing drive name: refused without force
    bag.unlink()
    write_udacity_bag(bag, FixtureSpec(frames=9, seed=3))
    with pytest.raises(ConverterError, match='HMB_1 was converted from other inputs.*--force'):
        convert([bag], out)
    assert len(Dataset(out / 'dataset').drive('HMB_1')) == 8
    with pytest.raises(ConverterError, match='other settings.*smoothing_alpha'):
        convert([bag], out, smoothing_alpha=0.5)
    convert([bag], out, force=True)
    ds = Dataset(out / 'dataset')
    assert len(ds.drive('HMB_1')) == 9 and sorted(ds.drive_names) == ['HMB_1', 'HMB_2']
    assert not [p for p in out.rglob('.*')]                 # no temp folders left


def test_crash_leaves_no_half_written_output(tmp_path):
    bag = tmp_path / 'HMB_1.bag'
    write_udacity_bag(bag, FixtureSpec(frames=30))

    def crash(done, total):
        if done == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        convert_udacity([bag], ConvertConfig(out=tmp_path / 'out'), progress=crash)
    assert not (tmp_path / 'out' / 'dataset').exists()
    assert list((tmp_path / 'out' / 'bags').iterdir()) == []
    assert not [p for p in (tmp_path / 'out').rglob('.*')]


def test_non_empty_foreign_output_needs_force(tmp_path):
    bag = tmp_path / 'HMB_1.bag'
    write_udacity_bag(bag, FixtureSpec(frames=4))
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'notes.txt').write_text('mine')
    with pytest.raises(ConverterError, match='--force'):
        convert([bag], tmp_path / 'out')
    convert([bag], tmp_path / 'out', force=True)
    assert (tmp_path / 'out' / 'notes.txt').read_text() == 'mine'


def test_cli_exit_codes_and_sqlite3(tmp_path, capsys):
    bag = tmp_path / 'HMB_1.bag'
    write_udacity_bag(bag, FixtureSpec(frames=5))
    out = tmp_path / 'out'
    assert cli_main(['convert', 'udacity', str(bag), '--out', str(out), '--storage', 'sqlite3',
                     '--smoothing', '0.5', '--no-progress']) == 0
    assert 'converted 1 drive(s) (5 frames)' in capsys.readouterr().out
    assert list((out / 'bags' / 'HMB_1').glob('*.db3'))
    assert json.loads((out / 'dataset' / 'manifest.json').read_text())['smoothing_alpha'] == 0.5
    write_udacity_bag(tmp_path / 'cam_only.bag', FixtureSpec(frames=3, with_steering=False))
    assert cli_main(['convert', 'udacity', str(tmp_path / 'cam_only.bag'), '--out',
                     str(tmp_path / 'o2'), '--no-progress']) == 2
    err = capsys.readouterr().err
    assert 'cam_only.bag: no /vehicle/steering_report' in err
    assert cli_main(['convert', 'udacity', str(tmp_path / 'nope.bag'), '--out',
                     str(tmp_path / 'o3'), '--no-progress']) == 2
    assert cli_main(['convert', 'udacity', str(bag), '--out', str(tmp_path / 'o4'),
                     '--cameras', 'front', '--no-progress']) == 2
