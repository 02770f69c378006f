"""Pool `signattn drive-sim` results over several runs on different maps (e.g. two map sets).

Autonomous completion is the mean over all episodes, out-of-road events per km the sum of
events over the sum of km in charge; each controller is compared with a reference controller
(the expert) pooled the same way.

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

from benchmarks.json_output import emit_json


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
    return out


def main(argv=None) -> int:
    """Read the runs, pool them per name, add ratios to the reference and print the JSON."""
    parser = argparse.ArgumentParser(prog='pool_drive_sim')
    parser.add_argument('--run', action='append', required=True,
                        help='NAME=FILE[:CONTROLLER] (controller default: model); repeat a '
                             'NAME to pool its files')
    parser.add_argument('--reference', help='NAME to divide by (the expert)')
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
    result = {'command': ' '.join(['python3 benchmarks/pool_drive_sim.py'] + list(
        argv if argv is not None else sys.argv[1:])), 'sources': sources, 'pooled': pooled}
    emit_json(result, args.out)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
