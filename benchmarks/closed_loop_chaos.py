"""In process or through the node: is the difference chaos or real? (issue 20).

A closed-loop drive feeds its own errors back: the car drifts a little, the next picture differs,
the next command differs. So two drives that differ by very little at one frame may end far
apart, with different out-of-road events. Before a difference between in-process driving and
driving through the drive node (`signattn drive-sim --through-ros`) is read as a real one, this
measures how far a drive moves when nothing but a tiny perturbation changes.

On each map the same checkpoint drives in process as the `reference`, again unchanged
(`repeat`; `--no-repeat` skips it) and once with one tiny perturbation (`perturbed`): `--delta`
added to the steering command at frame `--frame` (default), or with `--perturbation jpeg` the
camera JPEG quality one lower throughout. With `--through-ros` it also drives through the real
drive node (`ros`). All runs of a map share one simulator process and the same frame stamps.
The repeat is the floor of chaos: MetaDrive's physics is not bit-reproducible from one reset
of a map to the next (the car's speed differs by ~1e-13 m/s within a second of the start, with
a fixed steering command), so even an unchanged drive departs from the reference in the end.

Per map and run: `divergence_frame`, the first frame at which the car is more than
`--threshold-m` from where the reference car was at that frame (None: never, over the frames
both drove); `command_divergence_frame`, the first frame whose applied steering command differs
from the reference's by more than 1e-6 (`command_difference_there`: by how much); and the
drive's figures (out-of-road events, lateral p95, autonomous and route completion, end). The
ros run also reports the frames the controller had to resend (`frames_resent`).

Reading it: a ros run whose command departs from the reference's no earlier than the repeat's
does, by a float-noise amount, and whose figures scatter about the reference no more than the
repeat's and the perturbed run's do, differs by chaos; a ros command that departs early, by a
large step, is a real difference (docs/simulation.md, "In process and through the node").

Run (from a source checkout, the sim extra installed):
    PYTHONPATH=. python benchmarks/closed_loop_chaos.py --seeds 5001 5002 --through-ros \
        --out docs/results/route/closed_loop_chaos.json
"""

import argparse
from dataclasses import dataclass, field, replace
import hashlib
import json
import math
from pathlib import Path
import sys
import time

import numpy as np

from signattn_driver.route_command import FOLLOW_LANE
from signattn_driver.sim.closed_loop import (ClosedLoopConfig, Controller, drive_episode,
                                             ModelController)
from signattn_driver.sim.metadrive_adapter import MetaDriveSim, SimConfig

CHECKOUT = Path(__file__).resolve().parents[1]
COMMAND_TOLERANCE = 1e-6   # steering commands (in [-1, 1]) equal up to float noise


@dataclass
class ChaosConfig:
    """What is driven and how the perturbed run differs (the script's defaults)."""

    checkpoint: Path = CHECKOUT / 'config' / 'models' / 'sim_mean_field.pt'
    perturbation: str = 'steering'   # 'steering': +delta at one frame; 'jpeg': quality - 1
    delta: float = 1e-3              # added to the steering command in [-1, 1] (0.04 deg)
    frame: int = 40                  # the perturbed frame, 0-based (2 s in at 20 Hz)
    threshold_m: float = 0.1         # positions further apart than this have diverged
    repeat: bool = True
    through_ros: bool = False
    threads: int = 1                 # torch threads, in process and in the node
    machine: str = '2-core CPU'
    drive: ClosedLoopConfig = field(default_factory=ClosedLoopConfig)   # maps: drive.seeds


class SteeringNudge(Controller):
    """`inner`'s steering with `delta` added at frame `frame` of each episode (0-based)."""

    def __init__(self, inner: Controller, frame: int, delta: float):
        self.inner, self.frame, self.delta = inner, frame, delta
        self.name = f'{inner.name}+nudge'
        self._index = 0

    def reset(self):
        """Start a new episode: count frames from 0 again."""
        self._index = 0
        self.inner.reset()

    def steer(self, jpeg, stamp_ns, speed_mps, sim, route_command=FOLLOW_LANE) -> float:
        """Return the inner command, nudged at the chosen frame."""
        command = self.inner.steer(jpeg, stamp_ns, speed_mps, sim, route_command=route_command)
        nudge = self.delta if self._index == self.frame else 0.0
        self._index += 1
        return command + nudge


def first_exceeding(reference, other, threshold: float) -> int | None:
    """Return the first index at which two traces differ by more than `threshold`.

    Args:
        reference: (n,) or (n, d) per-frame values (d: e.g. x, y in m).
        other: (m,) or (m, d) the same quantity of another run.
        threshold: largest difference (Euclidean over d) that still counts as equal.

    Returns:
        The first frame index below min(n, m) exceeding it, or None if none does.
    """
    a, b = np.asarray(reference, np.float64), np.asarray(other, np.float64)
    n = min(len(a), len(b))
    diff = np.abs(a[:n] - b[:n]) if a.ndim == 1 else np.linalg.norm(a[:n] - b[:n], axis=-1)
    over = np.flatnonzero(diff > threshold)
    return int(over[0]) if len(over) else None


def drive_traced(sim, controller, seed: int, drive: ClosedLoopConfig, episode_index: int):
    """Drive one episode; return its measurements and its per-frame positions and commands."""
    positions, commands = [], []

    def observe(state, command, expert_steering, in_charge):
        positions.append(state.position_m)
        commands.append(command)
    episode = drive_episode(sim, controller, seed, drive, episode_index, observer=observe)
    return episode, np.asarray(positions, np.float64), np.asarray(commands, np.float64)


def run_report(episode: dict) -> dict:
    """Return the figures of one drive that the runs are compared by."""
    offsets = np.asarray(episode['offsets_m'], np.float64)
    return {'frames': episode['frames'], 'end': episode['end'],
            'out_of_road_events': episode['out_of_road_events'],
            'lateral_offset_p95_m': float(np.percentile(offsets, 95)) if len(offsets)
            else float('nan'),
            'lateral_offset_mean_m': float(offsets.mean()) if len(offsets) else float('nan'),
            'autonomous_completion': episode['autonomous_completion'],
            'route_completion': episode['route_completion'],
            'out_of_road_places': episode['out_of_road_places']}


def compare_runs(traces: dict, threshold_m: float, rate_hz: float) -> dict:
    """Add each run's divergence from the 'reference' run to its report.

    Args:
        traces: {run name: (report dict, (n, 2) positions m, (n,) commands)}, with 'reference'.
        threshold_m: positions further apart than this have diverged.
        rate_hz: frames per second (for the divergence time).
    """
    _, ref_xy, ref_command = traces['reference']
    out = {}
    for name, (report, xy, command) in traces.items():
        frame = first_exceeding(ref_xy, xy, threshold_m)
        command_frame = first_exceeding(ref_command, command, COMMAND_TOLERANCE)
        out[name] = {**report, 'divergence_frame': frame,
                     'divergence_s': None if frame is None else frame / rate_hz,
                     'command_divergence_frame': command_frame,
                     'command_difference_there': None if command_frame is None else
                     float(command[command_frame] - ref_command[command_frame])}
    return out


def summarize(maps: list) -> dict:
    """Per run over the maps: event total, mean lateral p95 and completion, divergences."""
    names = maps[0]['runs'].keys() if maps else ()
    summary = {}
    for name in names:
        runs = [m['runs'][name] for m in maps]
        p95 = [r['lateral_offset_p95_m'] for r in runs if math.isfinite(r['lateral_offset_p95_m'])]
        summary[name] = {
            'out_of_road_events': sum(r['out_of_road_events'] for r in runs),
            'lateral_offset_p95_m_mean': float(np.mean(p95)) if p95 else None,
            'autonomous_completion_mean': float(np.mean([r['autonomous_completion']
                                                         for r in runs])),
            'maps_diverged': sum(r['divergence_frame'] is not None for r in runs),
            'divergence_frames': [r['divergence_frame'] for r in runs],
            'command_divergence_frames': [r['command_divergence_frame'] for r in runs]}
    return summary


def run(config: ChaosConfig, progress=print) -> dict:
    """Drive every map in every run; return the JSON-ready results (see the module doc)."""
    import torch
    torch.set_num_threads(config.threads)
    model = ModelController(config.checkpoint)
    perturbed_drive = config.drive
    if config.perturbation == 'jpeg':
        perturbed_drive = replace(config.drive, jpeg_quality=config.drive.jpeg_quality - 1)
        perturbed = model
    else:
        perturbed = SteeringNudge(model, config.frame, config.delta)
    runs = [('reference', model, config.drive)]
    if config.repeat:
        runs.append(('repeat', model, config.drive))
    runs.append(('perturbed', perturbed, perturbed_drive))
    ros = None
    if config.through_ros:
        from signattn_driver.ros.sim_controller import RosController
        ros = RosController(config.checkpoint, num_threads=config.threads)
        runs.append(('ros', ros, config.drive))
    maps = []
    try:
        with MetaDriveSim(config.drive.sim) as sim:
            for index, seed in enumerate(config.drive.seeds):
                traces = {}
                for name, controller, drive in runs:
                    resent = ros.frames_resent if ros is not None else 0
                    started = time.perf_counter()
                    episode, xy, command = drive_traced(sim, controller, seed, drive, index)
                    traces[name] = (run_report(episode), xy, command)
                    if controller is ros:
                        traces[name][0]['frames_resent'] = ros.frames_resent - resent
                    progress(f'map {seed} {name}: {episode["frames"]} frames, '
                             f'{episode["out_of_road_events"]} events, '
                             f'{time.perf_counter() - started:.0f} s')
                maps.append({'seed': seed, 'runs': compare_runs(
                    traces, config.threshold_m, config.drive.sim.rate_hz)})
    finally:
        if ros is not None:
            ros.close()
    checkpoint = Path(config.checkpoint)
    return {'machine': config.machine, 'torch_threads': config.threads,
            'checkpoint': str(checkpoint.resolve().relative_to(CHECKOUT)
                              if checkpoint.resolve().is_relative_to(CHECKOUT) else checkpoint),
            'checkpoint_sha256': hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
            'seeds': list(config.drive.seeds),
            'perturbation': ({'kind': 'jpeg', 'jpeg_quality': perturbed_drive.jpeg_quality}
                             if config.perturbation == 'jpeg' else
                             {'kind': 'steering', 'delta': config.delta, 'frame': config.frame}),
            'threshold_m': config.threshold_m, 'command_tolerance': COMMAND_TOLERANCE,
            'drive': config.drive.to_dict(), 'maps': maps, 'summary': summarize(maps)}


def parse_config(argv=None) -> tuple[ChaosConfig, Path | None]:
    """Parse the command line into a ChaosConfig (omitted flags keep its defaults) and --out."""
    d, drive = ChaosConfig(), ClosedLoopConfig()
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--checkpoint', type=Path, help=f'default {d.checkpoint.relative_to(CHECKOUT)}')
    p.add_argument('--seeds', type=int, nargs='+', help=f'maps (default {list(drive.seeds)})')
    p.add_argument('--max-seconds', type=float, help=f'per drive (default {drive.max_seconds})')
    p.add_argument('--traffic', type=float,
                   help=f'MetaDrive traffic density (default {SimConfig().traffic_density})')
    p.add_argument('--perturbation', choices=('steering', 'jpeg'),
                   help=f'steering: +delta at one frame; jpeg: quality {drive.jpeg_quality - 1} '
                   f'instead of {drive.jpeg_quality} throughout (default {d.perturbation})')
    p.add_argument('--delta', type=float, help=f'steering nudge (default {d.delta})')
    p.add_argument('--frame', type=int, help=f'nudged frame, 0-based (default {d.frame})')
    p.add_argument('--threshold-m', type=float,
                   help=f'positions further apart have diverged (default {d.threshold_m})')
    p.add_argument('--no-repeat', action='store_true', help='skip the unchanged second run')
    p.add_argument('--through-ros', action='store_true', help='also drive through drive_node')
    p.add_argument('--threads', type=int, help=f'torch threads (default {d.threads})')
    p.add_argument('--machine', help=f'recorded in the JSON (default {d.machine!r})')
    p.add_argument('--out', type=Path, help='write the results as JSON here')
    args = p.parse_args(argv)
    given = {k: v for k, v in vars(args).items() if v is not None}
    sim = SimConfig(**({'traffic_density': given['traffic']} if 'traffic' in given else {}))
    drive = ClosedLoopConfig(sim=sim, **({'max_seconds': given['max_seconds']}
                                         if 'max_seconds' in given else {}),
                             **({'seeds': tuple(args.seeds)} if args.seeds else {}))
    fields = ('checkpoint', 'perturbation', 'delta', 'frame', 'threshold_m', 'threads',
              'machine')
    config = ChaosConfig(drive=drive, repeat=not args.no_repeat, through_ros=args.through_ros,
                         **{k: given[k] for k in fields if k in given})
    if not config.checkpoint.is_file():
        p.error(f'no checkpoint at {config.checkpoint}')
    if config.frame < 0 or config.threads < 1 or config.threshold_m <= 0:
        p.error('--frame must be >= 0, --threads >= 1 and --threshold-m > 0')
    return config, args.out


def main(argv=None) -> int:
    """Run the experiment, print the summary, write --out."""
    config, out = parse_config(argv)
    results = run(config, progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(results['summary'], indent=2))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, sort_keys=True) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
