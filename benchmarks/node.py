"""Camera-to-command latency of the drive node over loopback DDS, against a naive node.

Three processes: a camera publisher (640x480 JPEG, sensor-data QoS), the node under test and
this process, which subscribes to `steering/command`. Each frame's header carries its publish
time (wall clock) and, in frame_id, its phase and sequence number; the node copies the header
into the command, so latency is receipt time minus stamp and drops are missing sequence numbers.
Phases: warm-up, 20 Hz (the Udacity camera rate), faster fixed rates, then flat out. The same
schedule runs against each variant: the product node at each precision, and a naive node
(per-frame numpy float64 preprocessing, CPU tensors re-created per frame, synchronous `.item()`
on every output, all in the ROS callback) whose p50/p99 are the ratio to beat.

Latency down to its parts, in the same run: the torch thread count is chosen first by timing
`Predictor.step` with 1 and 2 threads; that step, a JPEG decode and one DDS hop of the same
camera message (camera -> listener, no node) make the floor the node's p50 is compared with
(`ratio_node_over_floor_p50`), and the node's own per-stage p50s (from /diagnostics) show where
the rest goes. A short probe also counts raw 640x480 bgr8 frames that arrive over Fast DDS
LARGE_DATA for each input reliability.
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

from signattn_driver.data.labels import stamp_ns_of
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
    parser.add_argument('--threads', default='auto',
                        help='torch threads in the node: a number, or auto = the faster of 1 '
                        'and 2 for Predictor.step at each precision, timed first')
    parser.add_argument('--no-qos-probe', action='store_true',
                        help='skip counting raw 640x480 frames per input reliability')
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
    """Publish the phase schedule given as JSON in argv[1]; print frame counts as JSON.

    argv[2] (optional): 'raw-reliable' or 'raw-best_effort' publishes 640x480 bgr8 Images on
    `image` with that reliability instead of JPEGs (sensor-data QoS) on `image/compressed`.
    """
    import rclpy
    from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image
    schedule = json.loads(sys.argv[1])
    mode = sys.argv[2] if len(sys.argv) > 2 else 'jpeg'
    rclpy.init()
    node = rclpy.create_node('benchmark_camera')
    qos = QoSProfile(history=qos_profile_sensor_data.history, depth=1,
                     reliability=qos_profile_sensor_data.reliability)
    if mode == 'jpeg':
        frames = _jpeg_frames(32)
        pub = node.create_publisher(CompressedImage, 'image/compressed', qos)
        msg = CompressedImage(format='jpeg')
    else:
        from benchmarks.predictor import _frames
        frames = [f.tobytes() for f in _frames(4)]
        if mode == 'raw-reliable':
            qos.reliability = ReliabilityPolicy.RELIABLE
        pub = node.create_publisher(Image, 'image', qos)
        msg = Image(height=FRAME_SIZE_HW[0], width=FRAME_SIZE_HW[1], encoding='bgr8',
                    step=FRAME_SIZE_HW[1] * 3)
    deadline = time.monotonic() + 120
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    counts = {}
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


def _camera(schedule: list, env: dict, mode: str = 'jpeg') -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, '-c', 'from benchmarks.node import camera_main; camera_main()',
         json.dumps(schedule), mode], env=env, stdout=subprocess.PIPE, text=True)


def _close(executor, node, context, camera: subprocess.Popen):
    """Tear down a listener (executor, node, its rclpy context) and stop the camera process."""
    import rclpy
    executor.shutdown(timeout_sec=1.0)
    node.destroy_node()
    rclpy.try_shutdown(context=context)
    if camera.poll() is None:
        camera.terminate()
        camera.wait(timeout=20)


def _listen(schedule: list, env: dict, mode: str, reliable: bool) -> tuple[dict, list]:
    """Run a camera and subscribe to its frames directly: (published per phase, receipts)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image
    camera = _camera(schedule, env, mode)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('benchmark_hop_listener', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    received = []   # (phase, seq, latency_ms)

    def on_frame(msg):
        now = time.time_ns()
        phase, seq = msg.header.frame_id.split('/')
        stamp = stamp_ns_of(msg.header)
        received.append((phase, int(seq), (now - stamp) * 1e-6))
    qos = QoSProfile(history=qos_profile_sensor_data.history, depth=10,
                     reliability=ReliabilityPolicy.RELIABLE if reliable
                     else ReliabilityPolicy.BEST_EFFORT)
    kind, topic = (CompressedImage, 'image/compressed') if mode == 'jpeg' else (Image, 'image')
    node.create_subscription(kind, topic, on_frame, qos)
    try:
        while camera.poll() is None:
            executor.spin_once(timeout_sec=0.01)
        published = json.loads(camera.stdout.read().strip().splitlines()[-1])
    finally:
        _close(executor, node, context, camera)
    return published, received


def qos_probe(env: dict, frames: int = 40) -> dict:
    """Raw 640x480 bgr8 at 20 Hz over LARGE_DATA: frames received per reliability pairing."""
    out = {}
    for publisher, subscriber in (('best_effort', 'best_effort'), ('reliable', 'best_effort'),
                                  ('reliable', 'reliable')):
        published, received = _listen([['probe', 20, frames / 20]], env,
                                      f'raw-{publisher}', subscriber == 'reliable')
        out[f'publisher_{publisher}_subscriber_{subscriber}'] = {
            'published': published.get('probe', 0), 'received': len(received)}
    return out


def dds_hop_ms(env: dict, duration_s: float) -> dict:
    """One DDS hop of the benchmark's 640x480 JPEG at 20 Hz, camera -> listener (no node)."""
    _, received = _listen([['warmup', 5, 2.0], ['20hz', 20, duration_s]], env, 'jpeg', False)
    lat = np.array([r[2] for r in received if r[0] == '20hz'] or [np.nan])
    return {'p50_ms': float(np.percentile(lat, 50)), 'p99_ms': float(np.percentile(lat, 99)),
            'received': int(np.isfinite(lat).sum())}


def floor_parts(path: str, precisions: list, thread_choice: str, steps: int = 150) -> dict:
    """Time Predictor.step (1 and 2 threads unless fixed) and the JPEG decode in this process."""
    import cv2
    import torch
    from benchmarks.predictor import _frames, _time_steps
    from signattn_driver.predictor import Predictor
    frames = _frames(32)
    jpegs = _jpeg_frames(32)
    out = {'step': {}}
    candidates = (1, 2) if thread_choice == 'auto' else (int(thread_choice),)
    for precision in precisions:
        predictor = Predictor(path, device='cpu', precision=precision)
        timed = {}
        for threads in candidates:
            torch.set_num_threads(threads)
            _, ms = _time_steps(predictor, frames, steps, warmup=20)
            timed[threads] = {'p50_ms': float(np.median(ms)),
                              'p99_ms': float(np.percentile(ms, 99))}
        best = min(timed, key=lambda t: timed[t]['p50_ms'])
        out['step'][precision] = {'by_threads': timed, 'chosen_threads': best, **timed[best]}
    torch.set_num_threads(1)
    decode = []
    for i in range(200):
        t0 = time.perf_counter()
        cv2.imdecode(np.frombuffer(jpegs[i % len(jpegs)], np.uint8), cv2.IMREAD_COLOR)
        decode.append((time.perf_counter() - t0) * 1e3)
    out['jpeg_decode'] = {'p50_ms': float(np.median(decode)),
                          'p99_ms': float(np.percentile(decode, 99))}
    return out


def _measure(variant_cmd: list, schedule: list, env: dict) -> dict:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import Vector3Stamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile

    node_proc = NodeProcess(command=variant_cmd, env=env)
    camera = _camera(schedule, env)
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
                cpu.append((now, _cpu_seconds(node_proc.pid)))
                next_sample = now + 0.25
            node_proc.check_alive()
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.01)
        published = json.loads(camera.stdout.read().strip().splitlines()[-1])
    finally:
        _close(executor, node, context, camera)
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
        # The node's stage p50s: its last /diagnostics before the next phase's first command.
        later = [r[3] for r in received if r[0] != name and r[3] > t1]
        cut = min(later) if later else t1 + 1.0
        before = [values for t, values in diagnostics if t <= cut]
        if before and 'wait_p50_ms' in before[-1]:
            phases[name]['node_stages_p50_ms'] = {
                stage: float(before[-1][f'{stage}_p50_ms']) for stage in (
                    'age_at_receipt', 'wait', 'decode', 'preprocess', 'network', 'publish',
                    'compute', 'latency')}
    fixed = [p for p in phases.values() if p['rate_hz'] != 'flat out']
    sustained = [p['rate_hz'] for p in fixed if p['dropped'] == 0]
    return {'phases': phases,
            'highest_rate_without_drops_hz': max(sustained) if sustained else None}


def child_env() -> dict:
    """Return the environment of the benchmark's child processes.

    Loopback DDS, the large-data transport, and this checkout on PYTHONPATH (the camera and
    naive-node children import `benchmarks.node`).
    """
    env = dict(os.environ, FASTDDS_BUILTIN_TRANSPORTS='LARGE_DATA',
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               ROS_DOMAIN_ID=os.environ.get('ROS_DOMAIN_ID', '42'))
    checkout = str(Path(__file__).resolve().parent.parent)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [checkout, env.get('PYTHONPATH')]))
    return env


def run(args) -> dict:
    """Measure each variant with the same schedule; report p50/p99, drops, CPU and ratios."""
    import torch
    from signattn_driver import checkpoint
    from signattn_driver.model import ModelConfig, SteeringNet

    env = child_env()
    torch.set_num_threads(1)   # this process only listens
    schedule = [['warmup', 5, args.warmup], ['20hz', 20, args.duration]]
    schedule += [[f'{r}hz', float(r), args.step_duration] for r in args.rates.split(',')]
    schedule += [['flat_out', 0, args.step_duration]]
    results = {'machine': f'{os.cpu_count()} CPU cores, {platform.processor() or "cpu"}',
               'torch': torch.__version__, 'threads': args.threads, 'device': args.device,
               'frame': '640x480 JPEG (quality 90)', 'schedule': schedule, 'variants': {},
               'load_average_1min_at_start': os.getloadavg()[0]}
    precisions = args.precisions.split(',')
    with tempfile.TemporaryDirectory() as tmp:
        path = args.checkpoint
        if path is None:
            torch.manual_seed(0)
            path = str(checkpoint.save(Path(tmp) / 'paper_size.pt',
                                       SteeringNet(ModelConfig(lstm_hidden=args.lstm_hidden))))
        results['checkpoint'] = args.checkpoint or f'random, lstm_hidden {args.lstm_hidden}'
        floor = floor_parts(path, precisions, args.threads)
        floor['dds_hop'] = dds_hop_ms(env, args.duration)
        results['floor'] = floor
        threads = {p: floor['step'][p]['chosen_threads'] for p in precisions}
        results['threads'] = threads
        if not args.no_qos_probe:
            results['raw_640x480_large_data_qos_probe'] = qos_probe(env)
        variants = {}
        if not args.no_naive:
            variants['naive_fp32'] = [sys.executable, '-c', 'from benchmarks.'
                                      'node import naive_main; naive_main()', path,
                                      str(threads.get('fp32', 1))]
        for precision in precisions:
            variants[f'node_{precision}'] = node_command({
                'checkpoint': path, 'precision': precision, 'device': args.device,
                'num_threads': threads[precision], 'publish_attention': False})
        for name, cmd in variants.items():
            load_before = os.getloadavg()[0]
            results['variants'][name] = _measure(cmd, schedule, env)
            results['variants'][name]['load_average_1min'] = [load_before, os.getloadavg()[0]]
    v = results['variants']
    for precision in precisions:
        parts = (floor['step'][precision]['p50_ms'], floor['jpeg_decode']['p50_ms'],
                 floor['dds_hop']['p50_ms'])
        node_p50 = v[f'node_{precision}']['phases']['20hz']['latency_p50_ms']
        results[f'floor_{precision}_p50_ms'] = sum(parts)
        results[f'ratio_node_over_floor_{precision}_p50'] = node_p50 / sum(parts)
        # The same floor from the node's own stages in the 20 Hz phase (step = preprocess +
        # network, decode, hop = age at receipt): immune to load changing between the parts.
        stages = v[f'node_{precision}']['phases']['20hz'].get('node_stages_p50_ms')
        if stages:
            own = sum(stages[k] for k in ('preprocess', 'network', 'decode', 'age_at_receipt'))
            results[f'ratio_node_over_stage_floor_{precision}_p50'] = node_p50 / own
    if 'naive_fp32' in v:
        for name in v:
            if name != 'naive_fp32':
                a, b = v['naive_fp32']['phases']['20hz'], v[name]['phases']['20hz']
                results[f'ratio_naive_over_{name}_p50'] = a['latency_p50_ms'] / b['latency_p50_ms']
                results[f'ratio_naive_over_{name}_p99'] = a['latency_p99_ms'] / b['latency_p99_ms']
    return results
