"""ament_flake8 over the package, launch files and tests (99 columns).

flake8 checks files in forked worker processes. Forking a pytest process whose earlier tests
left torch or DDS threads running can crash the children (a fork copies one thread and the
others' locks), so the check runs in a fresh interpreter.
"""

from pathlib import Path
import subprocess
import sys

import pytest

pytest.importorskip('ament_flake8.main', reason='ament_flake8 not installed')
ROOT = Path(__file__).resolve().parents[2]
RUN = ('import sys\n'
       'from ament_flake8.main import main_with_errors\n'
       'rc, errors = main_with_errors(argv=sys.argv[1:])\n'
       'print(len(errors), "code style errors / warnings")\n'
       'print("\\n".join(errors))\n'
       'sys.exit(rc)\n')


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    paths = [str(ROOT / 'signattn_driver'), str(ROOT / 'launch'), str(ROOT / 'test'),
             str(ROOT / 'setup.py')]
    done = subprocess.run([sys.executable, '-c', RUN, *paths], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
