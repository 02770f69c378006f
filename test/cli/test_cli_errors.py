"""`signattn` on an output folder it cannot write: one line on stderr, exit status 2."""

import os
from pathlib import Path
import stat

import pytest
import torch

from conftest import tiny_config
from fixtures.udacity_bags import FixtureSpec, write_udacity_bag
from signattn_driver import checkpoint
from signattn_driver.cli import main
from signattn_driver.model import SteeringNet
from fixtures.datasets import write_dataset


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    """Make a Udacity bag, the ROS 2 bag converted from it, a dataset and a tiny checkpoint."""
    root = tmp_path_factory.mktemp('inputs')
    bag = root / 'HMB_1.bag'
    write_udacity_bag(bag, FixtureSpec(frames=8))
    assert main(['convert', 'udacity', str(bag), '--out', str(root / 'converted'),
                 '--no-progress']) == 0
    torch.manual_seed(0)
    return {'udacity_bag': bag, 'ros2_bag': root / 'converted' / 'bags' / 'HMB_1',
            'dataset': write_dataset(root / 'data', splits=('train', 'train', 'test'), frames=40),
            'checkpoint': checkpoint.save(root / 'tiny.pt', SteeringNet(tiny_config()))}


def command(name: str, inputs: dict, out: Path) -> list:
    return {
        'convert udacity': ['convert', 'udacity', str(inputs['udacity_bag']), '--out', str(out),
                            '--no-progress'],
        'convert bag': ['convert', 'bag', str(inputs['ros2_bag']), '--out', str(out)],
        'train': ['train', '--data', str(inputs['dataset']), '--out', str(out), '--device', 'cpu',
                  '--max-steps', '1', '--num-workers', '0', '--no-progress'],
        'evaluate': ['evaluate', '--checkpoint', str(inputs['checkpoint']), '--data',
                     str(inputs['dataset']), '--out', str(out), '--device', 'cpu',
                     '--methods', 'attention', '--limit-frames', '2', '--no-progress'],
    }[name]


COMMANDS = ('convert udacity', 'convert bag', 'train', 'evaluate')


def one_error_line(capsys, name: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith('signattn ')]
    assert len(lines) == 1 and 'Traceback' not in err, err
    assert lines[0].startswith(f'signattn {name.split()[0]}: error: ')
    return lines[0]


@pytest.mark.parametrize('name', COMMANDS)
def test_a_file_in_the_way_of_the_output_folder(inputs, tmp_path, capsys, name):
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    out = blocker / 'out'
    capsys.readouterr()
    assert main(command(name, inputs, out)) == 2
    line = one_error_line(capsys, name)
    assert 'a_file' in line


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into read-only folders anyway; '
                    'test_permission_error_message covers the message')
@pytest.mark.parametrize('name', COMMANDS)
def test_read_only_output_folder(inputs, tmp_path, capsys, name):
    parent = tmp_path / 'read_only'
    parent.mkdir()
    parent.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        capsys.readouterr()
        assert main(command(name, inputs, parent / 'out')) == 2
        line = one_error_line(capsys, name)
        assert 'read_only' in line
    finally:
        parent.chmod(stat.S_IRWXU)


@pytest.mark.parametrize('name', COMMANDS)
def test_permission_error_message(inputs, tmp_path, capsys, monkeypatch, name):
    """What a read-only --out gives, made to happen as root too: every mkdir is refused."""
    real_mkdir = Path.mkdir
    out = tmp_path / 'locked' / 'out'

    def refuse(self, *args, **kwargs):
        if str(self).startswith(str(tmp_path / 'locked')):
            raise PermissionError(13, 'Permission denied', str(self))
        return real_mkdir(self, *args, **kwargs)
    monkeypatch.setattr(Path, 'mkdir', refuse)
    monkeypatch.setattr(os, 'makedirs', lambda path, *a, **k: refuse(Path(path)))
    capsys.readouterr()
    assert main(command(name, inputs, out)) == 2
    line = one_error_line(capsys, name)
    assert 'locked' in line and 'ermission denied' in line


USER_ERRORS = {
    # a model config value the dataclass rejects (ModelConfig, through the training layer)
    'bad --bits': (['train', '--data', '{dataset}', '--out', '{out}', '--bits', '99',
                    '--device', 'cpu', '--no-progress'], 'quant_bits'),
    # a thread count torch cannot use (CliError)
    'bad train --threads': (['train', '--data', '{dataset}', '--out', '{out}', '--threads', '0',
                             '--device', 'cpu', '--no-progress'], '--threads must be >= 1'),
    # the device rule (ConfigError)
    'bad --device': (['evaluate', '--checkpoint', '{checkpoint}', '--data', '{dataset}',
                      '--out', '{out}', '--device', 'tpu', '--methods', 'attention',
                      '--limit-frames', '2', '--no-progress'], "'tpu'"),
    # eq. 2's smoothing factor (ConfigError from the label math)
    'bad --smoothing': (['convert', 'bag', '{ros2_bag}', '--out', '{out}', '--smoothing', '0'],
                        'alpha_s'),
    # a checkpoint that is not one (CheckpointError)
    'not a checkpoint': (['evaluate', '--checkpoint', '{udacity_bag}', '--data', '{dataset}',
                          '--out', '{out}', '--device', 'cpu', '--methods', 'attention',
                          '--no-progress'], 'HMB_1.bag'),
}


@pytest.mark.parametrize('case', sorted(USER_ERRORS))
def test_a_user_error_is_one_line_and_exit_2(inputs, tmp_path, capsys, case):
    argv, expected = USER_ERRORS[case]
    values = {k: str(v) for k, v in inputs.items()} | {'out': str(tmp_path / 'out')}
    capsys.readouterr()
    assert main([a.format(**values) for a in argv]) == 2
    assert expected in one_error_line(capsys, argv[0])


def test_a_bug_keeps_its_traceback(inputs, tmp_path, monkeypatch):
    """A bare ValueError from the library is not a usage error: it reaches the caller."""
    import functools

    from signattn_driver.evaluation import evaluate

    @functools.wraps(evaluate.evaluate)   # the parser reads the defaults off its signature
    def broken(*args, **kwargs):
        raise ValueError('a bug')
    monkeypatch.setattr(evaluate, 'evaluate', broken)
    with pytest.raises(ValueError, match='a bug'):
        main(command('evaluate', inputs, tmp_path / 'out'))


def package_exceptions() -> list:
    """Every exception class defined in an importable module of signattn_driver."""
    import importlib
    import inspect
    import pkgutil

    import signattn_driver
    found = []
    for info in pkgutil.walk_packages(signattn_driver.__path__, 'signattn_driver.'):
        if info.name.endswith('__main__'):   # runs the command when imported
            continue
        module = importlib.import_module(info.name)
        found += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                  if issubclass(cls, BaseException) and cls.__module__ == info.name]
    return found


def test_every_package_error_derives_from_the_root():
    from signattn_driver.errors import SignattnError
    names = {f'{c.__module__}.{c.__qualname__}': c for c in package_exceptions()}
    assert 'signattn_driver.udacity.errors.BagStreamError' in names
    strays = sorted(n for n, c in names.items()
                    if not issubclass(c, SignattnError))
    assert not strays, f'exception classes outside the SignattnError tree: {strays}'
