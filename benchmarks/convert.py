"""End-to-end Udacity conversion speed (frames/s) and peak memory on a fixture bag."""

import os
from pathlib import Path
import platform
import resource
import subprocess
import sys
import tempfile
import time

import cv2
import torch

from signattn_driver.udacity.convert import ConvertConfig, convert_udacity


def add_arguments(parser):
    """Options of `signattn benchmark convert`."""
    parser.add_argument('--frames', type=int, default=5000, help='center frames in the bag')
    parser.add_argument('--cameras', default='center', help='cameras in the bag and converted')
    parser.add_argument('--workers', type=int, default=2, help='JPEG decode threads')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch.set_num_threads and cv2.setNumThreads (per decode thread)')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap')
    parser.add_argument('--profile-csv', type=Path,
                        help='drive the steering profile from real labels, e.g. '
                             'train_round2_part1.csv (default: analytic)')
    parser.add_argument('--keep', type=Path, help='write the bag and output here (kept)')


def _rss_mib(field: str) -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    return float('nan')


def _write_fixture(path: Path, args):
    # In a child process, so that this process's peak RSS measures the conversion alone.
    cameras = tuple(c for c in args.cameras.split(',') if c)
    test_dir = Path(__file__).resolve().parent.parent / 'test'   # fixtures live under test/
    code = (f'import sys; sys.path.insert(0, {str(test_dir)!r}); from pathlib import Path\n'
            'from fixtures.udacity_bags import FixtureSpec, write_udacity_bag\n'
            f'csv = {str(args.profile_csv)!r} if {args.profile_csv is not None} else None\n'
            f'write_udacity_bag(Path({str(path)!r}), FixtureSpec(frames={args.frames}, '
            f'cameras={cameras!r}, profile_csv=csv))\n')
    subprocess.run([sys.executable, '-c', code], check=True)


def run(args) -> dict:
    """Write the fixture (untimed), convert it (timed) and report frames/s and peak RSS."""
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        bag = root / 'HMB_bench.bag'
        if not bag.exists():
            t0 = time.perf_counter()
            _write_fixture(bag, args)
            fixture_s = time.perf_counter() - t0
        else:
            fixture_s = 0.0
        rss_before = _rss_mib('VmRSS')
        config = ConvertConfig(out=root / 'out', storage=args.storage,
                               cameras=tuple(c for c in args.cameras.split(',') if c),
                               workers=args.workers, force=True)
        t0, cpu0 = time.perf_counter(), os.times()
        result = convert_udacity([bag], config)
        seconds, cpu1 = time.perf_counter() - t0, os.times()
        # CPU time of all threads: on a shared machine, wall time depends on the neighbours;
        # frames per CPU-second x cores is what an idle machine would reach at best.
        cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        counts = result.counts['HMB_bench']
        center = counts['camera_messages']['center']
        all_frames = sum(counts['camera_messages'].values())
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {
            'frames_center': center, 'frames_all_cameras': all_frames,
            'frames_written_to_dataset': result.frames,
            'seconds': round(seconds, 3),
            'center_frames_per_s': round(center / seconds, 1),
            'all_frames_per_s': round(all_frames / seconds, 1),
            'cpu_seconds': round(cpu_s, 2),
            'cpu_ms_per_center_frame': round(1e3 * cpu_s / center, 2),
            'load_average_1min': os.getloadavg()[0],
            'bag_mib': round(bag.stat().st_size / 2**20, 1),
            'fixture_write_s': round(fixture_s, 1),
            'rss_before_mib': round(rss_before, 1), 'peak_rss_mib': round(peak, 1),
            'workers': args.workers, 'threads': args.threads, 'storage': args.storage,
            'cpu_count': os.cpu_count(), 'cpu': platform.processor() or platform.machine(),
            'opencv': cv2.__version__, 'profile_csv': str(args.profile_csv or 'analytic'),
        }
