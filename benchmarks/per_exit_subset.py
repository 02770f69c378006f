"""Keep the drives of an older simulated set whose commands the per-exit roundabout scheme keeps.

Sets simulated before `RouteConfig.roundabout_commands = 'per_exit'` told a roundabout with one
command for the whole ring (second exit STRAIGHT, third LEFT). Under per_exit the same frames
would say follow-lane on the ring and RIGHT at the taken exit, so a drive that reached a
roundabout left by its second or a later exit has labels of the other scheme; a drive that
reached none (or only first exits, RIGHT in both schemes) is the same under both. This links
the kept drives (symlinks, no copy) into a new set that `signattn train --data` reads, so DAgger
drives that cannot be replayed can be reused (`make route-model`, stage 4).

Usage:
    python benchmarks/per_exit_subset.py OLD_SIM_FOLDER OUT_DATASET
      OLD_SIM_FOLDER: a `signattn simulate --out` folder (simulation.json, dataset/).
"""

import argparse
import json
from pathlib import Path

from signattn_driver.data.dataset import MANIFEST


def changes_under_per_exit(drive: dict) -> bool:
    """Whether a drive (simulation.json entry) reached a roundabout left by a later exit.

    A roundabout counts once the command was in force: its entry minus the announce distance
    (30 m, or the drive's `command_from_m` if recorded) lies within the distance driven.
    """
    reached_m = drive['route_completion'] * drive['route_length_m']
    for junction in drive.get('route_commands', []):
        if junction['kind'] != 'roundabout':
            continue
        later_exit = junction.get('exit', 1 if junction['command'] == 'right' else 2) > 1
        issued_m = junction.get('command_from_m', junction['entry_m'] - 30.0)
        if later_exit and issued_m < reached_m:
            return True
    return False


def keep_drives(sim_folder: Path, out: Path) -> dict:
    """Link the drives `changes_under_per_exit` keeps into `out`; return counts."""
    simulation = json.loads((sim_folder / 'simulation.json').read_text())
    if simulation['config']['sim']['route'].get('roundabout_commands', 'whole') != 'whole':
        raise SystemExit(f'{sim_folder}: already recorded per exit; use its dataset as it is')
    source = sim_folder / 'dataset'
    manifest = json.loads((source / MANIFEST).read_text())
    changed = {d['name'] for d in simulation['drives'] if changes_under_per_exit(d)}
    kept = {name: entry for name, entry in manifest['drives'].items() if name not in changed}
    out.mkdir(parents=True, exist_ok=False)
    for name in kept:
        (out / name).symlink_to((source / name).resolve(), target_is_directory=True)
    manifest['drives'] = kept
    manifest['counts'] = {'drives': len(kept),
                          'frames': sum(e['frames'] for e in kept.values())}
    if 'simulation' in manifest:   # the kept labels are what per_exit gives
        manifest['simulation']['sim']['route']['roundabout_commands'] = 'per_exit'
    manifest['subset'] = {'of': str(source), 'dropped': sorted(changed),
                          'why': 'reached a roundabout left by a later exit (per_exit relabels it)'}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return {'kept_drives': len(kept), 'dropped_drives': len(changed),
            'kept_frames': manifest['counts']['frames']}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('sim_folder', type=Path)
    parser.add_argument('out', type=Path)
    args = parser.parse_args()
    print(json.dumps(keep_drives(args.sim_folder, args.out)))


if __name__ == '__main__':
    main()
