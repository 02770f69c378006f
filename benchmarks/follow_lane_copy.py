"""Copy a dataset with every frame's route command set to follow-lane (frames linked, not copied).

The explanation study's training drives (maps 2000+) were simulated before `signattn simulate`
recorded route commands, so a command model trained on them hears follow-lane throughout, also
at the junctions, where the expert turns unannounced: those drives teach the follow-lane branch
what the follow-lane validation and held-out drives (maps 7500+, 7000+) ask of it. Today's
simulate records the commands; this makes the same kind of set from a simulated one
(`make route-model`, stage 9). Frames and masks are symlinked; labels.csv is rewritten with
route_command 0 on every row; the manifest records where the copy came from.

Usage:
    python benchmarks/follow_lane_copy.py DATASET OUT_DATASET
"""

import argparse
import csv
import json
from pathlib import Path

from signattn_driver.data.dataset import LABELS, MANIFEST
from signattn_driver.route_command import FOLLOW_LANE


def follow_lane_copy(source: Path, out: Path) -> dict:
    """Write the follow-lane copy of dataset `source` to `out`; return its counts."""
    manifest = json.loads((source / MANIFEST).read_text())
    out.mkdir(parents=True, exist_ok=False)
    changed = 0
    for name in manifest['drives']:
        (out / name).mkdir()
        for item in sorted((source / name).iterdir()):
            if item.name != LABELS:
                (out / name / item.name).symlink_to(item.resolve())
        with open(source / name / LABELS, newline='') as f:
            rows = list(csv.reader(f))
        header = rows[0]
        if 'route_command' in header:
            col = header.index('route_command')
            for row in rows[1:]:
                changed += row[col] != str(FOLLOW_LANE)
                row[col] = str(FOLLOW_LANE)
        with open(out / name / LABELS, 'w', newline='') as f:
            csv.writer(f, lineterminator='\n').writerows(rows)
    manifest['derived'] = {'of': str(source), 'route_commands': 'follow-lane on every frame',
                           'frames_changed': changed}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return {'drives': len(manifest['drives']), 'frames': manifest['counts']['frames'],
            'commands_changed': changed}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('dataset', type=Path)
    parser.add_argument('out', type=Path)
    args = parser.parse_args()
    print(json.dumps(follow_lane_copy(args.dataset, args.out)))


if __name__ == '__main__':
    main()
