"""Importing MetaDrive and making it render headless on a CPU: the simulator's run-time.

Only `metadrive-simulator==0.2.6.0` works offline (the last release whose wheel ships its
assets); it needs the pins in requirements-sim.txt (`pip install .[sim]`) and Mesa's EGL (apt:
libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri). Five run-time adjustments make it work on a
headless CPU machine with NumPy 2: 1-3 in `load`, 4-5 in `render_only_the_camera` after each
reset (and the main window's size in `sim/metadrive_adapter.MetaDriveSim`):

1. NumPy aliases it still uses (np.float, np.int, np.bool) are restored.
2. Panda3D renders through its EGL display module (p3headlessgl, Mesa software GL), no X.
3. Its multi-threaded render mode (threading-model Cull/Draw) is dropped: with it the first
   frame is white and steps hang.
4. Anisotropic filtering is set to 1 on every texture after each reset: at MetaDrive's 8-16,
   software GL takes seconds per frame.
5. The main window is shrunk to the camera size and multisampling is dropped: MetaDrive
   renders its 1200x900 main window with 8x MSAA every step even when nobody looks (reset
   40 s -> 2 s, steps 20 -> 50-70 per second).
"""

import contextlib
import io
import logging
import os

import numpy as np

from signattn_driver.errors import SimulationError

SIM_VERSION = '0.2.6.0'
INSTALL_HINT = ('install the simulator extra: `pip install .[sim]` (requirements-sim.txt; '
                'metadrive-simulator==0.2.6.0 with --no-deps) and apt packages libegl1 libgl1 '
                'libegl-mesa0 libgl1-mesa-dri')

log = logging.getLogger(__name__)
_MD = {}


class MetaDriveError(SimulationError):
    """MetaDrive itself is missing, cannot start, or was used out of order.

    The sim layer's other errors: SimulationError (a recording), ClosedLoopError (a controller).
    """


def is_available() -> bool:
    """Return whether MetaDrive and its display module can be imported."""
    try:
        load()
    except MetaDriveError:
        return False
    return True


def require():
    """Import MetaDrive now; raise MetaDriveError with the install hint if it is missing."""
    load()


def load() -> dict:
    """Import MetaDrive with adjustments 1-3; cached. Raises MetaDriveError if absent.

    Returns:
        {'p3d': panda3d.core, 'MetaDriveEnv', 'IDMPolicy', 'LineType': MetaDrive's classes,
        'stripe_m': the length of a broken line's painted stripe in m}.
    """
    if _MD:
        return _MD
    # 1. MetaDrive 0.2.6 predates NumPy 1.24, which removed these aliases.
    for alias, kind in (('float', float), ('int', int), ('bool', bool)):
        if alias not in np.__dict__:
            setattr(np, alias, kind)
    try:
        from panda3d import core as p3d
    except ImportError as err:
        raise MetaDriveError(f'Panda3D is not installed ({err}); {INSTALL_HINT}') from err
    # 2. headless EGL; keep Panda3D's notices about missing input devices quiet.
    p3d.loadPrcFileData('signattn', '\n'.join((
        'load-display p3headlessgl', 'aux-display p3headlessgl', 'notify-level-display error',
        'notify-level-egldisplay error', 'notify-level-device fatal', 'audio-library-name null')))
    quiet = io.StringIO()
    try:
        # gym and MetaDrive print banners on import.
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            from metadrive.constants import DrivableAreaProperty, LineType
            from metadrive.engine.core import engine_core
            from metadrive.envs.metadrive_env import MetaDriveEnv
            from metadrive.policy.idm_policy import IDMPolicy
            import metadrive
    except ImportError as err:
        raise MetaDriveError(f'MetaDrive is not importable ({err}); {INSTALL_HINT}') from err
    if getattr(metadrive, '__version__', SIM_VERSION) not in (SIM_VERSION, None):
        log.warning('MetaDrive %s found; this adapter is written for %s',
                    metadrive.__version__, SIM_VERSION)

    original = engine_core.loadPrcFileData

    def load_prc_file_data(name, data):
        # 3. (and 5.) drop the threaded renderer, the GLES display and multisampling.
        key = data.strip().split(' ', 1)[0]
        if key in ('threading-model', 'load-display', 'framebuffer-multisample', 'multisamples'):
            return None
        return original(name, data)

    engine_core.loadPrcFileData = load_prc_file_data
    _MD.update(p3d=p3d, MetaDriveEnv=MetaDriveEnv, IDMPolicy=IDMPolicy, LineType=LineType,
               stripe_m=DrivableAreaProperty.STRIPE_LENGTH)
    return _MD


def render_only_the_camera(engine, vehicle):
    """Apply adjustments 4 and 5 to a freshly reset world: cheap textures, one live camera.

    Args:
        engine: MetaDrive's engine (`env.engine`) after `env.reset`.
        vehicle: the ego vehicle; its 'rgb_camera' sensor stays the only active render target.
    """
    # 4. anisotropic filtering costs seconds per frame in software GL.
    for texture in load()['p3d'].TexturePool.findAllTextures():
        texture.setAnisotropicDegree(1)
    for texture in engine.render.findAllTextures():
        texture.setAnisotropicDegree(1)
    # 5. only our camera renders: MetaDrive also renders its main window, an 84x84 top-down
    # map of 250 m and a depth image every step, which triples the cost with traffic.
    for name, sensor in vehicle.image_sensors.items():
        if name != 'rgb_camera' and getattr(type(sensor), '_singleton', None) is not None:
            type(sensor)._singleton.buffer.setActive(False)
    for region in engine.win.getDisplayRegions():
        region.setActive(False)


def restore_python_utf8(value: str | None):
    """Set PYTHONUTF8 back to `value` (None: unset), as it was before Panda3D's ShowBase ran.

    ShowBase sets PYTHONUTF8=on, which every Python started from this process (e.g. the drive
    node) rejects at start-up.
    """
    if value is None:
        os.environ.pop('PYTHONUTF8', None)
    else:
        os.environ['PYTHONUTF8'] = value
