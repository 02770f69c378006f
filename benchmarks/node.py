"""Camera-to-command latency of the drive node over loopback DDS, against a naive node.

Three processes: a camera publisher (640x480 JPEG, sensor-data QoS), the node under test and
this process, which subscribes to `steering/command`. Each frame's header carries its publish
time (wall clock) and, in frame_id, its phase and sequence number; the node copies the header
into the command, so latency is receipt time minus stamp and drops are missing sequence numbers.
Phases: warm-up, 20 Hz (the Udacity camera rate), faster fixed rates, then flat out. The same
schedule runs against each variant: the product node at each precision, and a naive node
(per-frame numpy float64 preprocessing, CPU tensors re-created per frame, synchronous `.item()`
on every output, all in the ROS callback) whose p50/p99 are the ratio to beat.

Latency down to its parts, in the same run: the floor (benchmarks/node_floor.py: a
`Predictor.step`, a JPEG decode and one DDS hop of the same camera message, each timed on its
own) that the node's p50 is compared with (`ratio_node_over_floor_<precision>_p50`), and the
node's own per-stage p50s (from /diagnostics), which show where the rest goes. The node's thread
count is the one (1 or 2) with the lower p50 in a short 20 Hz run of the node itself. Floor and
variants are measured in turn `--repeats` times; the summary is the median over repeats.
`--inputs compressed,raw` adds the node on raw 640x480 bgr8 frames (sent reliable). A short
probe also counts raw frames that arrive over Fast DDS LARGE_DATA for each input reliability.
"""

import os
from pathlib import Path
import platform
import sys
import tempfile
import time

import numpy as np

from benchmarks.node_floor import dds_hop_ms, floor_parts, floor_ratios, qos_probe
from benchmarks.node_processes import (camera_counts, child_env, close_listener, cpu_seconds,
                                       open_listener, require_heard, start_camera)
from signattn_driver.data.labels import stamp_ns_of
from signattn_driver.latency import latency_summary
from signattn_driver.ros.node_process import node_command, NodeProcess


def add_arguments(parser):
    """Options of `signattn benchmark node`."""
    parser.add_argument('--checkpoint', help='checkpoint to run (default: a paper-size model '
                        'with random weights)')
    parser.add_argument('--lstm-hidden', type=int, default=1024, help='random model size')
    parser.add_argument('--precisions', default='int8,fp32',
                        help='product-node variants to measure (comma separated)')
    parser.add_argument('--no-naive', action='store_true', help='skip the naive node')
    parser.add_argument('--threads', default='auto',
                        help='torch threads in the node: a number, or auto = the one (1 or 2) '
                        'with the lower node p50 in a short 20 Hz probe of each precision')
    parser.add_argument('--probe-duration', type=float, default=6.0,
                        help='seconds at 20 Hz per thread count in the auto thread probe')
    parser.add_argument('--no-qos-probe', action='store_true',
                        help='skip counting raw 640x480 frames per input reliability')
    parser.add_argument('--device', default='cpu',
                        help="the node's device; on cuda use --precisions fp32,bf16")
    parser.add_argument('--inputs', default='compressed',
                        help='input transports to measure: compressed (640x480 JPEG, best '
                        'effort) and/or raw (640x480 bgr8, reliable), comma separated')
    parser.add_argument('--duration', type=float, default=10.0, help='seconds at 20 Hz')
    parser.add_argument('--rates', default='30,40,60', help='faster fixed rates to try (Hz)')
    parser.add_argument('--step-duration', type=float, default=4.0,
                        help='seconds per faster rate and flat out')
    parser.add_argument('--warmup', type=float, default=3.0, help='seconds at 5 Hz first')
    parser.add_argument('--repeats', type=int, default=3,
                        help='measure the floor and every variant this many times in turn')


# -- orchestration ---------------------------------------------------------------------------

def _measure(variant_cmd: list, schedule: list, env: dict, camera_mode: str = 'jpeg') -> dict:
    """Run the schedule through one variant; return its phases and highest drop-free rate."""
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import Vector3Stamped
    from rclpy.qos import QoSProfile

    node_proc = NodeProcess(command=variant_cmd, env=env)
    camera = start_camera(schedule, env, camera_mode)
    executor, node, context = open_listener('benchmark_listener')
    received = []   # (phase, seq, latency_ms, receipt perf)
    cpu = []        # (perf, node cpu seconds)

    def on_command(msg):
        now = time.time_ns()
        phase, seq = msg.header.frame_id.split('/')
        stamp = stamp_ns_of(msg.header)
        received.append((phase, int(seq), (now - stamp) * 1e-6, time.perf_counter()))
    node.create_subscription(Vector3Stamped, 'steering/command', on_command,
                             QoSProfile(depth=1000))
    diagnostics = []   # (receipt perf, {key: value}) from the node's /diagnostics
    node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: diagnostics.append(
        (time.perf_counter(), {kv.key: kv.value for kv in m.status[0].values})), 10)
    try:
        next_sample = 0.0
        while camera.poll() is None:
            executor.spin_once(timeout_sec=0.01)
            now = time.perf_counter()
            if now >= next_sample and node_proc.alive():
                cpu.append((now, cpu_seconds(node_proc.pid)))
                next_sample = now + 0.25
            node_proc.check_alive()
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.01)
        published = camera_counts(camera)
    finally:
        close_listener(executor, node, context, camera)
        node_proc.close()
    require_heard('steering/command of the node under test', len(received),
                  sum(published.values()))
    phases = _phases(schedule, published, received, cpu, diagnostics)
    fixed = [p for p in phases.values() if p['rate_hz'] != 'flat out']
    sustained = [p['rate_hz'] for p in fixed if p['dropped'] == 0]
    return {'phases': phases,
            'highest_rate_without_drops_hz': max(sustained) if sustained else None}


def _phases(schedule: list, published: dict, received: list, cpu: list,
            diagnostics: list) -> dict:
    """Per phase after warm-up: counts, latency, the node's CPU share and its stage p50s.

    Args:
        schedule: [name, rate_hz, duration_s] phases.
        published: frames the camera published per phase.
        received: (phase, seq, latency_ms, receipt perf) per command.
        cpu: (perf, node CPU seconds) samples.
        diagnostics: (receipt perf, {key: value}) of the node's /diagnostics.
    """
    cpu_t, cpu_s = np.array(cpu).T if cpu else (np.zeros(1), np.zeros(1))
    phases = {}
    for name, rate_hz, duration_s in schedule:
        got = [r for r in received if r[0] == name]
        if name == 'warmup':
            continue
        t0, t1 = (got[0][3], got[-1][3]) if len(got) > 1 else (0.0, 1.0)
        busy = np.interp([t0, t1], cpu_t, cpu_s)
        phases[name] = {
            'rate_hz': rate_hz or 'flat out', 'published': published.get(name, 0),
            'processed': len(got), 'dropped': published.get(name, 0) - len(got),
            'processed_per_s': len(got) / (t1 - t0) if len(got) > 1 else 0.0,
            **latency_summary([r[2] for r in got], 'latency_'),
            'node_cpu_percent_of_one_core': float(100 * (busy[1] - busy[0]) / (t1 - t0)),
        }
        # The node's stage p50s: its last /diagnostics before the next phase's first command.
        later = [r[3] for r in received if r[0] != name and r[3] > t1]
        cut = min(later) if later else t1 + 1.0
        before = [values for t, values in diagnostics if t <= cut]
        if before and 'wait_p50_ms' in before[-1]:
            phases[name]['node_stages_p50_ms'] = {
                stage: float(before[-1][f'{stage}_p50_ms']) for stage in (
                    'age_at_receipt', 'wait', 'decode', 'preprocess', 'network', 'publish',
                    'compute', 'latency')}
    return phases


def _thread_probe(args, path: str, env: dict, precisions: list) -> dict:
    """Return the node's 20 Hz p50 (ms) per thread count: {precision: {threads: p50}}.

    Chosen on the node itself: OpenMP workers that sleep between frames make a thread count
    that wins back to back lose at 20 Hz, and a paced step alone is too close to call.
    """
    schedule = [['warmup', 5, 2.0], ['20hz', 20, args.probe_duration]]
    probe = {}
    for precision in precisions:
        probe[precision] = {}
        for threads in (1, 2):
            cmd = node_command({'checkpoint': path, 'precision': precision,
                                'device': args.device, 'num_threads': threads,
                                'publish_attention': False})
            phase = _measure(cmd, schedule, env)['phases']['20hz']
            probe[precision][threads] = phase['latency_p50_ms']
    return probe


def _one_run(args, path: str, env: dict, schedule: list, precisions: list) -> dict:
    """Floor parts, then every variant on the same schedule, then the ratios: one repeat.

    A variant is the naive node or the product node at one precision and input transport
    (`node_<precision>` for JPEG, `node_<precision>_raw` for raw bgr8 sent reliable). The raw
    floor has no decode: it is the step plus one hop of the raw frame.
    """
    inputs = args.inputs.split(',')
    out = {'load_average_1min_at_start': os.getloadavg()[0], 'variants': {}}
    floor = floor_parts(path, precisions, args.threads, args.device)
    floor['dds_hop'] = dds_hop_ms(env, args.duration)
    if 'raw' in inputs:
        floor['dds_hop_raw'] = dds_hop_ms(env, args.duration, 'raw-reliable')
    out['floor'] = floor
    if args.threads == 'auto':
        out['thread_probe'] = _thread_probe(args, path, env, precisions)
        threads = {p: min(probe, key=lambda t: probe[t]) for p, probe in
                   out['thread_probe'].items()}
    else:
        threads = {p: int(args.threads) for p in precisions}
    out['threads'] = threads
    for name, (cmd, mode) in _variants(args, path, precisions, threads).items():
        load_before = os.getloadavg()[0]
        out['variants'][name] = _measure(cmd, schedule, env, mode)
        out['variants'][name]['load_average_1min'] = [load_before, os.getloadavg()[0]]
    for precision in precisions:
        for transport in inputs:
            out.update(floor_ratios(precision, transport, floor, out['variants']))
    v = out['variants']
    if 'naive_fp32' in v:
        for name in v:
            if name != 'naive_fp32':
                a, b = v['naive_fp32']['phases']['20hz'], v[name]['phases']['20hz']
                out[f'ratio_naive_over_{name}_p50'] = a['latency_p50_ms'] / b['latency_p50_ms']
                out[f'ratio_naive_over_{name}_p99'] = a['latency_p99_ms'] / b['latency_p99_ms']
    return out


def _variants(args, path: str, precisions: list, threads: dict) -> dict:
    """Return {variant name: (command line, camera mode)}: the naive node, then the product's."""
    variants = {}
    if not args.no_naive:
        variants['naive_fp32'] = ([sys.executable, '-c', 'from benchmarks.node_processes '
                                   'import naive_main; naive_main()', path,
                                   str(threads.get('fp32', 1))], 'jpeg')
    for precision in precisions:
        for transport in args.inputs.split(','):
            raw = transport == 'raw'
            variants[f'node_{precision}' + ('_raw' if raw else '')] = (node_command({
                'checkpoint': path, 'precision': precision, 'device': args.device,
                'num_threads': threads[precision], 'publish_attention': False,
                'input_transport': transport,
                'input_reliability': 'reliable' if raw else 'best_effort'}),
                'raw-reliable' if raw else 'jpeg')
    return variants


def run(args) -> dict:
    """Repeat (floor, every variant) --repeats times; report each repeat and the medians.

    A repeat measures the floor's parts and then each variant in turn, so load that changes
    during a repeat shows up as the spread between repeats; the summary is the median of each
    ratio and latency over the repeats.
    """
    import torch
    from signattn_driver import checkpoint
    from signattn_driver.model import ModelConfig, SteeringNet

    env = child_env()
    torch.set_num_threads(1)   # this process only listens
    schedule = [['warmup', 5, args.warmup], ['20hz', 20, args.duration]]
    schedule += [[f'{r}hz', float(r), args.step_duration] for r in args.rates.split(',')]
    schedule += [['flat_out', 0, args.step_duration]]
    results = {'machine': f'{os.cpu_count()} CPU cores, {platform.processor() or "cpu"}',
               'torch': torch.__version__, 'device': args.device,
               'frame': '640x480 JPEG (quality 90); raw: 640x480 bgr8, reliable',
               'inputs': args.inputs.split(','), 'schedule': schedule,
               'repeats': []}
    precisions = args.precisions.split(',')
    with tempfile.TemporaryDirectory() as tmp:
        path = args.checkpoint
        if path is None:
            torch.manual_seed(0)
            path = str(checkpoint.save(Path(tmp) / 'paper_size.pt',
                                       SteeringNet(ModelConfig(lstm_hidden=args.lstm_hidden))))
        results['checkpoint'] = args.checkpoint or f'random, lstm_hidden {args.lstm_hidden}'
        if not args.no_qos_probe:
            results['raw_640x480_large_data_qos_probe'] = qos_probe(env)
        for _ in range(args.repeats):
            results['repeats'].append(_one_run(args, path, env, schedule, precisions))
    results['median_over_repeats'] = _medians(results['repeats'])
    return results


def _medians(repeats: list) -> dict:
    """Median over repeats of every top-level figure and of each variant's 20 Hz p50/p99."""
    summary = {}
    for key in repeats[0]:
        if key.startswith(('ratio_', 'floor_')):
            summary[key] = float(np.median([r[key] for r in repeats if key in r]))
    for name in repeats[0]['variants']:
        for stat in ('latency_p50_ms', 'latency_p99_ms'):
            summary[f'{name}_20hz_{stat}'] = float(np.median(
                [r['variants'][name]['phases']['20hz'][stat] for r in repeats]))
    summary['threads_chosen'] = [r['threads'] for r in repeats]
    return summary
