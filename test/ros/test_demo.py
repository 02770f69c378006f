"""The demo's pieces on a shortened drive: real node over DDS, GIF, deletion plot, summary."""

import json

import cv2
from PIL import Image
import pytest
import torch

from conftest import tiny_config
from signattn_driver import checkpoint
from signattn_driver.data.bag_layout import DriveBagWriter, read_ground_truth
from signattn_driver.map_animation import PANEL_WIDTH_PX
from signattn_driver.ros.demo import DEFAULT_BAG, DEFAULT_CHECKPOINT, DemoConfig, run_demo
from signattn_driver.model import SteeringNet
from signattn_driver.paths import config_path
from signattn_driver.vehicle import load_vehicle


def test_shipped_checkpoint_and_sample_drive_are_usable():
    ckpt = checkpoint.load(config_path(*DEFAULT_CHECKPOINT))
    assert ckpt.config.attention == 'sign' and ckpt.metadata['vehicle']['name'] == 'metadrive'
    assert config_path(*DEFAULT_CHECKPOINT).stat().st_size <= 15 * 2**20
    truth = read_ground_truth(config_path(*DEFAULT_BAG))
    assert len(truth['stamp_ns']) >= 600                       # >= 30 s at 20 Hz
    assert sum(p.stat().st_size for p in config_path(*DEFAULT_BAG).iterdir()) <= 10 * 2**20


@pytest.mark.ros
def test_demo_on_a_short_drive(tmp_path, camera_frames, ros_domain_id, monkeypatch):
    # what `signattn demo` (cli/demo.py isolate_dds) sets: the library leaves the environment
    monkeypatch.setenv('FASTDDS_BUILTIN_TRANSPORTS', 'LARGE_DATA')
    torch.manual_seed(0)
    ckpt = checkpoint.save(tmp_path / 'm.pt', SteeringNet(tiny_config()).eval(),
                           vehicle=load_vehicle('mkz').to_dict())
    bag = tmp_path / 'short_drive'
    with DriveBagWriter(bag) as writer:
        for i in range(24):
            stamp = 3_000_000_000 + i * 50_000_000
            writer.write_image(stamp, cv2.imencode('.jpg', camera_frames[i % 8])[1].tobytes())
            writer.write_ground_truth(stamp, 0.05 * (i % 5), 12.0, 0.001 * (i % 5))
    summary = run_demo(DemoConfig(out_dir=tmp_path / 'demo', checkpoint=ckpt, bag=bag,
                                  deletion_frames=4, gif_frames=5, device='cpu'),
                       announce=lambda line: None)
    live = summary['live']
    # Every frame goes out; how many the node answers depends on the machine's load (it keeps
    # only the newest frame), so the test asks for answers, not for all of them.
    assert live['frames_published'] == 24
    assert 1 <= live['commands_received'] <= 24
    assert live['mae_steering_wheel_deg'] >= 0 and live['latency_p50_ms'] > 0
    assert live['zero_steering_mae_deg'] > 0
    gif = tmp_path / 'demo' / 'live' / 'attention.gif'
    assert gif.read_bytes()[:6] in (b'GIF87a', b'GIF89a')
    # the animation shows both maps of each frame: attention left, contribution right
    assert live['contribution_frames_received'] >= 1
    assert live['gif_layout'] == 'attention alpha left, contribution phi right'
    with Image.open(gif) as animation:
        assert animation.n_frames == live['gif_frames'] and 1 <= live['gif_frames'] <= 5
        assert animation.size[0] == 2 * PANEL_WIDTH_PX
    assert 'contribution phi right' in (tmp_path / 'demo' / 'summary.md').read_text()
    assert (tmp_path / 'demo' / 'explanations' / 'deletion_curves.png').is_file()
    assert summary['offline']['deletion_plot'].endswith('deletion_change_curves.png')
    assert (tmp_path / 'demo' / 'explanations' / 'deletion_change_curves.png').is_file()
    methods = summary['offline']['methods']
    assert set(methods) == {'attention', 'gradcam', 'random'}
    # the headline metric is the output change; it is a non-negative area
    assert all(v['output_change_auc_25_deg_pct'] >= 0 for v in methods.values())
    saved = json.loads((tmp_path / 'demo' / 'summary.json').read_text())
    assert saved['offline']['frames'] == summary['offline']['frames'] > 0
    assert 'output-change AUC' in (tmp_path / 'demo' / 'summary.md').read_text()
