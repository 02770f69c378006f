"""The `signattn` command: one subcommand per module of this package (signattn_driver.cli.*).

Each subcommand module defines `register(subparsers)`, which adds its parser and sets
`func(args) -> int`; the function parses nothing itself and calls one library function.
"""

import argparse
import errno
import importlib
import logging
import sys

from signattn_driver import __version__
from signattn_driver.errors import SignattnError

# Module names under signattn_driver.cli, in the order `signattn --help` lists them.
SUBCOMMANDS = (
    'convert', 'train', 'evaluate', 'sweep', 'replay', 'evaluate_live', 'simulate', 'drive_sim',
    'demo', 'view', 'benchmark',
)


class CliError(SignattnError):
    """A command line that cannot be run as given; printed as one line, exit status 2."""


def os_error_message(err: OSError) -> str:
    """One line for a file-system error, saying what to do about it."""
    where = f' {err.filename}' if err.filename else ''
    what = err.strerror or str(err) or type(err).__name__
    if isinstance(err, PermissionError):
        hint = 'choose a folder you can write to (--out) or fix its permissions'
    elif isinstance(err, (NotADirectoryError, FileExistsError)):
        hint = 'a file is in the way: choose another --out or move the file'
    elif err.errno == errno.ENOSPC:
        hint = 'free some space or write elsewhere (--out)'
    elif err.errno == errno.EROFS:
        hint = 'the file system is read-only: write elsewhere (--out)'
    else:
        hint = 'check the path and try again'
    return f'cannot access{where}: {what} ({hint})'


def build_parser() -> argparse.ArgumentParser:
    """Assemble the parser from the subcommand modules."""
    parser = argparse.ArgumentParser(
        prog='signattn', description='Quantized sign-only attention steering (Tashiro & Awano '
        '2023): data conversion, training, evaluation, replay and benchmarks.')
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    parser.add_argument('-v', '--verbose', action='store_true', help='debug logging')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f'signattn_driver.cli.{name}').register(subparsers)
    return parser


def run_command(args, prog: str = 'signattn') -> int:
    """Run a parsed subcommand: its exit status, or 2 with one line on stderr for a user error.

    A SignattnError (any layer's error the user can act on) and an OSError (a missing input, a
    read-only or full output folder, a file in the way) become one line `PROG COMMAND: error:
    ...` and exit status 2. Every other exception is a bug and propagates with its traceback.
    """
    try:
        return int(args.func(args) or 0)
    except SignattnError as err:
        message = str(err)
    except FileNotFoundError as err:   # the library's own messages name the missing input
        message = str(err)
    except OSError as err:
        message = os_error_message(err)
    except KeyboardInterrupt:
        return 130
    print(f'{prog} {args.command}: error: {message}', file=sys.stderr)
    return 2


def main(argv=None) -> int:
    """Entry point of `signattn` (also `ros2 run signattn_driver signattn`)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format='%(levelname)s %(name)s: %(message)s')
    return run_command(args)


if __name__ == '__main__':
    sys.exit(main())
