"""Where the package's installed data (config/, launch/) lives.

Three layouts are supported, tried in this order: a source checkout (the code and its config
come from the same tree), a colcon/ament install (found through the ament index), and a
`pip install .` (data_files land under `sys.prefix/share`).
"""

from pathlib import Path
import sys

PACKAGE = 'signattn_driver'
# The shipped demo checkpoint, under config/ (the node's, the launch file's and the demo's model)
SHIPPED_MODEL = ('models', 'sim_route.pt')


def share_dir() -> Path:
    """Return the directory holding `config/` and `launch/` for this package."""
    source = Path(__file__).resolve().parent.parent
    if (source / 'package.xml').is_file() and (source / 'config').is_dir():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory(PACKAGE))
    except Exception:  # ament_index absent or package not in AMENT_PREFIX_PATH
        pass
    prefix_share = Path(sys.prefix) / 'share' / PACKAGE
    if (prefix_share / 'config').is_dir():
        return prefix_share
    raise FileNotFoundError(f'cannot find the share directory of {PACKAGE}: set '
                            f'AMENT_PREFIX_PATH to its install prefix')


def config_path(*parts: str) -> Path:
    """Path of a file under the package's `config/` directory."""
    return share_dir().joinpath('config', *parts)


def shipped_model() -> Path:
    """Path of the shipped demo checkpoint (config/models/sim_route.pt)."""
    return config_path(*SHIPPED_MODEL)
