"""launch/drive.launch.py: what it would start, checked against a recording stand-in of launch.

ROS 2 `launch` / `launch_ros` cannot be installed here (the PyPI `launch` is another project), so
`generate_launch_description()` runs against fake modules that record every action; the test
then resolves the substitutions the way launch would and checks the result against the
installed package (executable, parameter file, rviz config). Where ROS 2 launch is installed,
`test_launch_starts_the_node` also starts the file for real.
"""

import importlib.util
import os
from pathlib import Path
import shutil
import sys
import threading
import time
import types

import pytest
import yaml

from signattn_driver.data.bag_layout import camera_topic

ROOT = Path(__file__).resolve().parent.parent
LAUNCH_FILE = ROOT / 'launch' / 'drive.launch.py'
PACKAGE = 'signattn_driver'


class Recorded:
    """Any launch object: remembers its positional and keyword arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def stand_in_modules() -> dict:
    names = {
        'launch': ['LaunchDescription'],
        'launch.actions': ['DeclareLaunchArgument'],
        'launch.conditions': ['IfCondition'],
        'launch.substitutions': ['LaunchConfiguration', 'PathJoinSubstitution'],
        'launch_ros.actions': ['Node'],
        'launch_ros.parameter_descriptions': ['ParameterValue'],
        'launch_ros.substitutions': ['FindPackageShare'],
        'launch_ros': [],
    }
    modules = {}
    for module_name, classes in names.items():
        module = types.ModuleType(module_name)
        for cls in classes:
            setattr(module, cls, type(cls, (Recorded,), {}))
        modules[module_name] = module
    return modules


def installed_prefix() -> Path:
    """Install prefix holding share/signattn_driver (ament index, else this interpreter's)."""
    try:
        from ament_index_python.packages import get_package_prefix
        return Path(get_package_prefix(PACKAGE))
    except Exception:  # package not on AMENT_PREFIX_PATH
        pass
    if (Path(sys.prefix) / 'share' / PACKAGE / 'config').is_dir():
        return Path(sys.prefix)
    pytest.skip('signattn_driver is not installed: run `make install` (or colcon build) first')


def resolve(value, arguments: dict, share: Path):
    """Evaluate a recorded substitution the way launch would."""
    kind = type(value).__name__
    if kind == 'LaunchConfiguration':
        return arguments[value.args[0]]
    if kind == 'FindPackageShare':
        assert value.args[0] == PACKAGE
        return str(share)
    if kind == 'PathJoinSubstitution':
        return os.path.join(*(resolve(p, arguments, share) for p in value.args[0]))
    if kind == 'ParameterValue':
        text = resolve(value.args[0], arguments, share)
        assert value.kwargs['value_type'] is bool
        return yaml.safe_load(text)
    if kind == 'IfCondition':
        return resolve(value.args[0], arguments, share).lower() in ('true', '1')
    if isinstance(value, dict):
        return {k: resolve(v, arguments, share) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(resolve(v, arguments, share) for v in value)
    return value


@pytest.fixture
def described(monkeypatch):
    for name, module in stand_in_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location('drive_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    entities = description.args[0]
    declared = {e.args[0]: e.kwargs for e in entities
                if type(e).__name__ == 'DeclareLaunchArgument'}
    nodes = {e.kwargs['executable']: e.kwargs for e in entities if type(e).__name__ == 'Node'}
    return declared, nodes


def launch_arguments(declared, **given):
    values = {name: kw['default_value'] for name, kw in declared.items() if 'default_value' in kw}
    values.update(given)
    return values


def test_arguments_are_declared_with_descriptions(described):
    declared, _ = described
    assert {'checkpoint', 'camera_topic', 'input_transport', 'device', 'use_sim_time',
            'rviz'} <= set(declared)
    assert all(kw.get('description') for kw in declared.values())
    assert declared['camera_topic']['default_value'] == camera_topic('center')


def test_default_checkpoint_is_the_installed_shipped_model(described):
    from signattn_driver.checkpoint import load
    declared, _ = described
    share = installed_prefix() / 'share' / PACKAGE
    default = Path(resolve(declared['checkpoint']['default_value'], {}, share))
    assert default == share / 'config' / 'models' / 'sim_sign_small.pt'
    assert load(default).config.attention == 'sign'


def test_drive_node_executable_parameters_and_remaps(described):
    from signattn_driver.ros.drive_node import PARAMETERS
    declared, nodes = described
    prefix = installed_prefix()
    share = prefix / 'share' / PACKAGE
    node = resolve(nodes['drive_node'], launch_arguments(
        declared, checkpoint='/models/m.pt', camera_topic='/cam/image/compressed'), share)
    assert node['package'] == PACKAGE
    candidates = [prefix / 'lib' / PACKAGE / 'drive_node', Path(sys.prefix) / 'bin' / 'drive_node']
    assert any(os.access(c, os.X_OK) for c in candidates) or shutil.which('drive_node'), \
        f'no drive_node executable in {candidates} or PATH'

    parameter_file, overrides = node['parameters']
    assert Path(parameter_file) == share / 'config' / 'drive.yaml'
    with open(parameter_file) as f:
        params = yaml.safe_load(f)['drive_node']['ros__parameters']
    assert set(params) == set(PARAMETERS)
    for name, value in params.items():
        default = PARAMETERS[name][0]
        assert type(value) is type(default), f'{name}: {value!r} vs default {default!r}'
    assert overrides == {'checkpoint': '/models/m.pt', 'device': 'auto', 'precision': 'fp32',
                         'input_transport': 'compressed', 'use_sim_time': False}
    assert set(overrides) - {'use_sim_time'} <= set(PARAMETERS)
    assert sorted(node['remappings']) == [('image', '/cam/image/compressed'),
                                          ('image/compressed', '/cam/image/compressed')]


def test_rviz_only_when_asked_with_the_installed_view(described):
    declared, nodes = described
    share = installed_prefix() / 'share' / PACKAGE
    rviz = nodes['rviz2']
    assert resolve(rviz['condition'], launch_arguments(declared, checkpoint='m'), share) is False
    started = resolve(rviz, launch_arguments(declared, checkpoint='m', rviz='true'), share)
    assert resolve(rviz['condition'], launch_arguments(declared, rviz='true'), share) is True
    flag, view = started['arguments']
    assert flag == '-d' and Path(view) == share / 'config' / 'attention.rviz'
    with open(view) as f:
        topics = [d['Topic']['Value'] for d in yaml.safe_load(f)['Visualization Manager']
                  ['Displays']]
    assert topics == ['/attention', camera_topic('center')]
    assert (share / 'launch' / 'drive.launch.py').is_file()


@pytest.mark.ros
def test_launch_starts_the_node(tiny_checkpoint, ros_domain_id):
    reason = ('ROS 2 launch is not installed here (apt ros-<distro>-launch-ros); the '
              'stand-in tests above cover the launch file')
    launch = pytest.importorskip('launch', reason=reason)
    if not hasattr(launch, 'LaunchService'):   # only the source tree's launch/ folder
        pytest.skip(reason)
    pytest.importorskip('launch_ros', reason='launch_ros is not installed')
    import rclpy
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    service = launch.LaunchService()
    service.include_launch_description(launch.LaunchDescription([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
        launch_arguments={'checkpoint': str(tiny_checkpoint), 'device': 'cpu'}.items())]))
    runner = threading.Thread(target=service.run, daemon=True)
    runner.start()
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('launch_probe', context=context)
    try:
        deadline = time.monotonic() + 60
        while node.count_publishers('/steering/command') == 0:
            assert time.monotonic() < deadline, 'the launched drive node never appeared'
            time.sleep(0.2)
        assert node.count_subscribers(camera_topic('center')) >= 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        service.shutdown()
        runner.join(timeout=30)
