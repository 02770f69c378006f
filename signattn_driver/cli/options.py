"""Flags whose defaults belong to a config dataclass (or a library function's signature).

A default has one owner: the config dataclass (or, for a plain keyword argument, the library
function). A flag therefore defaults to None, its help text quotes the owner's default, and the
subcommand passes on only what the user gave:

    option(p, '--bits', type=int, owner=ModelConfig, name='quant_bits', help='amplitude bits')
    ...
    config = ModelConfig(**given(quant_bits=args.bits))
"""

import dataclasses
import inspect
from pathlib import Path


def default_of(owner, name: str):
    """Return the default of a dataclass field or of a keyword parameter of a callable.

    Raises:
        KeyError: no such field or parameter, or it has no default.
    """
    if dataclasses.is_dataclass(owner):
        for f in dataclasses.fields(owner):
            if f.name == name:
                if f.default is not dataclasses.MISSING:
                    return f.default
                if f.default_factory is not dataclasses.MISSING:
                    return f.default_factory()
                break
        raise KeyError(f'{owner.__name__}.{name} has no default')
    parameter = inspect.signature(owner).parameters.get(name)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        raise KeyError(f'{owner.__qualname__}({name}=...) has no default')
    return parameter.default


def show(value, separator: str = ',') -> str:
    """Write a default as it is typed on the command line (tuples joined by `separator`)."""
    if isinstance(value, (tuple, list)):
        return separator.join(show(v) for v in value)
    if isinstance(value, Path):
        return str(value)
    return f'{value:g}' if isinstance(value, float) else str(value)


def default_help(text: str, owner, name: str, separator: str = ',') -> str:
    """Return `text` followed by `(default: X)`, X read from the owner."""
    return f'{text} (default: {show(default_of(owner, name), separator)})'.lstrip()


def option(parser, *flags, owner=None, name: str | None = None, help: str = '', **kwargs):
    """Add a flag that defaults to None; with `owner`, its help quotes the owner's default.

    Args:
        parser: argparse parser or argument group.
        flags: option strings, e.g. '--max-steps'.
        owner: config dataclass or library function that owns the default.
        name: the field or parameter of `owner` (default: the flag's dest).
        help: help text without the default.
        kwargs: further add_argument keywords (type, choices, metavar, ...), not `default`.

    Returns:
        The argparse action; `action.owner` is (owner, name) or None (tests read it).
    """
    if owner is not None:
        name = name or flags[-1].lstrip('-').replace('-', '_')
        # a list option (nargs) is typed space-separated, a comma list as one word
        separator = ' ' if kwargs.get('nargs') in ('+', '*') else ','
        help = default_help(help, owner, name, separator)
    action = parser.add_argument(*flags, default=None, help=help, **kwargs)
    action.owner = None if owner is None else (owner, name)
    return action


def given(**values) -> dict:
    """Return the keyword arguments the user gave: flags left at None are dropped."""
    return {k: v for k, v in values.items() if v is not None}
