"""The node benchmarks' other processes and listener: camera, naive node, DDS listener.

`benchmarks.node` (latency) and `benchmarks.soak` (memory) both run a camera publisher and a
listener around the drive node; the camera and the naive node run as child processes of this
module (`python -c 'from benchmarks.node_processes import ...'`).
"""

import json
import os
from pathlib import Path
import subprocess
import sys
import time

import numpy as np

from signattn_driver.ros.node_process import (node_environment, nothing_heard_hint,
                                              NothingHeardError, use_loopback_dds)

FRAME_SIZE_HW = (480, 640)
SUBSCRIBER_WAIT_S = 120.0     # the camera's wait for the node (or listener) to subscribe
NO_SUBSCRIBER = 'no_subscriber_after_s'


DEFAULT_DOMAIN_ID = '42'


def child_env() -> dict:
    """Put this process's DDS on loopback; return the environment of its child processes.

    This process (the listener) and its children share DDS settings: loopback discovery, a
    domain (ROS_DOMAIN_ID or DEFAULT_DOMAIN_ID), the large-data transport; the children also
    get this checkout on PYTHONPATH (the camera and naive-node children import
    `benchmarks.node_processes`). Call it before rclpy starts in this process.
    """
    use_loopback_dds(os.environ, DEFAULT_DOMAIN_ID)
    env = node_environment()
    checkout = str(Path(__file__).resolve().parent.parent)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [checkout, env.get('PYTHONPATH')]))
    return env


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system, s) process `pid` has used so far (Linux /proc)."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


# -- camera process -------------------------------------------------------------------------

def jpeg_frames(n: int) -> list:
    """Return n camera-like 640x480 frames as JPEG bytes (quality 90)."""
    import cv2
    from benchmarks.predictor import _frames
    return [cv2.imencode('.jpg', f, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
            for f in _frames(n)]


def camera_main():
    """Publish the phase schedule given as JSON in argv[1]; print frame counts as JSON.

    argv[2] (optional): 'raw-reliable' or 'raw-best_effort' publishes 640x480 bgr8 Images on
    `image` with that reliability instead of JPEGs (sensor-data QoS) on `image/compressed`.
    argv[3] (optional): seconds to wait for a subscriber (default SUBSCRIBER_WAIT_S); with
    none by then nothing is published and the counts are {NO_SUBSCRIBER: seconds waited}.
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
        frames = jpeg_frames(32)
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
    wait_s = float(sys.argv[3]) if len(sys.argv) > 3 else SUBSCRIBER_WAIT_S
    deadline = time.monotonic() + wait_s
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    counts = {}
    if pub.get_subscription_count() == 0:
        schedule, counts[NO_SUBSCRIBER] = [], wait_s
    else:
        time.sleep(1.0)
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


# -- in the benchmark process ----------------------------------------------------------------

def start_camera(schedule: list, env: dict, mode: str = 'jpeg',
                 subscriber_wait_s: float = SUBSCRIBER_WAIT_S) -> subprocess.Popen:
    """Start camera_main with `schedule` (JSON phases) in `mode`; its stdout holds the counts."""
    return subprocess.Popen(
        [sys.executable, '-c', 'from benchmarks.node_processes import camera_main; '
         'camera_main()', json.dumps(schedule), mode, str(subscriber_wait_s)], env=env,
        stdout=subprocess.PIPE, text=True)


def camera_counts(camera: subprocess.Popen) -> dict:
    """Return the frames the finished camera published per phase.

    Raises:
        NothingHeardError: the camera found no subscriber, so it published nothing.
    """
    lines = camera.stdout.read().strip().splitlines()
    if not lines:
        raise NothingHeardError(f'the benchmark camera exited ({camera.wait()}) without '
                                'reporting what it published')
    counts = json.loads(lines[-1])
    if NO_SUBSCRIBER in counts:
        raise NothingHeardError(f'the benchmark camera found no subscriber in '
                                f'{counts[NO_SUBSCRIBER]:.0f} s: {nothing_heard_hint()}')
    return counts


def require_heard(what: str, heard: int, published: int):
    """Raise NothingHeardError when `published` frames went out and none of them was heard."""
    if published > 0 and heard == 0:
        raise NothingHeardError(f'{what}: heard none of the {published} frames published: '
                                f'{nothing_heard_hint()}')


def open_listener(name: str) -> tuple:
    """Create a node `name` in its own rclpy context with an executor: (executor, node, context).

    Its own context keeps the listener apart from anything else in the process.
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(name, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    return executor, node, context


def close_listener(executor, node, context, camera: subprocess.Popen | None):
    """Tear down a listener (executor, node, its rclpy context) and stop the camera process."""
    import rclpy
    executor.shutdown(timeout_sec=1.0)
    node.destroy_node()
    rclpy.try_shutdown(context=context)
    if camera is not None and camera.poll() is None:
        camera.terminate()
        camera.wait(timeout=20)
