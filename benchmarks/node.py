"""Camera-to-command latency of the drive node over loopback DDS, against a naive node.

Three processes: a camera publisher (640x480 JPEG, sensor-data QoS), the node under test and
this process, which subscribes to `steering/command`. Each frame's header carries its publish
time (wall clock) and, in frame_id, its phase and sequence number; the node copies the header
into the command, so latency is receipt time minus stamp and drops are missing sequence numbers.
Phases: warm-up, 20 Hz (the Udacity camera rate), faster fixed rates, then flat out. The same
schedule runs against each variant: the product node at each precision, and a naive node
(per-frame numpy float64 preprocessing, CPU tensors re-created per frame, synchronous `.item()`
on every output, all in the ROS callback) whose p50/p99 are the ratio to beat.
"""

import json
import os
from pathlib import Path
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

from signattn_driver.ros.node_process import node_command, NodeProcess

FRAME_SIZE_HW = (480, 640)


def add_arguments(parser):
    """Options of `signattn benchmark node`."""
    parser.add_argument('--checkpoint', help='checkpoint to run (default: a paper-size model '
                        'with random weights)')
    parser.add_argument('--lstm-hidden', type=int, default=1024, help='random model size')
    parser.add_argument('--precisions', default='int8,fp32',
                        help='product-node variants to measure (comma separated)')
    parser.add_argument('--no-naive', action='store_true', help='skip the naive node')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads in the node (1: OpenMP spin barriers make 2 '
                        'threads far slower on a loaded 2-core machine)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--duration', type=float, default=10.0, help='seconds at 20 Hz')
    parser.add_argument('--rates', default='30,40,60', help='faster fixed rates to try (Hz)')
    parser.add_argument('--step-duration', type=float, default=4.0,
                        help='seconds per faster rate and flat out')
    parser.add_argument('--warmup', type=float, default=3.0, help='seconds at 5 Hz first')


# -- camera process -------------------------------------------------------------------------

def _jpeg_frames(n: int) -> list:
    import cv2
    from benchmarks.predictor import _frames
    return [cv2.imencode('.jpg', f, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
            for f in _frames(n)]


def camera_main():
    """Publish the phase schedule given as JSON in argv[1]; print frame counts as JSON."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data, QoSProfile
    from sensor_msgs.msg import CompressedImage
    schedule = json.loads(sys.argv[1])
    frames = _jpeg_frames(32)
    rclpy.init()
    node = rclpy.create_node('benchmark_camera')
    qos = QoSProfile(history=qos_profile_sensor_data.history, depth=1,
                     reliability=qos_profile_sensor_data.reliability)
    pub = node.create_publisher(CompressedImage, 'image/compressed', qos)
    deadline = time.monotonic() + 120
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    counts = {}
    msg = CompressedImage(format='jpeg')
    for name, rate_hz, duration_s in schedule:
        start = time.perf_counter()
        seq = 0
        while time.perf_counter() - start < duration_s:
            if rate_hz:
                target = start + seq / rate_hz
                while time.perf_counter() < target:
                    time.sleep(min(0.002, max(target - time.perf_counter(), 0)))
            msg.data = frames[seq % len(frames)]
            msg.header.frame_id = f'{name}/{seq}'
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(), 10**9)
            pub.publish(msg)
            seq += 1
        counts[name] = seq
        time.sleep(0.5)
    print(json.dumps(counts), flush=True)
    node.destroy_node()
    rclpy.shutdown()


# -- naive node -----------------------------------------------------------------------------

def _naive_hsv_input(bgr: np.ndarray) -> np.ndarray:
    """Float64 numpy preprocessing, as first written (resize, HSV, scale) -> (3, 80, 160)."""
    import cv2
    x = cv2.resize(bgr.astype(np.float64), (160, 80), interpolation=cv2.INTER_AREA)
    x = np.round(x)
    b, g, r = x[..., 0], x[..., 1], x[..., 2]
    v = x.max(axis=-1)
    delta = v - x.min(axis=-1)
    s = np.where(v > 0, 255.0 * delta / np.where(v > 0, v, 1), 0)
    safe = np.where(delta > 0, delta, 1)
    h = np.where(v == r, 60 * (g - b) / safe,
                 np.where(v == g, 120 + 60 * (b - r) / safe, 240 + 60 * (r - g) / safe))
    h = np.where(delta > 0, h, 0) % 360 / 2
    hsv = np.stack([np.round(h) % 180, np.round(s), v], axis=-1)
    return (hsv / np.array([179.0, 255.0, 255.0]) * 2 - 1).transpose(2, 0, 1)


def naive_main():
    """Run the naive node: argv = checkpoint, torch threads."""
    import cv2
    import rclpy
    from geometry_msgs.msg import Vector3Stamped
    from rclpy.qos import qos_profile_sensor_data, QoSProfile
    from sensor_msgs.msg import CompressedImage
    import torch
    from signattn_driver.checkpoint import load_model

    torch.set_num_threads(int(sys.argv[2]))
    model, _ = load_model(sys.argv[1])
    rclpy.init()
    node = rclpy.create_node('naive_drive_node')
    pub = node.create_publisher(Vector3Stamped, 'steering/command', 10)
    state = [None]

    def on_image(msg):
        bgr = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
        x = torch.tensor(_naive_hsv_input(bgr)[None]).float()
        with torch.no_grad():
            u, alpha, new_state = model.step(x, state[0])
        values = [a.item() for a in alpha.flatten()]             # every output, synchronously
        if np.isfinite(u.item()) and np.isfinite(sum(values)):
            state[0] = tuple(t.clone() for t in new_state)
        out = Vector3Stamped()
        out.header = msg.header
        out.vector.x = u.item()
        pub.publish(out)
    qos = QoSProfile(history=qos_profile_sensor_data.history, depth=1,
                     reliability=qos_profile_sensor_data.reliability)
    node.create_subscription(CompressedImage, 'image/compressed', on_image, qos)
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


# -- orchestration ---------------------------------------------------------------------------

def _cpu_seconds(pid: int) -> float:
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def _measure(variant_cmd: list, schedule: list, env: dict) -> dict:
    import rclpy
    from geometry_msgs.msg import Vector3Stamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile

    node_proc = NodeProcess(command=variant_cmd, env=env)
    camera = subprocess.Popen(
        [sys.executable, '-c', 'from benchmarks.node import camera_main; '
         'camera_main()', json.dumps(schedule)], env=env, stdout=subprocess.PIPE, text=True)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('benchmark_listener', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    received = []   # (phase, seq, latency_ms, receipt perf)
    cpu = []        # (perf, node cpu seconds)

    def on_command(msg):
        now = time.time_ns()
        phase, seq = msg.header.frame_id.split('/')
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        received.append((phase, int(seq), (now - stamp) * 1e-6, time.perf_counter()))
    node.create_subscription(Vector3Stamped, 'steering/command', on_command,
                             QoSProfile(depth=1000))
    try:
        next_sample = 0.0
        while camera.poll() is None:
            executor.spin_once(timeout_sec=0.01)
            now = time.perf_counter()
            if now >= next_sample and node_proc.alive():
                cpu.append((now, _cpu_seconds(node_proc.pid)))
                next_sample = now + 0.25
            node_proc.check_alive()
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.01)
        published = json.loads(camera.stdout.read().strip().splitlines()[-1])
    finally:
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        if camera.poll() is None:
            camera.terminate()
            camera.wait(timeout=20)
        node_proc.close()
    cpu_t, cpu_s = np.array(cpu).T if cpu else (np.zeros(1), np.zeros(1))
    phases = {}
    for name, rate_hz, duration_s in schedule:
        got = [r for r in received if r[0] == name]
        if name == 'warmup':
            continue
        lat = np.array([r[2] for r in got]) if got else np.array([np.nan])
        t0, t1 = (got[0][3], got[-1][3]) if len(got) > 1 else (0.0, 1.0)
        busy = np.interp([t0, t1], cpu_t, cpu_s)
        phases[name] = {
            'rate_hz': rate_hz or 'flat out', 'published': published.get(name, 0),
            'processed': len(got), 'dropped': published.get(name, 0) - len(got),
            'processed_per_s': len(got) / (t1 - t0) if len(got) > 1 else 0.0,
            'latency_p50_ms': float(np.percentile(lat, 50)),
            'latency_p99_ms': float(np.percentile(lat, 99)),
            'node_cpu_percent_of_one_core': float(100 * (busy[1] - busy[0]) / (t1 - t0)),
        }
    fixed = [p for p in phases.values() if p['rate_hz'] != 'flat out']
    sustained = [p['rate_hz'] for p in fixed if p['dropped'] == 0]
    return {'phases': phases,
            'highest_rate_without_drops_hz': max(sustained) if sustained else None}


def run(args) -> dict:
    """Measure each variant with the same schedule; report p50/p99, drops, CPU and ratios."""
    import torch
    from signattn_driver import checkpoint
    from signattn_driver.model import ModelConfig, SteeringNet

    env = dict(os.environ, FASTDDS_BUILTIN_TRANSPORTS='LARGE_DATA',
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               ROS_DOMAIN_ID=os.environ.get('ROS_DOMAIN_ID', '42'))
    # The camera and naive-node children import `benchmarks.node` from this checkout.
    checkout = str(Path(__file__).resolve().parent.parent)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [checkout, env.get('PYTHONPATH')]))
    torch.set_num_threads(1)   # this process only listens
    schedule = [['warmup', 5, args.warmup], ['20hz', 20, args.duration]]
    schedule += [[f'{r}hz', float(r), args.step_duration] for r in args.rates.split(',')]
    schedule += [['flat_out', 0, args.step_duration]]
    results = {'machine': f'{os.cpu_count()} CPU cores, {platform.processor() or "cpu"}',
               'torch': torch.__version__, 'threads': args.threads, 'device': args.device,
               'frame': '640x480 JPEG (quality 90)', 'schedule': schedule, 'variants': {}}
    with tempfile.TemporaryDirectory() as tmp:
        path = args.checkpoint
        if path is None:
            torch.manual_seed(0)
            path = str(checkpoint.save(Path(tmp) / 'paper_size.pt',
                                       SteeringNet(ModelConfig(lstm_hidden=args.lstm_hidden))))
        results['checkpoint'] = args.checkpoint or f'random, lstm_hidden {args.lstm_hidden}'
        variants = {}
        if not args.no_naive:
            variants['naive_fp32'] = [sys.executable, '-c', 'from benchmarks.'
                                      'node import naive_main; naive_main()', path,
                                      str(args.threads)]
        for precision in args.precisions.split(','):
            variants[f'node_{precision}'] = node_command({
                'checkpoint': path, 'precision': precision, 'device': args.device,
                'num_threads': args.threads, 'publish_attention': False})
        for name, cmd in variants.items():
            load_before = os.getloadavg()[0]
            results['variants'][name] = _measure(cmd, schedule, env)
            results['variants'][name]['load_average_1min'] = [load_before, os.getloadavg()[0]]
    v = results['variants']
    if 'naive_fp32' in v:
        for name in v:
            if name != 'naive_fp32':
                a, b = v['naive_fp32']['phases']['20hz'], v[name]['phases']['20hz']
                results[f'ratio_naive_over_{name}_p50'] = a['latency_p50_ms'] / b['latency_p50_ms']
                results[f'ratio_naive_over_{name}_p99'] = a['latency_p99_ms'] / b['latency_p99_ms']
    return results
