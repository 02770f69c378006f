"""How the attention map and the contribution map move with the route command (issue 20).

For every frame of the given drives where the navigator gave a turn command, the recorded
commands drive the LSTM state; at that state the same frame is also explained under LEFT and
RIGHT. Reported per map (alpha, |phi|): the horizontal centre of mass in map columns (0 = left
edge, 19 = right edge) under each command, and the paired shift RIGHT - LEFT with its spread
over drives; for phi also the signed sum over the left and right halves of the map, and the
mean command u (1/m, + = left) under each command.

Run: PYTHONPATH=. python benchmarks/route_maps.py --checkpoint CKPT --data DATASET
     [--out docs/results/route_maps.json]
"""

import argparse
from pathlib import Path
import platform

import numpy as np
import torch

from benchmarks.json_output import emit_json
from signattn_driver.checkpoint import load_model
from signattn_driver.data.dataset import Dataset
from signattn_driver.evaluation.route_commands import recorded_commands
from signattn_driver.model import MAP_WIDTH
from signattn_driver.preprocessing import hsv_u8_to_input
from signattn_driver.route_command import FOLLOW_LANE, LEFT, RIGHT, ROUTE_COMMANDS

COLUMNS = np.arange(MAP_WIDTH, dtype=np.float64)


def column_centre(maps: np.ndarray) -> np.ndarray:
    """Horizontal centre of mass (map columns) of non-negative maps (N, 10, 20)."""
    per_column = maps.sum(1)                                    # (N, 20)
    return (per_column * COLUMNS).sum(1) / np.maximum(per_column.sum(1), 1e-30)


@torch.inference_mode()
def explain_drive(model, drive) -> dict:
    """Run one drive with its recorded commands; explain turn frames under LEFT and RIGHT."""
    commands = recorded_commands(drive.labels)
    out = {c: {'alpha': [], 'phi': [], 'u': []} for c in (LEFT, RIGHT)}
    recorded = []
    state = None
    for start in range(0, len(drive), 200):
        hsv = np.array(drive.frames(start, min(len(drive), start + 200)))   # a writable copy
        x = hsv_u8_to_input(torch.from_numpy(hsv))
        for i in range(len(x)):
            t = start + i
            frame = x[i:i + 1]
            if commands[t] != FOLLOW_LANE:
                for c in (LEFT, RIGHT):
                    e = model.explain_step(frame, state, c)
                    out[c]['alpha'].append(e.alpha[0].numpy())
                    out[c]['phi'].append(e.contribution[0].numpy())
                    out[c]['u'].append(float(e.u[0]))
                recorded.append(int(commands[t]))
            step = model.explain_step(frame, state, int(commands[t]))
            state = step.state
    return {'frames': len(recorded), 'recorded': recorded,
            **{ROUTE_COMMANDS[c]: {k: np.asarray(v) for k, v in out[c].items()}
               for c in (LEFT, RIGHT)}}


def summarize(drives: list) -> dict:
    """Per map: centre under left and right, the paired shift, its per-drive spread."""
    result = {}
    for name in ('alpha', 'phi'):
        left, right, per_drive = [], [], []
        for d in drives:
            if not d['frames']:
                continue
            a = d['left'][name]
            b = d['right'][name]
            if name == 'phi':
                a, b = np.abs(a), np.abs(b)
            cl, cr = column_centre(a), column_centre(b)
            left.append(cl)
            right.append(cr)
            per_drive.append(float((cr - cl).mean()))
        cl, cr = np.concatenate(left), np.concatenate(right)
        result[name] = {'centre_column_left_command': float(cl.mean()),
                        'centre_column_right_command': float(cr.mean()),
                        'shift_right_minus_left_columns': float((cr - cl).mean()),
                        'shift_per_drive': per_drive,
                        'frames_shifted_right': float((cr > cl).mean())}
    halves = {}
    for c in ('left', 'right'):
        phi = np.concatenate([d[c]['phi'] for d in drives if d['frames']])
        u = np.concatenate([d[c]['u'] for d in drives if d['frames']])
        halves[c] = {'u_per_m': float(u.mean()),
                     'phi_left_half_per_m': float(phi[..., :MAP_WIDTH // 2].sum((1, 2)).mean()),
                     'phi_right_half_per_m': float(phi[..., MAP_WIDTH // 2:].sum((1, 2)).mean()),
                     'u_minus_bias_per_m': float(phi.sum((1, 2)).mean())}
    result['phi_by_half'] = halves
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--checkpoint', required=True)
    parser.add_argument('--data', required=True, nargs='+')
    parser.add_argument('--out', type=Path)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, ckpt = load_model(args.checkpoint, map_location='cpu')
    model.eval()
    if not ckpt.config.num_commands:
        parser.error(f'{args.checkpoint} takes no route command')
    drives = []
    for root in args.data:
        dataset = Dataset(root)
        for name in dataset.drive_names:
            d = explain_drive(model, dataset.drive(name))
            d['drive'] = name
            drives.append(d)
    summary = summarize(drives)
    report = {'checkpoint': str(args.checkpoint), 'data': args.data,
              'machine': f'{platform.machine()}, {torch.get_num_threads()} torch thread(s)',
              'turn_frames': {d['drive']: d['frames'] for d in drives},
              'recorded_commands': {d['drive']: {ROUTE_COMMANDS[c]: d['recorded'].count(c)
                                                 for c in (1, 2, 3)} for d in drives},
              **summary}
    emit_json(report, args.out)


if __name__ == '__main__':
    main()
