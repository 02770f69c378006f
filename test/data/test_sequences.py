"""Segments, validation splits and windows of signattn_driver.data.sequences."""

import pickle

import numpy as np
import pytest

from signattn_driver.data.dataset import Dataset, DatasetError, DatasetWriter
from signattn_driver.data.sequences import DriveSequences, make_episodes, SequenceIndex
from signattn_driver.vehicle import load_vehicle

PERIOD_NS = 50_000_000   # 20 Hz


def write_set(root, drives=(('a', 'train', 100),), cameras=('center',), gap_at=None):
    """Frames carry their own row number in pixel (0, 0, 0) and their camera in (0, 0, 1)."""
    w = DatasetWriter(root, vehicle=load_vehicle('mkz'), smoothing_alpha=1.0, chunk_frames=16)
    for name, split, n in drives:
        d = w.drive(name, split=split)
        row = 0
        for i in range(n):
            stamp = 10**9 + i * PERIOD_NS + (10**10 if gap_at is not None and i >= gap_at else 0)
            for c, camera in enumerate(cameras):
                f = np.zeros((80, 160, 3), np.uint8)
                f[0, 0, 0], f[0, 0, 1] = row % 256, c
                d.append(f, stamp + c, 0.01 * i, 10.0, camera=camera)
                row += 1
        w.close_drive(d)
    return Dataset(w.finalize())


def test_segments_keep_one_camera_in_order_and_break_at_time_gaps(tmp_path):
    ds = write_set(tmp_path / 's', cameras=('left', 'center', 'right'), gap_at=60)
    index = SequenceIndex([ds], camera='center')
    assert [len(s) for s in index.segments] == [60, 40]
    w = index.window(index.segments[0], 5, 9)
    assert w['frames'].shape == (4, 80, 160, 3)
    assert w['frames'][:, 0, 0, 1].tolist() == [1, 1, 1, 1]              # centre only
    assert w['frames'][:, 0, 0, 0].tolist() == [3 * i + 1 for i in range(5, 9)]
    assert np.all(np.diff(w['stamp_ns']) == PERIOD_NS)
    assert w['inverse_radius_per_m'].dtype == np.float64 and w['speed_smoothed_mps'][0] == 10.0
    labels = index.labels(index.segments[0], 5, 9)
    assert set(labels) == set(w) - {'frames'}
    assert all(np.array_equal(labels[k], w[k]) for k in labels)
    with pytest.raises(DatasetError, match='camera'):
        SequenceIndex([ds], camera='rear')


def _time_gap_s(train, val):
    t = np.sort(np.concatenate([s.stamps_ns for s in train]))
    v = np.concatenate([s.stamps_ns for s in val])
    i = np.clip(np.searchsorted(t, v), 1, len(t) - 1)
    return min(np.abs(t[i] - v).min(), np.abs(t[i - 1] - v).min()) / 1e9


def test_time_blocks_never_put_neighbouring_frames_on_both_sides(tmp_path):
    ds = write_set(tmp_path / 's', drives=(('a', 'train', 400), ('b', 'train', 300)))
    index = SequenceIndex([ds])
    for seed in range(5):
        train, val = index.split('time_blocks', val_fraction=0.3, block_s=2.0, guard_s=0.5,
                                 seed=seed)
        assert val and train
        for drive in ('a', 'b'):
            tr = [s for s in train if s.drive == drive]
            va = [s for s in val if s.drive == drive]
            if tr and va:
                assert _time_gap_s(tr, va) > 0.5
                rows_t = np.concatenate([s.rows for s in tr])
                rows_v = np.concatenate([s.rows for s in va])
                assert not np.isin(rows_v + 1, rows_t).any()
                assert not np.isin(rows_v - 1, rows_t).any()
        # held-out frames: about the asked share, and the split is a function of the seed
        n_val = sum(map(len, val))
        assert 0.15 < n_val / 700 < 0.45
        again = index.split('time_blocks', val_fraction=0.3, block_s=2.0, guard_s=0.5,
                            seed=seed)[1]
        assert [s.rows.tolist() for s in again] == [s.rows.tolist() for s in val]


def test_drive_split_by_name_by_manifest_and_by_fraction(tmp_path):
    ds = write_set(tmp_path / 's', drives=(('a', 'train', 30), ('b', 'val', 20),
                                           ('c', 'train', 25), ('t', 'test', 10)))
    index = SequenceIndex([ds])
    assert {s.drive for s in index.segments} == {'a', 'b', 'c'}     # 'test' is never used
    train, val = index.split('drive')
    assert {s.drive for s in val} == {'b'} and {s.drive for s in train} == {'a', 'c'}
    train, val = index.split('drive', val_drives=['c'])
    assert {s.drive for s in val} == {'c'}
    with pytest.raises(ValueError, match='zzz'):
        index.split('drive', val_drives=['zzz'])
    one = SequenceIndex([write_set(tmp_path / 'one')])
    with pytest.raises(ValueError, match='time_blocks'):
        one.split('drive', val_fraction=0.2)
    train, val = one.split('drive', val_fraction=0.0)
    assert val == [] and len(train) == 1


def test_episodes_cover_every_frame_once_and_windows_are_padded(tmp_path):
    ds = write_set(tmp_path / 's', drives=(('a', 'train', 23), ('b', 'train', 9)))
    index = SequenceIndex([ds])
    eps = make_episodes(index.segments, sequence_length=4, episode_windows=2)
    assert eps.frames == 32
    for seg_id, seg in enumerate(index.segments):
        spans = [(a, b) for s, a, b in eps.windows if s == seg_id]
        assert spans[0][0] == 0 and spans[-1][1] == len(seg)
        assert all(b0 == a1 for (_, b0), (a1, _) in zip(spans, spans[1:]))
    for episode in eps.episodes:
        assert 1 <= len(episode) <= 2
        assert episode == list(range(episode[0], episode[0] + len(episode)))
    data = DriveSequences(index, index.segments, eps)
    last = data[5]                                  # rows 20..22 of drive a, then padding
    assert last['frames'].shape == (4, 80, 160, 3)
    assert last['valid'].tolist() == [True, True, True, False]
    assert last['frames'][:3, 0, 0, 0].tolist() == [20, 21, 22]
    empty = data[(-1, 1.0, False)]
    assert not empty['valid'].any()
    clone = pickle.loads(pickle.dumps(data))        # what a spawned worker receives
    assert clone._datasets is None
    assert clone[5]['frames'].equal(last['frames'])
