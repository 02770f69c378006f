"""ament_flake8 over the package, launch files and tests (99 columns)."""

from pathlib import Path

import pytest

ament_flake8 = pytest.importorskip('ament_flake8.main', reason='ament_flake8 not installed')
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    rc, errors = ament_flake8.main_with_errors(argv=[
        str(ROOT / 'signattn_driver'), str(ROOT / 'launch'), str(ROOT / 'test'),
        str(ROOT / 'setup.py')])
    assert rc == 0, f'Found {len(errors)} code style errors / warnings:\n' + '\n'.join(errors)
