"""`signattn train|sweep|evaluate` without the other subcommands, for machines without ROS.

The full `signattn` parser imports every subcommand module, and `convert` and `evaluate_live`
import rosbags at module level; a GPU machine with torch but no rosbags/rclpy can still train,
sweep and evaluate through this entry point (benchmarks/experiments.sh uses it):

    python3 benchmarks/experiment_cli.py train --config config/train_demo.yaml ...
"""

import argparse
import importlib
import logging
import sys

from signattn_driver.cli import run_command

SUBCOMMANDS = ('train', 'sweep', 'evaluate')


def main(argv=None) -> int:
    """Parse and run one of SUBCOMMANDS like `signattn` does."""
    parser = argparse.ArgumentParser(prog='experiment_cli')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f'signattn_driver.cli.{name}').register(subparsers)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    return run_command(args, prog='experiment_cli')


if __name__ == '__main__':
    sys.exit(main())
