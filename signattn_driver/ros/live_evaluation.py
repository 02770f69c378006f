"""Closed-loop check of the drive node on a bag (`signattn evaluate-live`).

Replays the bag's camera at real-time rate (or `rate`) to a drive node, either one started
here from a checkpoint or one already running, and listens to its `steering/command`. Each
command carries the camera frame's header, so predictions meet ground truth by header stamp;
the ground truth (/vehicle/inverse_turning_radius and the speed of /vehicle/twist) is read from
the same bag, so none of it can be lost in transit. The report (JSON, Markdown and a per-frame
CSV) holds the MAE of u and of the steering-wheel angle (eq. 3 inverted with the measured
speed), the latency from publishing a frame to receiving its command, and the frames the node
dropped. With `attention_gif_frames` > 0 it also listens to the node's `attention` and
`attention/contribution` overlays and writes them side by side as `attention.gif` (live_maps).
"""

from dataclasses import asdict, dataclass
import json
import logging
import math
from pathlib import Path
import struct
import threading
import time

import numpy as np
from rosbags.rosbag2 import Reader

from signattn_driver.data import bag_layout
from signattn_driver.data.bag_layout import camera_topic, INVERSE_RADIUS_TOPIC
from signattn_driver.data.labels import stamp_ns_of
from signattn_driver.errors import RosError
from signattn_driver.latency import latency_summary
from signattn_driver.ros.live_maps import MapRecorder
from signattn_driver.ros.node_process import NodeProcess, nothing_heard_hint
from signattn_driver.route_command import NODE_ROUTE_COMMAND_TOPIC
from signattn_driver.vehicle import load_vehicle, steering_wheel_error_deg

log = logging.getLogger(__name__)
LATENCY_PERCENTILES = (50, 90, 99)


class LiveEvaluationError(RosError):
    """The evaluation cannot run: bag without ground truth, node not starting or not found."""


@dataclass
class LiveEvaluationConfig:
    """Options of `signattn evaluate-live` (see the CLI for their help)."""

    bag: Path
    out_dir: Path = Path('outputs/live_evaluation')
    checkpoint: Path | None = None    # None: attach to a running node
    rate: float = 1.0
    vehicle: str = 'mkz'
    camera_topic: str = camera_topic('center')
    command_topic: str = '/steering/command'
    node_name: str = 'drive_node'
    device: str = 'auto'
    precision: str = 'fp32'
    startup_timeout_s: float = 60.0
    match_tolerance_s: float = 0.025   # ground truth within half a frame at 20 Hz
    settle_s: float = 2.0              # wait this long after the last frame for late commands
    attention_gif_frames: int = 0      # > 0: both maps' overlays as a GIF (and count them)
    attention_topic: str = '/attention'
    contribution_topic: str = '/attention/contribution'
    diagnostics_topic: str = '/diagnostics'   # the node reports its contribution scale there


def header_stamp_ns(rawdata) -> int:
    """Header stamp of a serialized message that starts with std_msgs/Header (CDR)."""
    endian = '<' if rawdata[1] == 1 else '>'
    sec, nanosec = struct.unpack_from(endian + 'iI', rawdata, 4)
    return sec * 1_000_000_000 + nanosec


def required_ground_truth(bag) -> dict:
    """Return the bag's ground truth (bag_layout.read_ground_truth); an error if it has none."""
    truth = bag_layout.read_ground_truth(bag)
    if not len(truth['stamp_ns']):
        raise LiveEvaluationError(f'{bag}: no ground truth on {INVERSE_RADIUS_TOPIC} (convert '
                                  f'the drive with `signattn convert`)')
    return truth


def _nearest(stamps: np.ndarray, query: np.ndarray, tolerance_ns: int) -> np.ndarray:
    """Index into sorted `stamps` of the nearest one to each query, -1 beyond tolerance."""
    pos = np.clip(np.searchsorted(stamps, query), 1, max(len(stamps) - 1, 1))
    left = stamps[pos - 1]
    right = stamps[np.minimum(pos, len(stamps) - 1)]
    idx = np.where(np.abs(query - left) <= np.abs(right - query), pos - 1, pos)
    idx = np.minimum(idx, len(stamps) - 1)
    return np.where(np.abs(stamps[idx] - query) <= tolerance_ns, idx, -1)


def summarize(published: dict, commands: dict, truth: dict, vehicle, tolerance_s: float):
    """Match frames, commands and ground truth; return (report dict, per-frame rows).

    Args:
        published: camera header stamp (ns) -> perf_counter() when the frame went out.
        commands: header stamp (ns) -> (u in 1/m, perf_counter() at receipt).
        truth: from `required_ground_truth`.
        vehicle: VehicleProfile for eq. 3.
        tolerance_s: largest stamp difference between a frame and its ground truth.
    """
    stamps = np.array(sorted(published), np.int64)
    answered = np.array([s in commands for s in stamps], bool)
    latency_ms = np.array([(commands[s][1] - published[s]) * 1e3 for s in stamps[answered]])
    idx = _nearest(truth['stamp_ns'], stamps, int(tolerance_s * 1e9)) if len(stamps) else \
        np.zeros(0, int)
    rows = []
    for s, a, i in zip(stamps, answered, idx):
        row = {'stamp_ns': int(s), 'u_pred_per_m': commands[s][0] if a else None,
               'u_true_per_m': float(truth['inverse_radius_per_m'][i]) if i >= 0 else None,
               'speed_mps': float(truth['speed_mps'][i]) if i >= 0 else None,
               'latency_ms': (commands[s][1] - published[s]) * 1e3 if a else None}
        rows.append(row)
    both = [r for r in rows if r['u_pred_per_m'] is not None and r['u_true_per_m'] is not None]
    pred = np.array([r['u_pred_per_m'] for r in both])
    true = np.array([r['u_true_per_m'] for r in both])
    speed = np.array([r['speed_mps'] for r in both])
    theta_err = np.abs(steering_wheel_error_deg(pred, true, speed, vehicle))

    report = {
        'frames_published': int(len(stamps)),
        'commands_received': int(answered.sum()),
        'frames_dropped': int(len(stamps) - answered.sum()),
        'drop_fraction': float(1 - answered.mean()) if len(stamps) else None,
        'frames_matched_with_ground_truth': len(both),
        'mae_inverse_radius_per_m': float(np.mean(np.abs(pred - true))) if both else None,
        'mae_steering_wheel_deg': float(np.nanmean(theta_err)) if both else None,
        **{key: None if math.isnan(value) else value for key, value in latency_summary(
            latency_ms, 'latency_', LATENCY_PERCENTILES, mean_and_max=True).items()},
        'vehicle': vehicle.name,
    }
    return report, rows


def write_report(out_dir: Path, report: dict, rows: list) -> Path:
    """Write live_evaluation.json, live_evaluation.md and live_predictions.csv; return the md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'live_evaluation.json').write_text(json.dumps(report, indent=2) + '\n')
    with open(out_dir / 'live_predictions.csv', 'w') as f:
        f.write('stamp_ns,u_pred_per_m,u_true_per_m,speed_mps,latency_ms\n')
        for r in rows:
            f.write(','.join('' if r[k] is None else str(r[k]) for k in (
                'stamp_ns', 'u_pred_per_m', 'u_true_per_m', 'speed_mps', 'latency_ms')) + '\n')

    def fmt(value, spec):
        return 'n/a' if value is None else format(value, spec)
    lines = [
        f'# Live evaluation of {report["bag"]}', '',
        f'Node: {report["node"]}; replay rate {report["rate"]}; vehicle {report["vehicle"]}.', '',
        '| quantity | value |', '|---|---|',
        f'| frames published | {report["frames_published"]} |',
        f'| commands received | {report["commands_received"]} |',
        f'| frames dropped | {report["frames_dropped"]} '
        f'({fmt(report["drop_fraction"], ".1%")}) |',
        f'| frames matched with ground truth | {report["frames_matched_with_ground_truth"]} |',
        f'| MAE u (1/m) | {fmt(report["mae_inverse_radius_per_m"], ".5f")} |',
        f'| MAE steering-wheel angle (deg) | {fmt(report["mae_steering_wheel_deg"], ".2f")} |',
        *(f'| latency {k} (ms, frame published -> command received) | '
          f'{fmt(report[f"latency_{k}_ms"], ".2f")} |' for k in ('p50', 'p90', 'p99', 'max')),
    ]
    if 'gif_frames' in report:
        scale = report['contribution_scale_reported_per_m']
        lines += [
            f'| attention overlays received | {report["attention_frames_received"]} |',
            f'| contribution overlays received | {report["contribution_frames_received"]} |',
            f'| contribution colour scale | {report["contribution_scale"]}'
            + (f', reported {scale["min"]:.3g}-{scale["max"]:.3g} 1/m' if scale else '') + ' |',
            f'| frames in `attention.gif` ({report["gif_layout"] or "none heard"}) | '
            f'{report["gif_frames"]} |']
    path = out_dir / 'live_evaluation.md'
    path.write_text('\n'.join(lines) + '\n')
    return path


def _start_node(cfg: LiveEvaluationConfig, log_path: Path) -> NodeProcess:
    return NodeProcess(
        parameters={'checkpoint': Path(cfg.checkpoint).resolve(), 'device': cfg.device,
                    'precision': cfg.precision, 'input_transport': 'compressed'},
        remaps={'__node': cfg.node_name, 'image/compressed': cfg.camera_topic,
                'steering/command': cfg.command_topic},
        log_path=log_path)


def evaluate_live(cfg: LiveEvaluationConfig) -> dict:
    """Run the evaluation; write the report under `cfg.out_dir` and return it.

    Raises:
        LiveEvaluationError: no ground truth in the bag, or no node heard (none found, or
            none of its commands arrived; the message names the likely DDS cause).
    """
    truth = required_ground_truth(cfg.bag)
    vehicle = load_vehicle(cfg.vehicle)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    process = _start_node(cfg, cfg.out_dir / 'drive_node.log') if cfg.checkpoint else None
    try:
        published, commands, maps = _drive_bag(cfg, process)
    finally:
        if process is not None:
            process.stop()
    if published and not commands:
        raise LiveEvaluationError(f'the drive node answered none of the {len(published)} '
                                  f'frames on {cfg.command_topic}: {nothing_heard_hint()}')
    report, rows = summarize(published, commands, truth, vehicle, cfg.match_tolerance_s)
    report.update(bag=str(cfg.bag), rate=cfg.rate,
                  node='started from ' + str(cfg.checkpoint) if cfg.checkpoint else 'attached',
                  device=cfg.device if cfg.checkpoint else None,
                  precision=cfg.precision if cfg.checkpoint else None)
    report['config'] = {k: str(v) for k, v in asdict(cfg).items()}
    if maps is not None:
        report.update(maps.summary(), **maps.write(cfg.out_dir / 'attention.gif'))
    write_report(cfg.out_dir, report, rows)
    return report


def _drive_bag(cfg: LiveEvaluationConfig, process: NodeProcess | None) -> tuple:
    """Replay the bag's camera to the node and listen to it from a context of our own.

    Returns:
        (published: camera stamp ns -> perf_counter() at publishing, commands: stamp ns ->
        (u in 1/m, perf_counter() at receipt), maps: the MapRecorder, None without a GIF).
    """
    import rclpy
    from geometry_msgs.msg import Vector3Stamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile
    from std_srvs.srv import Trigger

    from signattn_driver.ros.replay import BagReplayer

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('signattn_evaluate_live', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    commands, published = {}, {}
    maps = MapRecorder(cfg.attention_gif_frames) if cfg.attention_gif_frames > 0 else None
    try:
        node.create_subscription(
            Vector3Stamped, cfg.command_topic,
            lambda m: commands.__setitem__(stamp_ns_of(m.header),
                                           (m.vector.x, time.perf_counter())),
            QoSProfile(depth=1000))
        if maps is not None:
            _listen_to_maps(cfg, node, maps)
        reset = node.create_client(Trigger, f'/{cfg.node_name}/reset_state')
        threading.Thread(target=executor.spin, daemon=True).start()
        # the camera, and the recorded route command as the node hears it (a command model)
        replayer = BagReplayer(node, cfg.bag, rate=cfg.rate,
                               topics=[cfg.camera_topic, NODE_ROUTE_COMMAND_TOPIC])
        camera = replayer.publishers.get(cfg.camera_topic)
        if camera is None:
            raise LiveEvaluationError(f'{cfg.bag}: no {cfg.camera_topic} to replay')
        _wait_for_node(cfg, node, camera, process)
        _warm_up(replayer, camera, commands)
        _reset_node(reset)
        commands.clear()
        if maps is not None:
            maps.per_frame_scale = _per_frame_scale(node, cfg.node_name)
            time.sleep(0.3)   # the warm-up frame's maps follow its command: not the drive's
            maps.clear()
        replayer.run(on_publish=lambda topic, bag_ns, raw, wall: published.__setitem__(
            header_stamp_ns(raw), wall))
        end = time.monotonic() + cfg.settle_s
        while time.monotonic() < end and len(commands) < len(published):
            time.sleep(0.05)
        # The node sends a frame's maps after its command: let the last ones arrive.
        end = time.monotonic() + min(cfg.settle_s, 1.0)
        if maps is not None:
            time.sleep(min(cfg.settle_s, 0.2))
            while time.monotonic() < end and not maps.caught_up():
                time.sleep(0.05)
    finally:
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    return published, dict(commands), maps


def _wait_for_node(cfg: LiveEvaluationConfig, node, camera, process: NodeProcess | None):
    """Wait until a node subscribes to the camera and publishes commands (or fail)."""
    deadline = time.monotonic() + cfg.startup_timeout_s
    while not (camera.get_subscription_count() and node.count_publishers(cfg.command_topic)):
        if process is not None and not process.alive():
            raise LiveEvaluationError('the drive node exited: ' + process.stderr_tail(1))
        if time.monotonic() > deadline:
            raise LiveEvaluationError(
                f'no drive node listening on {cfg.camera_topic} and publishing '
                f'{cfg.command_topic} after {cfg.startup_timeout_s:.0f} s: '
                f'{nothing_heard_hint()} Start one or pass --checkpoint.')
        time.sleep(0.1)


def _reset_node(reset):
    """Make the node start a new sequence (`reset`: its ~/reset_state client) after warm-up."""
    from std_srvs.srv import Trigger
    if reset.wait_for_service(timeout_sec=5.0):
        future = reset.call_async(Trigger.Request())
        while not future.done():
            time.sleep(0.01)
    else:
        log.warning('no %s service: the node keeps its LSTM state', reset.srv_name)


def _listen_to_maps(cfg: LiveEvaluationConfig, node, maps: MapRecorder):
    """Subscribe `maps` to the node's two overlays and its /diagnostics."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image
    node.create_subscription(Image, cfg.attention_topic, maps.on_attention, QoSProfile(depth=10))
    node.create_subscription(Image, cfg.contribution_topic, maps.on_contribution,
                             QoSProfile(depth=10))
    node.create_subscription(DiagnosticArray, cfg.diagnostics_topic, maps.on_diagnostics,
                             QoSProfile(depth=10))


def _per_frame_scale(node, node_name: str, timeout_s: float = 2.0) -> bool | None:
    """Ask the node whether it scales each contribution overlay to its own max |phi|.

    Returns:
        True for `contribution_scale_per_m` 0 (each frame's max), False for a fixed scale, None
        when the node does not answer or has no such parameter.
    """
    from rcl_interfaces.msg import ParameterType
    from rcl_interfaces.srv import GetParameters
    client = node.create_client(GetParameters, f'/{node_name}/get_parameters')
    try:
        if not client.wait_for_service(timeout_sec=timeout_s):
            return None
        future = client.call_async(GetParameters.Request(names=['contribution_scale_per_m']))
        end = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < end:
            time.sleep(0.01)
        values = future.result().values if future.done() and future.result() else []
        if not values or values[0].type != ParameterType.PARAMETER_DOUBLE:
            return None
        return values[0].double_value <= 0.0
    finally:
        node.destroy_client(client)


def _warm_up(replayer, camera, commands, tries: int = 40):
    """Send the bag's first frame until it is answered (the first large sample is slow)."""
    with Reader(replayer.bag) as reader:
        conns = [c for c in reader.connections if c.topic == camera.topic_name]
        raw = bytes(next(reader.messages(connections=conns))[2])
    stamp = header_stamp_ns(raw)
    for _ in range(tries):
        camera.publish(raw)
        end = time.monotonic() + 0.5
        while stamp not in commands and time.monotonic() < end:
            time.sleep(0.01)
        if stamp in commands:
            return
    raise LiveEvaluationError(f'the drive node never answered a warm-up frame: '
                              f'{nothing_heard_hint()}')
