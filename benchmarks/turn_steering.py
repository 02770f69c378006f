"""How much a route-command model steers through a turn, against the expert's label (issue 20).

Every drive is run open loop with its recorded route commands (the LSTM state carried frame to
frame, as in the node). Each stretch of frames under one turn command (left, straight, right)
is a turn; per turn it reports the mean label and prediction over the stretch, and over its
sharpest quarter (the quarter of its frames with the largest |label|), where an under-steering
model falls short most. On drives the model itself steered (`signattn simulate --policy`,
DAgger) these are the states it gets into; the expert's label is what it should have done.

Run: PYTHONPATH=. python benchmarks/turn_steering.py --checkpoint CKPT --data DATASET [...]
     [--out docs/results/route/stage3/turn_steering.json]
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from signattn_driver.checkpoint import load_model
from signattn_driver.data.dataset import Dataset
from signattn_driver.evaluation.route_commands import recorded_commands
from signattn_driver.preprocessing import hsv_u8_to_input
from signattn_driver.route_command import FOLLOW_LANE, ROUTE_COMMANDS

CHUNK = 200   # frames decoded at a time


@torch.inference_mode()
def predict_drive(model, drive, commands: np.ndarray) -> np.ndarray:
    """Return the (N,) predicted u (1/m) of a drive stepped with its (N,) commands."""
    pred, state = np.zeros(len(drive)), None
    for start in range(0, len(drive), CHUNK):
        hsv = np.array(drive.frames(start, min(len(drive), start + CHUNK)))   # writable copy
        x = hsv_u8_to_input(torch.from_numpy(hsv))
        for i in range(len(x)):
            u, _, state = model.step(x[i:i + 1], state, int(commands[start + i]))
            pred[start + i] = float(u[0])
    return pred


def turns(commands: np.ndarray, label: np.ndarray, pred: np.ndarray) -> list:
    """One row per stretch of frames under one turn command."""
    rows, t = [], 0
    while t < len(commands):
        if commands[t] == FOLLOW_LANE:
            t += 1
            continue
        end = t
        while end < len(commands) and commands[end] == commands[t]:
            end += 1
        lab, out = label[t:end], pred[t:end]
        sharp = np.argsort(-np.abs(lab))[:max(1, (end - t) // 4)]
        rows.append({'command': ROUTE_COMMANDS[commands[t]], 'first_frame': t, 'frames': end - t,
                     'label_mean_per_m': float(lab.mean()), 'pred_mean_per_m': float(out.mean()),
                     'label_sharpest_quarter_per_m': float(lab[sharp].mean()),
                     'pred_sharpest_quarter_per_m': float(out[sharp].mean()),
                     'mae_per_m': float(np.abs(out - lab).mean())})
        t = end
    return rows


def summarize(rows: list) -> dict:
    """Per command: turn count, means over turns, and pred / label at the sharpest quarter."""
    out = {}
    for name in ROUTE_COMMANDS[1:]:
        mine = [r for r in rows if r['command'] == name]
        if not mine:
            continue
        mean = {k: float(np.mean([r[k] for r in mine])) for k in mine[0]
                if k.endswith('_per_m')}
        mean['turns'] = len(mine)
        mean['sharpest_quarter_pred_over_label'] = (mean['pred_sharpest_quarter_per_m']
                                                    / mean['label_sharpest_quarter_per_m'])
        out[name] = mean
    return out


def main():
    """Run the drives with their commands; print the summary, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--checkpoint', required=True)
    parser.add_argument('--data', required=True, nargs='+', help='dataset folders')
    parser.add_argument('--out', type=Path)
    parser.add_argument('--machine', default='2-core CPU', help='named in the JSON')
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, ckpt = load_model(args.checkpoint, map_location='cpu')
    if not ckpt.config.num_commands:
        parser.error(f'{args.checkpoint} takes no route command')
    rows = []
    for root in args.data:
        dataset = Dataset(root)
        for name in dataset.drive_names:
            drive = dataset.drive(name)
            commands = recorded_commands(drive.labels)
            label = np.asarray(drive.labels['inverse_radius_per_m'], np.float64)
            for row in turns(commands, label, predict_drive(model, drive, commands)):
                rows.append({'drive': name, **row})
    report = {'command': 'python benchmarks/turn_steering.py --checkpoint '
              f'{args.checkpoint} --data {" ".join(args.data)}',
              'machine': args.machine, 'threads': args.threads,
              'summary': summarize(rows), 'turns': rows}
    print(json.dumps(report['summary'], indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == '__main__':
    main()
