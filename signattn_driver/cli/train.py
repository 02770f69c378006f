"""`signattn train`: train a steering model on converted drives (see docs/training.md)."""

import os
from pathlib import Path

from signattn_driver.cli.options import option


def register(subparsers):
    """Add the `train` subcommand."""
    from signattn_driver.choices import DEVICE_HELP
    from signattn_driver.model import ATTENTIONS, ModelConfig
    from signattn_driver.route_command import ROUTE_COMMANDS
    from signattn_driver.training.config import TrainConfig
    p = subparsers.add_parser(
        'train', help='train a sign/soft/none model on converted drives',
        description='Train SteeringNet (paper Sec. IV-A). Settings come from --config (keys: '
        'the fields of ModelConfig and TrainConfig) and are overridden by the flags below. '
        'Works unchanged under torchrun --nproc_per_node=N.')
    p.add_argument('--data', nargs='+', required=True, metavar='DIR',
                   help='dataset folders written by `signattn convert` or `signattn simulate`')
    option(p, '--model', choices=ATTENTIONS, owner=ModelConfig, name='attention',
           help='attention: sign (proposed), soft (Kim & Canny), none')
    option(p, '--bits', type=int, owner=ModelConfig, name='quant_bits',
           help='amplitude quantization bits')
    option(p, '--temperature', type=float, owner=ModelConfig,
           help='spatial softmax temperature')
    option(p, '--num-commands', type=int, choices=(0, len(ROUTE_COMMANDS)), owner=ModelConfig,
           help='0: camera only; 4: conditioned on the navigator\'s route command '
           '(route_command.py)')
    option(p, '--command-repeat', type=int, owner=TrainConfig,
           help='list episodes that hold a turn command this many times per epoch')
    option(p, '--turn-weight', type=float, owner=TrainConfig,
           help='L1 loss weight of a frame under a turn command (follow-lane frames: 1)')
    option(p, '--command-dropout', type=float, owner=TrainConfig,
           help='probability that a training episode sees follow-lane instead of its commands')
    p.add_argument('--config', type=Path, metavar='FILE.yaml',
                   help='YAML of config fields, e.g. config/train_tiny.yaml (if omitted: '
                   'config/train_paper.yaml, the paper settings, as `signattn sweep` uses)')
    p.add_argument('--out', type=Path, required=True, help='run folder, e.g. runs/sign10')
    p.add_argument('--resume', action='store_true', help='continue the run in --out exactly')
    option(p, '--device', owner=TrainConfig, help=DEVICE_HELP)
    option(p, '--seed', type=int, owner=TrainConfig,
           help='seed of initialisation, data order and split')
    option(p, '--max-steps', type=int, owner=TrainConfig, help='optimizer steps')
    option(p, '--batch-size', type=int, owner=TrainConfig,
           help='episodes in parallel (per process)')
    option(p, '--num-workers', type=int, owner=TrainConfig,
           help='data loader worker processes')
    p.add_argument('--init-checkpoint', type=Path, metavar='CKPT',
                   help='start from these weights (fine-tuning, e.g. after `signattn simulate '
                   '--policy`); the architecture must match')
    p.add_argument('--threads', type=int,
                   help='torch CPU threads (if omitted: torch\'s default, one per core). On a '
                   'CPU shared with other jobs use 1: with more threads than free cores a step '
                   'can take 20 times as long')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.set_defaults(func=run)


def run(args) -> int:
    """Resolve the config, train, print where the checkpoints are."""
    from signattn_driver.paths import config_path
    from signattn_driver.training.config import PAPER_CONFIG
    from signattn_driver.cli import CliError
    from signattn_driver.training.loop import load_run_config, train
    if args.threads is not None:
        if args.threads < 1:
            raise CliError(f'--threads must be >= 1, got {args.threads}')
        import torch
        torch.set_num_threads(args.threads)
    overrides = {'attention': args.model, 'quant_bits': args.bits,
                 'temperature': args.temperature, 'num_commands': args.num_commands,
                 'command_repeat': args.command_repeat, 'turn_weight': args.turn_weight,
                 'command_dropout': args.command_dropout,
                 'device': args.device, 'seed': args.seed,
                 'max_steps': args.max_steps, 'batch_size': args.batch_size,
                 'num_workers': args.num_workers,
                 'init_checkpoint': str(args.init_checkpoint) if args.init_checkpoint else None}
    model_config, train_config = load_run_config(
        args.config or config_path(PAPER_CONFIG), overrides)
    result = train(model_config, train_config, args.data, args.out, resume=args.resume,
                   progress=not args.no_progress)
    if os.environ.get('RANK', '0') != '0':   # torchrun: one report is enough
        return 0
    metrics = result['metrics']
    summary = ', '.join(f'{k} {v:.4g}' for k, v in metrics.items()
                        if k in ('mae_u_per_m', 'mae_steering_deg'))
    print(f'{result["steps"]} steps; validation: {summary or "none"}')
    print(f'best: {result["best_checkpoint"]}\nlast: {result["last_checkpoint"]}')
    return 0
