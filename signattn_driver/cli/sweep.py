"""`signattn sweep bits|temperature`: train and evaluate one model per value (paper Figs. 7, 9)."""

from pathlib import Path

from signattn_driver.cli import CliError
from signattn_driver.cli.evaluate import add_eval_arguments, eval_config, parse_methods
from signattn_driver.cli.options import given, option


def register(subparsers):
    """Add the `sweep` subcommand."""
    from signattn_driver.choices import DEVICE_HELP
    from signattn_driver.evaluation.sweeps import sweep, SWEEPS
    from signattn_driver.model import ATTENTIONS, BINARIZERS, ModelConfig
    p = subparsers.add_parser(
        'sweep', help='train + evaluate one model per quantization width or temperature',
        description='Sweep quant_bits (2..24 step 2) or the softmax temperature (0.1 0.3 1 3 '
        '10): trains OUT/runs/<param>_<value> in fp32 (no autocast), --jobs K at once, '
        'evaluates all on the same frames (OUT/report/) and writes OUT/sweep.md, sweep.json '
        'and sweep_<param>.png (output-change deletion AUC, random floor, MAE).')
    p.add_argument('parameter', choices=tuple(SWEEPS))
    p.add_argument('--data', nargs='+', required=True, metavar='DIR', help='training data')
    p.add_argument('--eval-data', type=Path, help='evaluation dataset (if omitted: the first '
                   '--data, split test)')
    p.add_argument('--out', required=True, type=Path, help='sweep folder')
    p.add_argument('--values', help='comma list overriding the paper values')
    p.add_argument('--tiny', action='store_true',
                   help='CPU-sized models and runs (config/train_tiny.yaml)')
    p.add_argument('--config', type=Path, help='run configuration YAML (if omitted: '
                   'config/train_paper.yaml as for `signattn train`, or train_tiny.yaml with '
                   '--tiny)')
    p.add_argument('--max-steps', type=int, help='training steps per value (if omitted: the '
                   'run configuration\'s)')
    p.add_argument('--model', choices=ATTENTIONS, help='attention kind (if omitted: the run '
                   'configuration\'s)')
    p.add_argument('--binarize', choices=BINARIZERS,
                   help='sign-path binarizer (docs/model.md; if omitted: the run '
                   f'configuration\'s, whose own default is {ModelConfig.binarize})')
    option(p, '--jobs', type=int, owner=sweep,
           help='values trained in parallel processes on the same device')
    option(p, '--methods', owner=sweep, help='the first is swept; random is the floor')
    option(p, '--device', owner=sweep, help=DEVICE_HELP)
    p.add_argument('--limit-frames', type=int, help='evaluate about N evenly spaced frames '
                   '(if omitted: every frame)')
    add_eval_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    """Run the sweep and print the summary table's location."""
    from signattn_driver.evaluation.sweeps import sweep
    cast = int if args.parameter == 'bits' else float
    try:
        values = [cast(v) for v in args.values.split(',')] if args.values else None
    except ValueError as err:
        raise CliError(f'--values: {err}') from err
    methods = parse_methods(args.methods)
    overrides = {'max_steps': args.max_steps, 'attention': args.model,
                 'binarize': args.binarize,
                 'device': None if args.device == 'auto' else args.device, 'seed': args.seed}
    summary = sweep(args.parameter, args.data, args.out, values=values,
                    config_yaml=args.config, tiny=args.tiny, overrides=overrides,
                    eval_data=args.eval_data, limit_frames=args.limit_frames,
                    eval_config=eval_config(args, methods), progress=not args.no_progress,
                    **given(methods=methods, device=args.device, jobs=args.jobs))
    for r in summary['rows']:
        print(f'{summary["parameter"]} {r["value"]}: output-change AUC 0-25 % '
              f'{r["auc_mean"]:.1f} +- {r["auc_sem"]:.1f}, MAE {r["mae_deg"]:.2f} deg')
    print(f'report: {args.out / "sweep.md"}')
    return 0
