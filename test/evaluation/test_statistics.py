"""Paired batch-means t-test: size on AR(1) nulls, power, CI duality, runs that stay apart."""

import json
import math

import numpy as np
import pytest

from signattn_driver.evaluation.comparisons import contiguous_runs, paired_on_frames
from signattn_driver.evaluation.statistics import batch_frames, batch_ids, lag1_correlation, \
    paired_batch_test, welch_t_test


def ar1(rng, reps, lengths, rho):
    """(reps, sum(lengths)) stationary unit-variance AR(1) series, independent between runs."""
    out = []
    for n in lengths:
        x = np.empty((reps, n))
        x[:, 0] = rng.normal(size=reps)
        for t in range(1, n):
            x[:, t] = rho * x[:, t - 1] + math.sqrt(1 - rho ** 2) * rng.normal(size=reps)
        out.append(x)
    return np.concatenate(out, 1)


def _previous_block_bootstrap_p(d, runs, rng, samples=300):
    """Return the replaced test's p: 4-frame moving blocks that wrap inside their window."""
    n, length = len(d), 4
    starts = np.flatnonzero(np.r_[True, runs[1:] != runs[:-1]])
    sizes = np.diff(np.r_[starts, n])
    first, size = np.repeat(starts, sizes), np.repeat(sizes, sizes)
    pos = rng.integers(0, n, size=samples * (n // length))
    rel = (pos - first[pos])[:, None] + np.arange(length)[None]
    means = d[(first[pos][:, None] + rel % size[pos][:, None]).reshape(samples, -1)].mean(1)
    return (1 + np.sum(np.abs(means - d.mean()) >= abs(d.mean()))) / (samples + 1)


@pytest.mark.parametrize('lengths', [[60], [15, 15, 15, 15]], ids=['one run', '4 windows'])
def test_false_positive_rate_holds_at_strong_autocorrelation(lengths):
    # Fast version of `signattn benchmark statistics_size` (docs/experiments.md): 400 nulls
    # at lag-1 correlation 0.8, where the previous block bootstrap rejected 20-30 %. The band
    # [0.02, 0.09] is 3.5 Monte-Carlo standard errors around 0.05 at 400 repetitions.
    rng = np.random.default_rng(11)
    runs = np.repeat(np.arange(len(lengths)), lengths)
    null = ar1(rng, 400, lengths, 0.8)
    zero = np.zeros(null.shape[1])
    fpr = np.mean([paired_batch_test(x, zero, runs)['p'] < 0.05 for x in null])
    assert 0.02 <= fpr <= 0.09
    old = np.mean([_previous_block_bootstrap_p(x, runs, rng) < 0.05 for x in null[:200]])
    assert old > 0.09                      # the tolerance does catch the replaced method


def test_finds_a_known_difference_and_covers_it():
    rng = np.random.default_rng(3)
    n = 240
    base = 100 + 10 * ar1(rng, 1, [n], 0.7)[0]     # shared, autocorrelated frame effect
    b = base + rng.normal(0, 1, n)
    a = base + 1.0 + ar1(rng, 1, [n], 0.5)[0]      # true mean difference 1.0
    res = paired_batch_test(a, b)                  # one run of 240 frames: cut into batches
    assert res['n'] == n and res['units'] >= 4 and res['df'] == res['units'] - 1
    assert res['unit_frames'] > 1
    assert res['ci_low'] < 1.0 < res['ci_high'] and res['ci_low'] > 0 and res['p'] < 0.01
    assert res['frame_mean_diff'] == pytest.approx(np.mean(a - b))
    # Pairing removes the shared frame effect an unpaired test has to fight.
    assert welch_t_test(a, b)['p'] > res['p']
    # Dependence shrinks the sample: fewer effective frames than frames.
    assert 1 < res['n_effective'] < n
    # Several runs (windows, drives): each run is one unit, never cut.
    by_run = paired_batch_test(a, b, np.repeat(np.arange(4), 60))
    assert by_run['units'] == 4 and by_run['df'] == 3 and by_run['unit_frames'] == 0


def test_confidence_interval_is_the_dual_of_the_p_value():
    rng = np.random.default_rng(5)
    lengths = [20, 20, 16, 4]
    runs = np.repeat(np.arange(4), lengths)
    seen = set()
    for x in ar1(rng, 300, lengths, 0.5) + np.linspace(0, 1.2, 300)[:, None]:
        res = paired_batch_test(x, np.zeros_like(x), runs)
        excludes = res['ci_low'] > 0 or res['ci_high'] < 0
        assert excludes == (res['p'] < 0.05)
        seen.add(excludes)
        assert res['ci_low'] <= res['mean_diff'] <= res['ci_high']
    assert seen == {True, False}


def test_batches_stay_inside_runs_and_grow_with_autocorrelation():
    assert batch_frames(0.0) == 1
    assert batch_frames(0.5) < batch_frames(0.8) < batch_frames(0.95)
    runs = np.repeat([0, 1, 2], [30, 10, 3])
    ids = batch_ids(runs, 8)
    for k in np.unique(ids):
        members = np.flatnonzero(ids == k)
        assert np.all(np.diff(members) == 1)            # contiguous frames
        assert len(set(runs[members])) == 1              # never across runs
    assert len(np.unique(ids)) == 3 + 1 + 1
    assert len(np.unique(batch_ids(np.zeros(60, int), 1000))) == 2   # one run: cut in two
    rng = np.random.default_rng(0)
    assert lag1_correlation(rng.normal(size=2000)) < 0.1
    assert abs(lag1_correlation(ar1(rng, 1, [60], 0.8)[0]) - 0.8) < 0.25
    # Two runs: lagged products never pair the last frame of one with the first of the next.
    step = np.r_[np.zeros(50), np.ones(50) * 100]
    assert lag1_correlation(step, np.repeat([0, 1], 50)) == 0.0


def test_touching_windows_of_a_drive_form_one_run():
    period = 50_000_000
    frames = {'run': [0] * 3 + [1] * 3 + [2] * 2,
              'drive': ['a'] * 3 + ['b'] * 3 + ['a'] * 2,
              'stamp_ns': [0, period, 2 * period, 0, period, 2 * period,
                           3 * period, 4 * period]}
    order, runs = contiguous_runs(frames)
    assert list(order) == [0, 1, 2, 6, 7, 3, 4, 5]
    assert list(runs) == [0, 0, 0, 0, 0, 1, 1, 1]
    res = paired_on_frames(frames, np.arange(8.0), np.zeros(8))
    assert res['runs'] == 2 and res['drives'] == 2 and res['n'] == 8
    frames['stamp_ns'][6:] = [60 * period, 61 * period]           # far apart: separate runs
    assert list(contiguous_runs(frames)[1]) == [0, 0, 0, 1, 1, 2, 2, 2]


def test_size_check_command_writes_every_case(tmp_path, capsys):
    # The documented command behind docs/results/statistics_size_cpu.json, at a toy size.
    from signattn_driver.cli import main
    out = tmp_path / 'size.json'
    assert main(['benchmark', 'statistics_size', '--reps', '20', '--power-reps', '5',
                 '--bootstrap-samples', '20', '--out', str(out)]) == 0
    capsys.readouterr()
    res = json.loads(out.read_text())
    assert res['machine'] and res['reps'] == 20
    assert len(res['cases']) == 10 and {c['rho'] for c in res['cases']} == {0.5, 0.8}
    for case in res['cases']:
        chosen = case['tests'][res['chosen']]
        assert 0.0 <= chosen['fpr'] <= 1.0 and chosen['ci_dual_of_p'] is True
        assert chosen['median_units'] >= 2
        assert 'previous: moving-block bootstrap' in case['tests']


def test_rerun_recomputes_a_saved_report_from_its_per_frame_aucs(tmp_path, monkeypatch):
    import shutil
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    monkeypatch.syspath_prepend(str(root))
    from benchmarks.rerun_paired import rerun
    src = root / 'docs' / 'results' / 'experiments' / 'eval_scratch' / 'report.json'
    path = tmp_path / 'report.json'
    shutil.copy(src, path)
    report = json.loads(path.read_text())
    report['paired'] = [{**t, 'p': 0.5} for t in report['paired']]   # stale results
    path.write_text(json.dumps(report))
    out = rerun(path, write=True)
    fresh = json.loads(path.read_text())['paired']
    assert len(out['paired']) == len(fresh) > 0
    assert all(r['previous_p'] == 0.5 for r in out['paired'])
    assert all(t['units'] == 3 and t['df'] == 2 and t['drives'] == 3 for t in fresh)
    assert any(t['p'] != 0.5 for t in fresh)
    assert 'p (batch t)' in (tmp_path / 'report.md').read_text()
