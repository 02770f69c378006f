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
from test_evaluation import write_dataset


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
