"""Bag replay and live evaluation over loopback DDS, on a bag written in tmp_path."""

import csv
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from signattn_driver.data.bag_layout import (camera_topic, DriveBagWriter, INVERSE_RADIUS_TOPIC,
                                             STEERING_TOPIC, TWIST_TOPIC)

rclpy = pytest.importorskip('rclpy', reason='rclpy not installed')
pytestmark = pytest.mark.ros
FRAMES = 30
PERIOD_NS = 50_000_000                     # 20 Hz, as the Udacity cameras
T0_NS = 1_479_424_215_000_000_000          # a 2016 stamp: replay must not care


@pytest.fixture
def drive_bag(tmp_path, camera_frames):
    path = tmp_path / 'drive'
    with DriveBagWriter(path) as bag:
        for i in range(FRAMES):
            stamp = T0_NS + i * PERIOD_NS
            image = cv2.resize(camera_frames[i % len(camera_frames)], (320, 240))
            bag.write_image(stamp, cv2.imencode('.jpg', image)[1].tobytes())
            bag.write_ground_truth(stamp, 0.3 * np.sin(i / 5), 10.0, 0.01 * np.sin(i / 5))
    return path


def test_replay_reproduces_count_and_timing(drive_bag, ros_domain_id):
    from geometry_msgs.msg import TwistStamped, Vector3Stamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CompressedImage, JointState

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('replay_listener', context=context)
    arrivals = {}
    topics = {camera_topic('center'): CompressedImage, STEERING_TOPIC: JointState,
              TWIST_TOPIC: TwistStamped, INVERSE_RADIUS_TOPIC: Vector3Stamped, '/clock': Clock}
    for topic, kind in topics.items():
        node.create_subscription(kind, topic, lambda m, t=topic: arrivals.setdefault(t, []).append(
            (time.perf_counter(), m)), QoSProfile(depth=1000))
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    rate = 2.0
    try:
        result = subprocess.run(
            [sys.executable, '-m', 'signattn_driver', 'replay', str(drive_bag), '--rate',
             str(rate), '--clock', '--wait-subscribers', '30'],
            capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        time.sleep(0.5)                     # the last messages are still on their way
    finally:
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    assert f'replayed {4 * FRAMES} messages on 4 topics' in result.stdout
    for topic in (camera_topic('center'), STEERING_TOPIC, TWIST_TOPIC, INVERSE_RADIUS_TOPIC):
        assert len(arrivals.get(topic, [])) == FRAMES, topic
    camera = arrivals[camera_topic('center')]
    stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for _, m in camera]
    assert stamps == [T0_NS + i * PERIOD_NS for i in range(FRAMES)]
    # Timing: arrival offsets follow the bag's, sped up by `rate` (loose: a shared CI machine).
    arrived = np.array([t for t, _ in camera]) - camera[0][0]
    expected = np.arange(FRAMES) * PERIOD_NS * 1e-9 / rate
    assert np.median(np.abs(arrived - expected)) < 0.05
    assert arrived[-1] == pytest.approx(expected[-1], rel=0.3)
    clock = [m.clock.sec * 10**9 + m.clock.nanosec for _, m in arrivals['/clock']]
    assert clock == sorted(clock) and T0_NS <= clock[0] and clock[-1] <= stamps[-1]


def test_replay_rejects_a_folder_that_is_not_a_bag(tmp_path):
    result = subprocess.run([sys.executable, '-m', 'signattn_driver', 'replay', str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().endswith('not a ROS 2 bag (no metadata.yaml)')


def test_evaluate_live_scores_the_node_against_ground_truth(drive_bag, tiny_checkpoint,
                                                            tmp_path, ros_domain_id):
    from signattn_driver.ros.live_evaluation import evaluate_live, LiveEvaluationConfig
    from signattn_driver.predictor import Predictor

    out = tmp_path / 'live'
    report = evaluate_live(LiveEvaluationConfig(bag=drive_bag, out_dir=out, attention_gif_frames=6,
                                                checkpoint=tiny_checkpoint, device='cpu'))
    assert report['frames_published'] == FRAMES
    assert report['commands_received'] + report['frames_dropped'] == FRAMES
    assert report['commands_received'] > FRAMES // 2
    assert report['frames_matched_with_ground_truth'] == report['commands_received']
    assert report['latency_p50_ms'] > 0
    assert (out / 'live_evaluation.md').read_text().startswith('# Live evaluation')
    # Both maps were heard (the node publishes them with the command it answers) and the GIF
    # puts them side by side: twice the width of a 320-pixel panel.
    assert 1 <= report['contribution_frames_received'] <= report['commands_received']
    assert report['attention_frames_received'] == report['contribution_frames_received']
    assert report['contribution_scale'] == 'per frame (max abs(phi))'   # the node's default
    assert 1 <= report['gif_frames'] <= 6
    assert report['gif_layout'] == 'attention alpha left, contribution phi right'
    from PIL import Image
    with Image.open(out / 'attention.gif') as gif:
        assert gif.n_frames == report['gif_frames'] and gif.size[0] == 640
    assert 'contribution overlays received' in (out / 'live_evaluation.md').read_text()

    with open(out / 'live_predictions.csv') as f:
        rows = list(csv.DictReader(f))
    answered = [r for r in rows if r['u_pred_per_m']]
    errors = [abs(float(r['u_pred_per_m']) - float(r['u_true_per_m'])) for r in answered]
    assert report['mae_inverse_radius_per_m'] == pytest.approx(np.mean(errors))
    # Until its first dropped frame the node steers exactly as the offline predictor does.
    predictor = Predictor(tiny_checkpoint, device='cpu')
    from rosbags.rosbag2 import Reader
    with Reader(drive_bag) as reader:
        conns = [c for c in reader.connections if c.topic == camera_topic('center')]
        jpegs = [bytes(raw[-0:]) for _, _, raw in reader.messages(connections=conns)]
    from signattn_driver.data.bag_layout import TYPESTORE
    for row, raw in zip(rows, jpegs):
        if not row['u_pred_per_m']:
            break
        msg = TYPESTORE.deserialize_cdr(raw, 'sensor_msgs/msg/CompressedImage')
        u, _ = predictor.step(cv2.imdecode(msg.data, cv2.IMREAD_COLOR), want_attention=False)
        assert float(row['u_pred_per_m']) == pytest.approx(u, abs=1e-5)


def test_listeners_that_hear_nothing_stop_with_the_likely_cause(drive_bag, tmp_path,
                                                                ros_domain_id):
    from signattn_driver.ros.live_evaluation import (evaluate_live, LiveEvaluationConfig,
                                                     LiveEvaluationError)
    from signattn_driver.ros.replay import replay_bag, ReplayError

    # A replay told to wait for a listener that never comes fails instead of publishing.
    with pytest.raises(ReplayError, match=f'ROS_DOMAIN_ID \\(here {ros_domain_id}\\)'):
        replay_bag(drive_bag, wait_for_subscribers_s=1.0)
    # Live evaluation attached to a node that is not in this domain fails with the cause.
    cfg = LiveEvaluationConfig(bag=drive_bag, out_dir=tmp_path / 'live', startup_timeout_s=1.0)
    with pytest.raises(LiveEvaluationError, match='ROS_AUTOMATIC_DISCOVERY_RANGE') as err:
        evaluate_live(cfg)
    assert 'no drive node listening' in str(err.value)
    assert not (tmp_path / 'live' / 'live_evaluation.json').exists()
