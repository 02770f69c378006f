"""`signattn evaluate`: accuracy, deletion metric, saliency baselines (docs/experiments.md)."""

from pathlib import Path

from signattn_driver.cli import CliError
from signattn_driver.cli.options import given, option


def register(subparsers):
    """Add the `evaluate` subcommand."""
    from signattn_driver.choices import DEVICE_HELP
    from signattn_driver.evaluation.evaluate import EvalConfig, evaluate
    p = subparsers.add_parser(
        'evaluate', help='accuracy, deletion metric and saliency baselines of checkpoints',
        description='Evaluate checkpoints on a dataset (split test): MAE/RMSE, deletion and '
        'insertion curves and AUCs for each saliency method, time per explanation, Welch '
        't-tests. A route-command model is fed each frame\'s recorded route command '
        '(follow-lane where the set has none). Writes OUT/report.md, OUT/report.json and PNG '
        'figures.')
    p.add_argument('--checkpoint', nargs='+', required=True, type=Path, metavar='CKPT')
    p.add_argument('--data', required=True, type=Path, metavar='DIR', help='dataset folder')
    option(p, '--methods', owner=EvalConfig,
           help='comma list of attention, gradcam, lime, random, random_superpixels (random '
                'floor on LIME\'s superpixels), center, contribution (|phi|, the exact '
                'contribution map)')
    p.add_argument('--out', required=True, type=Path, help='report folder, e.g. reports/NAME')
    option(p, '--device', owner=evaluate, help=DEVICE_HELP)
    p.add_argument('--limit-frames', type=int, help='evaluate about N evenly spaced frames '
                   '(if omitted: every frame)')
    add_eval_arguments(p)
    p.set_defaults(func=run)


def add_eval_arguments(p):
    """Options shared with `signattn sweep`."""
    from signattn_driver.evaluation.deletion import DeletionConfig
    from signattn_driver.evaluation.evaluate import EvalConfig, MODES
    from signattn_driver.evaluation.explanations import ExplainConfig, LIME_HIDES
    option(p, '--split', owner=EvalConfig,
           help="dataset split (falls back to 'val', then all drives)")
    option(p, '--fill', owner=DeletionConfig,
           help='what deleted pixels become: black, mean, blur, or a comma list (each fill '
                'gets its own curves and table; the first is the primary one)')
    option(p, '--step-percent', type=float, owner=DeletionConfig, help='deletion level spacing')
    option(p, '--mode', choices=MODES, owner=EvalConfig,
           help='carried: LSTM state from the unmasked previous frames; sequence: mask every '
                'frame of a window')
    option(p, '--window-frames', type=int, owner=EvalConfig,
           help='frames per evaluated window with --limit-frames')
    option(p, '--warmup-frames', type=int, owner=EvalConfig,
           help='unmasked frames before a window')
    option(p, '--lime-samples', type=int, owner=ExplainConfig,
           help='perturbed images per frame')
    option(p, '--lime-segments', type=int, owner=ExplainConfig,
           help='SLIC superpixels requested per frame')
    option(p, '--lime-hide', choices=LIME_HIDES, owner=ExplainConfig,
           help="what LIME's switched-off superpixels become (superpixel_mean: LIME's own; "
                "'black' is the deletion fill and favours LIME)")
    option(p, '--batch-images', type=int, owner=DeletionConfig, help='images per forward pass')
    p.add_argument('--no-insertion', action='store_true', help='deletion curves only')
    option(p, '--seed', type=int, owner=DeletionConfig,
           help='seed of the random floor, LIME sampling and deletion tie-breaking')
    p.add_argument('--no-progress', action='store_true', help='no progress bars')
    p.add_argument('--no-route-commands', action='store_true',
                   help='withhold the recorded route commands from a command model (follow-lane '
                   'on every frame), to measure it without the navigator')
    p.add_argument('--agreement-only', action='store_true',
                   help='no deletion/insertion curves: only every map\'s agreement with the '
                   'contribution map phi (cheap enough for every frame of a split)')


def eval_config(args, methods: tuple | None):
    """Build an EvalConfig from parsed arguments; options not given keep the configs' defaults."""
    from signattn_driver.evaluation.deletion import DeletionConfig
    from signattn_driver.evaluation.evaluate import EvalConfig
    from signattn_driver.evaluation.explanations import ExplainConfig
    fills = parse_methods(args.fill)
    if fills == ():
        raise CliError('--fill: give at least one of black, mean, blur')
    deletion = DeletionConfig(**given(
        step_percent=args.step_percent, fill=fills[0] if fills else None,
        insertion=False if args.no_insertion else None, batch_images=args.batch_images,
        seed=args.seed))
    explain = ExplainConfig(**given(lime_samples=args.lime_samples,
                                    lime_segments=args.lime_segments,
                                    lime_hide=args.lime_hide, seed=args.seed))
    return EvalConfig(deletion=deletion, explain=explain, **given(
        methods=methods, split=args.split, mode=args.mode, window_frames=args.window_frames,
        warmup_frames=args.warmup_frames, fills=fills,
        curves=False if getattr(args, 'agreement_only', False) else None,
        route_commands=False if getattr(args, 'no_route_commands', False) else None))


def parse_methods(text: str | None) -> tuple | None:
    """Split a comma list of method names; None (option not given) stays None."""
    if text is None:
        return None
    return tuple(m.strip() for m in text.split(',') if m.strip())


def run(args) -> int:
    """Evaluate and print where the report is."""
    from signattn_driver.evaluation.evaluate import evaluate
    config = eval_config(args, parse_methods(args.methods))
    report = evaluate(args.checkpoint, args.data, out_dir=args.out, config=config,
                      limit_frames=args.limit_frames, progress=not args.no_progress,
                      **given(device=args.device))
    for name, entry in report['checkpoints'].items():
        agreement = ', '.join(f'{m} {s["vs_phi"]["spearman"]:.2f}'
                              for m, s in entry['contribution']['methods'].items())
        print(f'{name}: Spearman with |phi|: {agreement}')
        fed = entry['route_commands']['counts']
        if fed:   # a command model: each frame was fed its recorded command
            print(f'{name}: route commands fed ({entry["route_commands"]["source"]}): '
                  + ', '.join(f'{c} {n}' for c, n in fed.items() if n))
        if not config.curves:
            continue
        aucs = ', '.join(
            f'{m} {s["deletion_change"]["auc_25_deg_pct_summary"]["mean"]:.1f}'
            for m, s in entry['methods'].items())
        print(f'{name}: MAE {entry["accuracy"]["mae_steering_deg"]:.2f} deg; output-change '
              f'deletion AUC 0-25 % ({config.fills[0]}): {aucs}')
    print(f'report: {args.out / "report.md"}')
    return 0
