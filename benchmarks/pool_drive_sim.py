"""Pool `signattn drive-sim` results over several runs on different maps (e.g. two map sets).

Autonomous completion is the mean over all episodes, out-of-road events per km the sum of
events over the sum of km in charge; where drive-sim recorded them, the signed mean lateral
offset and the mean |offset| per place (road, each junction kind), weighted by frames. Each
controller is compared with a reference controller (the expert) pooled the same way.
`--paired A:B` also compares two controllers map by map on the maps both drove: the mean
per-map difference A - B of completion and of out-of-road events, with a paired t-test over
maps (each map one independent unit; `paired_batch_test` with one run per map; a controller
given several drives of a map, by repeating its runs, counts the mean of its drives), its 95 %
CI and p. Per-map differences are mostly near zero with a few stalls, far from normal, so each
comparison also reports the test's size on null data of that shape: `null_size`, the share of
sign-flipped copies of the observed differences (mean zero by symmetry) that the test rejects
at 0.05.

    PYTHONPATH=. python3 benchmarks/pool_drive_sim.py \\
        --run expert=docs/results/drive_sim_heldout10.json:expert \\
        --run expert=docs/results/route/stage6/ext_baselines.json:expert \\
        --run stage6=docs/results/route/drive_sim_commands.json \\
        --run stage6=docs/results/route/stage6/ext_run7.json \\
        --reference expert --out docs/results/route/stage6/heldout20_pooled.json
"""

import argparse
import json
import sys

import numpy as np

from benchmarks.json_output import emit_json
from signattn_driver.evaluation.statistics import paired_batch_test


def pool(runs: dict) -> dict:
    """Pool lists of (controller summary) dicts per name into completion and events per km."""
    out = {}
    for name, parts in runs.items():
        episodes = [e for p in parts for e in p['per_episode']]
        events = sum(p['out_of_road_events'] for p in parts)
        km = sum(p['km_in_charge'] for p in parts)
        out[name] = {'maps': sorted(e['seed'] for e in episodes),
                     'autonomous_completion': sum(e['autonomous_completion']
                                                  for e in episodes) / len(episodes),
                     'out_of_road_events': events, 'km_in_charge': km,
                     'out_of_road_per_km': events / km if km else float('nan')}
        if all('lateral_offset_by_place' in e for e in episodes):
            out[name].update(_offsets_pooled(episodes))
    return out


def _offsets_pooled(episodes: list) -> dict:
    """Frame-weighted signed mean offset and mean |offset| per place over all episodes."""
    frames, signed, by_place = 0, 0.0, {}
    for e in episodes:
        n = sum(v['frames'] for v in e['lateral_offset_by_place'].values())
        if n:
            frames += n
            signed += n * e['lateral_offset_signed_mean_m']
        for place, v in e['lateral_offset_by_place'].items():
            row = by_place.setdefault(place, {'frames': 0, 'sum_m': 0.0})
            row['frames'] += v['frames']
            row['sum_m'] += v['frames'] * v['mean_m']
    return {'lateral_offset_signed_mean_m': signed / frames if frames else float('nan'),
            'lateral_offset_by_place': {
                place: {'frames': v['frames'], 'mean_m': v['sum_m'] / v['frames']}
                for place, v in sorted(by_place.items()) if v['frames']}}


LATERAL = 'lateral_offset_mean_m'   # a continuous per-map measure, where drive-sim recorded it
ROAD = 'lateral_offset_road_m'      # the same off junctions (lateral_offset_by_place['road'])


def paired(runs: dict, a: str, b: str) -> dict:
    """Per-map differences a - b on the maps both drove, tested over maps.

    Completion and out-of-road events, and the mean lateral offset from the lane centre while
    in charge (m) where every episode has it: a stall moves the first two by a lot on one map,
    while the lateral offset varies less from map to map. Where every episode has its offsets
    by place and drove off junctions, also that offset on the road alone (`ROAD`).
    """
    def by_map(name):
        drives = {}
        for p in runs[name]:
            for e in p['per_episode']:
                drives.setdefault(e['seed'], []).append(_with_road_offset(e))
        return {seed: _mean_over_drives(episodes) for seed, episodes in drives.items()}
    ma, mb = by_map(a), by_map(b)
    maps = sorted(set(ma) & set(mb))
    out = {'a': a, 'b': b, 'maps': len(maps)}
    keys = ['autonomous_completion', 'out_of_road_events']
    keys += [key for key in (LATERAL, ROAD)
             if all(key in e for m in maps for e in (ma[m], mb[m]))]
    for key in keys:
        test = paired_batch_test([ma[m].get(key, float('nan')) for m in maps],
                                 [mb[m].get(key, float('nan')) for m in maps],
                                 runs=range(len(maps)))
        out[key] = {k: test[k] for k in ('mean_a', 'mean_b', 'mean_diff', 'ci_low', 'ci_high',
                                         'p', 'units', 'test')}
        out[key]['null_size'] = null_size([ma[m].get(key, float('nan')) - mb[m].get(
            key, float('nan')) for m in maps])
    return out


def _mean_over_drives(episodes: list) -> dict:
    """One map's figures: a controller that drove the map more than once (runs repeated
    with the same name) gets the mean of its drives, so the map stays one unit of the test.
    A figure some drive lacks is left out."""
    keys = ('autonomous_completion', 'out_of_road_events', LATERAL, ROAD)
    return {key: float(np.mean([e[key] for e in episodes])) for key in keys
            if all(key in e for e in episodes)}


def _with_road_offset(episode: dict) -> dict:
    """The episode with `ROAD` added where it drove on the road off junctions."""
    road = episode.get('lateral_offset_by_place', {}).get('road')
    return {**episode, ROAD: road['mean_m']} if road and road['frames'] else episode


def null_size(d, draws: int = 2000, level: float = 0.05, seed: int = 0) -> float:
    """Share of sign-flipped copies of the per-map differences `d` the paired test rejects.

    Flipping each map's sign at random keeps the differences' shape (their sizes, the zeros,
    the outliers) under a null of no difference; a test that holds its size rejects about
    `level` of them, a conservative one fewer.
    """
    d = np.asarray(d, np.float64)
    d = d[np.isfinite(d)]
    signs = np.random.default_rng(seed).choice((-1.0, 1.0), size=(draws, len(d)))
    zero = np.zeros(len(d))
    rejected = sum(paired_batch_test(s * d, zero, runs=range(len(d)))['p'] < level
                   for s in signs)
    return rejected / draws


def main(argv=None) -> int:
    """Read the runs, pool them per name, add ratios to the reference and print the JSON."""
    parser = argparse.ArgumentParser(prog='pool_drive_sim')
    parser.add_argument('--run', action='append', required=True,
                        help='NAME=FILE[:CONTROLLER] (controller default: model); repeat a '
                             'NAME to pool its files')
    parser.add_argument('--reference', help='NAME to divide by (the expert)')
    parser.add_argument('--paired', action='append', default=[],
                        help='A:B, two NAMEs to compare map by map (repeatable)')
    parser.add_argument('--out', help='also write the JSON here')
    args = parser.parse_args(argv)
    runs, sources = {}, {}
    for spec in args.run:
        name, _, path = spec.partition('=')
        path, _, controller = path.partition(':')
        with open(path) as f:
            runs.setdefault(name, []).append(json.load(f)['controllers'][controller or 'model'])
        sources.setdefault(name, []).append(spec.partition('=')[2])
    pooled = pool(runs)
    if args.reference:
        ref = pooled[args.reference]
        for row in pooled.values():
            row['completion_over_reference'] = (row['autonomous_completion']
                                                / ref['autonomous_completion'])
            row['events_per_km_over_reference'] = (row['out_of_road_per_km']
                                                   / ref['out_of_road_per_km'])
    comparisons = [paired(runs, *spec.split(':', 1)) for spec in args.paired]
    result = {'command': ' '.join(['python3 benchmarks/pool_drive_sim.py'] + list(
        argv if argv is not None else sys.argv[1:])), 'sources': sources, 'pooled': pooled}
    if comparisons:
        result['paired'] = comparisons
    emit_json(result, args.out)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
