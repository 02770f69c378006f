"""`signattn evaluate`: accuracy, deletion metric, saliency baselines (docs/experiments.md)."""

from pathlib import Path

from signattn_driver.cli import CliError


def register(subparsers):
    """Add the `evaluate` subcommand."""
    p = subparsers.add_parser(
        'evaluate', help='accuracy, deletion metric and saliency baselines of checkpoints',
        description='Evaluate checkpoints on a dataset (split test): MAE/RMSE, deletion and '
        'insertion curves and AUCs for each saliency method, time per explanation, Welch '
        't-tests. Writes OUT/report.md, OUT/report.json and PNG figures.')
    p.add_argument('--checkpoint', nargs='+', required=True, type=Path, metavar='CKPT')
    p.add_argument('--data', required=True, type=Path, metavar='DIR', help='dataset folder')
    p.add_argument('--methods', default='attention,gradcam,lime,random',
                   help='comma list of attention, gradcam, lime, random, random_superpixels '
                   '(random floor on LIME\'s superpixels), center, contribution (|phi|, the exact '
                   'contribution map)')
    p.add_argument('--out', required=True, type=Path, help='report folder, e.g. reports/NAME')
    p.add_argument('--device', default='auto', help="'auto', 'cpu', 'cuda', 'cuda:N'")
    p.add_argument('--limit-frames', type=int, help='evaluate about N evenly spaced frames')
    add_eval_arguments(p)
    p.set_defaults(func=run)


def add_eval_arguments(p):
    """Options shared with `signattn sweep`."""
    p.add_argument('--split', default='test', help="dataset split (default 'test'; falls back "
                   "to 'val', then all drives)")
    p.add_argument('--fill', default='black',
                   help='what deleted pixels become: black, mean, blur, or a comma list (each '
                   'fill gets its own curves and table; the first is the primary one)')
    p.add_argument('--step-percent', type=float, default=1.0, help='deletion level spacing')
    p.add_argument('--mode', default='carried', choices=('carried', 'sequence'),
                   help='carried: LSTM state from the unmasked previous frames; sequence: mask '
                   'every frame of a window')
    p.add_argument('--window-frames', type=int, default=20)
    p.add_argument('--warmup-frames', type=int, default=100)
    p.add_argument('--lime-samples', type=int, default=1000)
    p.add_argument('--lime-segments', type=int, default=50)
    p.add_argument('--lime-hide', default='superpixel_mean',
                   choices=('superpixel_mean', 'image_mean', 'black'),
                   help="what LIME's switched-off superpixels become (default: LIME's own, the "
                   "superpixel's mean colour; 'black' is the deletion fill and favours LIME)")
    p.add_argument('--bootstrap-samples', type=int, default=10000,
                   help='block-bootstrap resamples of the paired comparisons')
    p.add_argument('--batch-images', type=int, default=404, help='images per forward pass')
    p.add_argument('--no-insertion', action='store_true')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--agreement-only', action='store_true', default=None,
                   help='no deletion/insertion curves: only every map\'s agreement with the '
                   'contribution map phi (cheap enough for every frame of a split)')


def eval_config(args, methods):
    """Build an EvalConfig from parsed arguments."""
    from signattn_driver.evaluation.deletion import DeletionConfig
    from signattn_driver.evaluation.evaluate import EvalConfig
    from signattn_driver.evaluation.explanations import ExplainConfig
    fills = parse_methods(args.fill)
    if not fills:
        raise CliError('--fill: give at least one of black, mean, blur')
    return EvalConfig(
        methods=methods, split=args.split, mode=args.mode, window_frames=args.window_frames,
        warmup_frames=args.warmup_frames, fills=fills,
        bootstrap_samples=args.bootstrap_samples,
        **({'curves': False} if getattr(args, 'agreement_only', None) else {}),
        deletion=DeletionConfig(step_percent=args.step_percent, fill=fills[0],
                                insertion=not args.no_insertion,
                                batch_images=args.batch_images, seed=args.seed),
        explain=ExplainConfig(lime_samples=args.lime_samples, lime_segments=args.lime_segments,
                              lime_hide=args.lime_hide, seed=args.seed))


def parse_methods(text: str) -> tuple:
    """Split a comma list of method names."""
    return tuple(m.strip() for m in text.split(',') if m.strip())


def run(args) -> int:
    """Evaluate and print where the report is."""
    from signattn_driver.checkpoint import CheckpointError
    from signattn_driver.data.dataset import DatasetError
    from signattn_driver.evaluation.evaluate import evaluate, EvaluationError
    from signattn_driver.evaluation.explanations import ExplanationError
    methods = parse_methods(args.methods)
    try:
        config = eval_config(args, methods)
        report = evaluate(args.checkpoint, args.data, methods, args.out, device=args.device,
                          limit_frames=args.limit_frames, config=config,
                          progress=not args.no_progress)
    except (EvaluationError, ExplanationError, CheckpointError, DatasetError) as err:
        raise CliError(str(err)) from err
    for name, entry in report['checkpoints'].items():
        agreement = ', '.join(f'{m} {s["vs_phi"]["spearman"]:.2f}'
                              for m, s in entry['contribution']['methods'].items())
        print(f'{name}: Spearman with |phi|: {agreement}')
        if not config.curves:
            continue
        aucs = ', '.join(
            f'{m} {s["deletion_change"]["auc_25_deg_pct_summary"]["mean"]:.1f}'
            for m, s in entry['methods'].items())
        print(f'{name}: MAE {entry["accuracy"]["mae_steering_deg"]:.2f} deg; output-change '
              f'deletion AUC 0-25 % ({config.fills[0]}): {aucs}')
    print(f'report: {args.out / "report.md"}')
    return 0
