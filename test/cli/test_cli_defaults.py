"""Each `signattn` flag defaults to None; the config dataclass that owns its default says it."""

import argparse

import pytest

from signattn_driver.cli import build_parser
from signattn_driver.cli.evaluate import eval_config
from signattn_driver.cli.options import default_of, show
from signattn_driver.evaluation.deletion import DeletionConfig
from signattn_driver.evaluation.evaluate import EvalConfig
from signattn_driver.evaluation.explanations import ExplainConfig

SWITCHES = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._HelpAction,
            argparse._VersionAction, argparse._SubParsersAction)


def options(parser, path=()):
    """Yield (subcommand path, action) for every option of every (sub-)subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from options(sub, path + (name,))
        elif action.option_strings:
            yield path, action


def subcommand_options():
    """Return the options of every subcommand but the benchmarks' own.

    `signattn benchmark NAME` adds the options of benchmarks/NAME.py (a source checkout's
    measurement scripts, not the installed package); its shared --out is still checked.
    """
    found = [(' '.join(path), action) for path, action in options(build_parser())
             if not (len(path) == 2 and path[0] == 'benchmark' and action.dest != 'out')]
    assert {'convert udacity', 'train', 'evaluate', 'sweep', 'drive-sim'} <= {p for p, _ in found}
    return found


OPTIONS = subcommand_options()
VALUED = [(p, a) for p, a in OPTIONS if not isinstance(a, SWITCHES)]


@pytest.mark.parametrize('path, action', VALUED,
                         ids=[f'{p} {a.option_strings[-1]}' for p, a in VALUED])
def test_a_flag_defaults_to_none(path, action):
    """A flag not given must not override the config's default with a copy of it."""
    assert action.default is None, f'{path} {action.option_strings}: default {action.default!r}'


@pytest.mark.parametrize('path, action', OPTIONS,
                         ids=[f'{p} {a.option_strings[-1]}' for p, a in OPTIONS])
def test_help_names_the_owner_default(path, action):
    """A help text quotes the default read from its owner, and never writes one by hand."""
    owner = getattr(action, 'owner', None)
    text = ' '.join((action.help or '').split())
    if owner is None:
        assert 'default:' not in text, f'{path} {action.option_strings}: a hand-written default'
        return
    separator = ' ' if action.nargs in ('+', '*') else ','
    expected = f'(default: {show(default_of(*owner), separator)})'
    assert text.endswith(expected), f'{path} {action.option_strings}: {text!r}'


def test_owner_defaults_are_read_from_the_dataclass(monkeypatch):
    """Change a dataclass default and the help text follows it."""
    from signattn_driver.training.config import TrainConfig
    monkeypatch.setattr(TrainConfig.__dataclass_fields__['max_steps'], 'default', 1234)
    parser = build_parser()
    train = [a for path, a in options(parser) if path == ('train',) and a.dest == 'max_steps']
    assert train[0].help.endswith('(default: 1234)')


def evaluate_args(*extra):
    return build_parser().parse_args(['evaluate', '--checkpoint', 'm.pt', '--data', 'd',
                                      '--out', 'o', *extra])


def test_flags_not_given_keep_the_config_defaults():
    config = eval_config(evaluate_args(), None)
    assert config == EvalConfig()
    assert config.deletion == DeletionConfig() and config.explain == ExplainConfig()


def test_a_flag_given_overrides_only_its_field():
    args = evaluate_args('--step-percent', '2', '--seed', '7', '--fill', 'blur,mean',
                         '--no-insertion')
    config = eval_config(args, ('attention',))
    assert config.deletion == DeletionConfig(step_percent=2.0, fill='blur', insertion=False,
                                             seed=7)
    assert config.explain == ExplainConfig(seed=7)
    assert config.fills == ('blur', 'mean') and config.methods == ('attention',)
    assert config.window_frames == EvalConfig().window_frames
