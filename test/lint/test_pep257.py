"""ament_pep257 docstring checks over the package (Google convention, as STYLE.md asks)."""

from pathlib import Path

import pytest

ament_pep257 = pytest.importorskip('ament_pep257.main', reason='ament_pep257 not installed')
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    rc = ament_pep257.main(argv=[str(ROOT / 'signattn_driver'), str(ROOT / 'launch'),
                                 '--convention', 'google', '--add-ignore', 'D107'])
    assert rc == 0, 'Found code style errors / warnings'
