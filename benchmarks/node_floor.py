"""The node benchmark's latency floor: what no node can beat, and the node's p50 over it.

The floor is the work a node cannot skip, each part measured on its own: `Predictor.step` and a
JPEG decode, timed in this process at the node's 20 Hz cadence (and back to back, for
reference) with 1 and 2 torch threads, the faster counting, plus one DDS hop of the same camera
message (camera -> listener, no node). `floor_ratios` divides the node's 20 Hz p50 by it
(`ratio_node_over_floor_<precision>_p50`). Raw 640x480 bgr8 frames (sent reliable) are not
decoded: their floor is the step plus one hop of the raw frame. `qos_probe` counts the raw
frames that arrive over Fast DDS LARGE_DATA for each input reliability.
"""

import time

import numpy as np

from benchmarks.node_processes import (camera_counts, close_listener, jpeg_frames,
                                       open_listener, require_heard, start_camera)
from signattn_driver.data.labels import stamp_ns_of
from signattn_driver.latency import latency_summary


# -- one DDS hop ----------------------------------------------------------------------------

def _listen(schedule: list, env: dict, mode: str, reliable: bool,
            subscriber_wait_s: float = 120.0) -> tuple[dict, list]:
    """Run a camera and subscribe to its frames directly: (published per phase, receipts).

    Raises:
        NothingHeardError: the camera found no subscriber, or no frame arrived.
    """
    from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image
    camera = start_camera(schedule, env, mode, subscriber_wait_s)
    executor, node, context = open_listener('benchmark_hop_listener')
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
        published = camera_counts(camera)
    finally:
        close_listener(executor, node, context, camera)
    require_heard(f'DDS hop ({mode})', len(received), sum(published.values()))
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


def dds_hop_ms(env: dict, duration_s: float, mode: str = 'jpeg') -> dict:
    """One DDS hop of the benchmark's 640x480 frame at 20 Hz, camera -> listener (no node).

    mode: 'jpeg' (CompressedImage, best effort) or 'raw-reliable' (bgr8 Image, reliable).
    """
    _, received = _listen([['warmup', 5, 2.0], ['20hz', 20, duration_s]], env, mode,
                          mode == 'raw-reliable')
    lat = [r[2] for r in received if r[0] == '20hz']
    return {**latency_summary(lat), 'received': len(lat)}


# -- the parts timed in this process --------------------------------------------------------

def _paced_ms(work, n: int, rate_hz: float, warmup: int = 10) -> np.ndarray:
    """Time work(i) for i in range(n); with rate_hz, start each call on a rate_hz grid.

    At a camera's rate the CPU idles between frames: caches cool, and OpenMP's worker threads
    stop spinning and sleep, so a paced call costs more than one of a back-to-back loop.
    """
    period = 1.0 / rate_hz if rate_hz else 0.0
    times = []
    start = time.perf_counter()
    for i in range(warmup + n):
        if period:
            target = start + i * period
            while time.perf_counter() < target:
                time.sleep(min(0.002, max(target - time.perf_counter(), 0)))
        t0 = time.perf_counter()
        work(i)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return np.array(times)


def floor_parts(path: str, precisions: list, thread_choice: str, device: str = 'cpu',
                rate_hz: float = 20.0, steps: int = 150) -> dict:
    """Time Predictor.step and the JPEG decode in this process, paced at rate_hz and back to back.

    The step is timed with 1 and 2 torch threads (unless fixed); the floor takes the faster
    (`fastest_threads`), whatever thread count the node then runs with. Each part's `p50_ms`
    is its paced p50 (the floor: the node runs at the camera's rate, not back to back);
    `back_to_back` holds the loop figures.
    """
    import cv2
    import torch
    from benchmarks.predictor import _frames
    from signattn_driver.predictor import Predictor
    frames = _frames(32)
    jpegs = jpeg_frames(32)
    out = {'rate_hz': rate_hz, 'step': {}}
    candidates = (1, 2) if thread_choice == 'auto' else (int(thread_choice),)
    for precision in precisions:
        predictor = Predictor(path, device=device, precision=precision)

        def step(i):
            predictor.step(frames[i % len(frames)], want_attention=False)
        timed = {}
        for threads in candidates:
            torch.set_num_threads(threads)
            predictor.reset()
            timed[threads] = {**latency_summary(_paced_ms(step, steps, rate_hz)),
                              'back_to_back': latency_summary(_paced_ms(step, steps, 0))}
        best = min(timed, key=lambda t: timed[t]['p50_ms'])
        out['step'][precision] = {'by_threads': timed, 'fastest_threads': best, **timed[best]}
    torch.set_num_threads(1)

    def decode(i):
        cv2.imdecode(np.frombuffer(jpegs[i % len(jpegs)], np.uint8), cv2.IMREAD_COLOR)
    out['jpeg_decode'] = {**latency_summary(_paced_ms(decode, steps, rate_hz)),
                          'back_to_back': latency_summary(_paced_ms(decode, 200, 0))}
    return out


# -- the node over its floor ----------------------------------------------------------------

def floor_ratios(precision: str, transport: str, floor: dict, variants: dict) -> dict:
    """Return the node's 20 Hz p50 over its floor, three ways, for one precision and transport."""
    out = {}
    tag = precision + ('_raw' if transport == 'raw' else '')
    step = floor['step'][precision]
    if transport == 'raw':
        hop, decode, decode_loop = floor['dds_hop_raw']['p50_ms'], 0.0, 0.0
    else:
        hop = floor['dds_hop']['p50_ms']
        decode = floor['jpeg_decode']['p50_ms']
        decode_loop = floor['jpeg_decode']['back_to_back']['p50_ms']
    node_p50 = variants[f'node_{tag}']['phases']['20hz']['latency_p50_ms']
    out[f'floor_{tag}_p50_ms'] = step['p50_ms'] + decode + hop
    out[f'ratio_node_over_floor_{tag}_p50'] = node_p50 / out[f'floor_{tag}_p50_ms']
    # The parts timed back to back (warm caches, spinning OpenMP workers): a lower floor than
    # a 20 Hz node can reach, reported beside the paced one.
    loop = step['back_to_back']['p50_ms'] + decode_loop + hop
    out[f'floor_back_to_back_{tag}_p50_ms'] = loop
    out[f'ratio_node_over_back_to_back_floor_{tag}_p50'] = node_p50 / loop
    # The same floor from the node's own stages in the 20 Hz phase (step = preprocess +
    # network, decode, hop = age at receipt): immune to load changing between parts.
    stages = variants[f'node_{tag}']['phases']['20hz'].get('node_stages_p50_ms')
    if stages:
        own = sum(stages[k] for k in ('preprocess', 'network', 'decode', 'age_at_receipt'))
        out[f'ratio_node_over_stage_floor_{tag}_p50'] = node_p50 / own
    return out
