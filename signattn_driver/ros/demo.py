"""`signattn demo`: the shipped checkpoint drives the shipped sample drive through the real node.

Steps (each reuses the package's own tools, nothing is re-implemented here):
1. live: `live_evaluation.evaluate_live` starts `drive_node` with the checkpoint, replays the
   sample bag over loopback DDS in real time and records the node's commands (MAE, latency)
   and its two maps, `attention` (alpha) and `attention/contribution` (phi), side by side in
   an animated GIF;
2. offline: the same bag becomes a dataset (`bag_dataset`) and `evaluation.evaluate` scores the
   attention map against Grad-CAM and a random floor with the deletion metric;
3. a summary (Markdown + JSON) with where to look.

This module starts ROS processes only through live_evaluation; it never imports rclpy itself,
and never changes the environment: `signattn demo` (cli/demo.py) keeps DDS on loopback in a
domain of its own before calling `run_demo`.
"""

from dataclasses import dataclass
import json
import logging
import os
from pathlib import Path
import time

from signattn_driver.checkpoint import load
from signattn_driver.errors import RosError
from signattn_driver.paths import config_path, SHIPPED_MODEL

log = logging.getLogger(__name__)
DEFAULT_CHECKPOINT = SHIPPED_MODEL
DEFAULT_BAG = ('sample_drive',)


class DemoError(RosError):
    """The demo's inputs are missing or one of its steps failed."""


@dataclass
class DemoConfig:
    """Options of `signattn demo`."""

    out_dir: Path = Path('outputs/demo')
    checkpoint: Path | None = None      # None: the shipped model (paths.SHIPPED_MODEL)
    bag: Path | None = None             # None: config/sample_drive (ROS 2 bag)
    deletion_frames: int = 48           # frames scored by the deletion metric
    gif_frames: int = 80                # frames in the animation (alpha and phi side by side)
    methods: tuple = ('attention', 'gradcam', 'random')
    rate: float = 1.0                   # replay speed (1 = real time, as a car would send)
    device: str = 'auto'


def _default(path: Path | None, parts: tuple) -> Path:
    path = Path(path) if path else config_path(*parts)
    if not path.exists():
        raise DemoError(f'{path} not found (the demo needs the shipped sample; run it from a '
                        f'checkout or an install of signattn_driver)')
    return path


def run_demo(cfg: DemoConfig, announce=log.info) -> dict:
    """Run the three steps and write `cfg.out_dir/summary.{md,json}`; return the summary."""
    from signattn_driver.data.bag_dataset import dataset_from_bags
    from signattn_driver.data.labels import DEFAULT_SMOOTHING
    from signattn_driver.evaluation.evaluate import evaluate
    from signattn_driver.ros.live_evaluation import evaluate_live, LiveEvaluationConfig
    from signattn_driver.vehicle import VehicleProfile

    checkpoint = _default(cfg.checkpoint, DEFAULT_CHECKPOINT)
    bag = _default(cfg.bag, DEFAULT_BAG)
    ckpt = load(checkpoint)
    vehicle = VehicleProfile(**ckpt.metadata['vehicle'])
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vehicle_yaml = out / 'vehicle.yaml'
    vehicle_yaml.write_text(''.join(f'{k}: {v}\n' for k, v in vehicle.to_dict().items()))
    t0 = time.monotonic()

    announce(f'[1/3] driving {bag.name} through drive_node (real time, DDS domain '
             f'{os.environ.get("ROS_DOMAIN_ID", "0")})')
    live = evaluate_live(LiveEvaluationConfig(
        bag=bag, out_dir=out / 'live', checkpoint=checkpoint, rate=cfg.rate,
        vehicle=str(vehicle_yaml), device=cfg.device, attention_gif_frames=cfg.gif_frames))

    announce(f'[2/3] deletion metric on {cfg.deletion_frames} frames: '
             f'{", ".join(cfg.methods)}')
    # alpha_s the checkpoint's training labels were smoothed with (training records it; older
    # checkpoints, the shipped one included, were trained with the default).
    alpha_s = ckpt.metadata.get('smoothing_alpha', DEFAULT_SMOOTHING)
    dataset = dataset_from_bags([bag], out / 'dataset', vehicle, alpha_s, overwrite=True)
    offline = evaluate([checkpoint], dataset, methods=list(cfg.methods),
                       out_dir=out / 'explanations', device=cfg.device,
                       limit_frames=cfg.deletion_frames)

    announce('[3/3] summary')
    summary = _summary(cfg, checkpoint, ckpt, bag, live, offline, out, time.monotonic() - t0)
    summary['live']['zero_steering_mae_deg'] = _zero_steering_mae_deg(dataset)
    (out / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    (out / 'summary.md').write_text(_markdown(summary))
    return summary


def _zero_steering_mae_deg(dataset) -> float:
    """MAE (steering-wheel degrees) of always driving straight: the floor to beat."""
    import numpy as np

    from signattn_driver.data.dataset import Dataset
    from signattn_driver.vehicle import steering_wheel_error_deg
    ds = Dataset(dataset)
    errors = [steering_wheel_error_deg(0.0, d.labels['inverse_radius_per_m'],
                                       d.labels['speed_smoothed_mps'], ds.vehicle) for d in ds]
    return float(np.abs(np.concatenate(errors)).mean())


def _summary(cfg, checkpoint, ckpt, bag, live, offline, out, seconds) -> dict:
    (name, entry), = offline['checkpoints'].items()
    methods = {m: {'output_change_auc_25_deg_pct': s['deletion_change']['auc_25_deg_pct'],
                   'deletion_auc_25_deg_pct': s['deletion']['auc_25_deg_pct'],
                   'time_per_frame_ms': 1e3 * s['seconds_per_frame']}
               for m, s in entry['methods'].items()}
    return {
        'checkpoint': str(checkpoint), 'checkpoint_sha256': ckpt.file_sha256,
        'model': ckpt.config.to_dict(), 'bag': str(bag), 'seconds': round(seconds, 1),
        'live': {'frames_published': live['frames_published'],
                 'commands_received': live['commands_received'],
                 'mae_inverse_radius_per_m': live['mae_inverse_radius_per_m'],
                 'mae_steering_wheel_deg': live['mae_steering_wheel_deg'],
                 'latency_p50_ms': live['latency_p50_ms'],
                 'latency_p99_ms': live['latency_p99_ms'],
                 'report': str(out / 'live' / 'live_evaluation.md'),
                 'attention_gif': live.get('attention_gif'),
                 'gif_frames': live.get('gif_frames', 0), 'gif_layout': live.get('gif_layout'),
                 'attention_frames_received': live.get('attention_frames_received', 0),
                 'contribution_frames_received': live.get('contribution_frames_received', 0),
                 'contribution_scale': live.get('contribution_scale')},
        'offline': {'frames': entry['frames'], 'accuracy': entry['accuracy'],
                    'methods': methods, 'report': str(out / 'explanations' / 'report.md'),
                    'deletion_plot': str(out / 'explanations' /
                                         'deletion_change_curves.png')},
    }


def _markdown(s: dict) -> str:
    live, off = s['live'], s['offline']
    lines = [
        '# signattn_driver demo', '',
        f'Checkpoint `{s["checkpoint"]}` ({s["model"]["attention"]} attention, '
        f'{s["model"]["quant_bits"]} bits, LSTM {s["model"]["lstm_hidden"]}) on `{s["bag"]}`, '
        f'{s["seconds"]:.0f} s in all.', '',
        '## Live, through the drive node over DDS', '',
        f'- frames answered: {live["commands_received"]} / {live["frames_published"]}',
        f'- MAE of u: {live["mae_inverse_radius_per_m"]:.5f} 1/m; of the steering-wheel angle: '
        f'{live["mae_steering_wheel_deg"]:.2f} deg (always straight: '
        f'{live["zero_steering_mae_deg"]:.2f} deg)',
        f'- latency camera publish -> command: p50 {live["latency_p50_ms"]:.1f} ms, '
        f'p99 {live["latency_p99_ms"]:.1f} ms',
        f'- the two maps as the node published them, {live["gif_layout"]} '
        f'({live["gif_frames"]} frames; phi: blue pushes the wheel left, orange right, colour '
        f'scale {live["contribution_scale"]}): `{live["attention_gif"]}`',
        f'- overlays received: {live["attention_frames_received"]} attention, '
        f'{live["contribution_frames_received"]} contribution',
        f'- full report: `{live["report"]}`', '',
        '## Offline explanation quality (deletion metric, 0-25 % masked)', '',
        'Output change |u_masked - u_unmasked| (higher = the map found what the model uses) '
        'and, for comparison with the paper, the error against the label.', '',
        '| method | output-change AUC [deg x %] | paper\'s AUC vs label [deg x %] | '
        'time per frame [ms] |',
        '|---|---|---|---|',
    ]
    for m, v in off['methods'].items():
        lines.append(f'| {m} | {v["output_change_auc_25_deg_pct"]:.1f} | '
                     f'{v["deletion_auc_25_deg_pct"]:.1f} | {v["time_per_frame_ms"]:.1f} |')
    lines += ['', f'Deletion curves: `{off["deletion_plot"]}`; report: `{off["report"]}`', '']
    return '\n'.join(lines)
