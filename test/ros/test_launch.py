"""launch/drive.launch.py without ROS 2 launch: a recording stand-in of launch and launch_ros.

`generate_launch_description()` runs against fake modules that record every action; the tests
resolve the substitutions the way launch would and check the result against the installed
package (parameter file, default checkpoint, rviz view). They need no ROS 2 launch system, so
they also run on a clone without it; test_drive_launch.py starts the file for real with
`ros2 launch` (where launch is installed) and checks the running node over DDS.
"""

import importlib.util
import os
from pathlib import Path
import subprocess
import sys
import types

import pytest
import yaml

from signattn_driver.data.bag_layout import camera_topic

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILE = ROOT / 'launch' / 'drive.launch.py'
PACKAGE = 'signattn_driver'


class Recorded:
    """Any launch object: remembers its positional and keyword arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def stand_in_modules() -> dict:
    names = {
        'launch': ['LaunchDescription'],
        'launch.actions': ['DeclareLaunchArgument', 'OpaqueFunction', 'RegisterEventHandler',
                           'Shutdown'],
        'launch.conditions': ['IfCondition', 'UnlessCondition'],
        'launch.event_handlers': ['OnProcessExit'],
        'launch.substitutions': ['LaunchConfiguration', 'PathJoinSubstitution'],
        'launch_ros.actions': ['LifecycleNode', 'Node'],
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


@pytest.fixture
def share(pip_prefix) -> Path:
    """share/signattn_driver of this tree, pip-installed into a fresh prefix."""
    return pip_prefix / 'share' / PACKAGE


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
        return value.kwargs['value_type'](yaml.safe_load(text) if value.kwargs['value_type']
                                          in (bool, int, float) else text)
    if kind in ('IfCondition', 'UnlessCondition'):
        true = resolve(value.args[0], arguments, share).lower() in ('true', '1')
        return true if kind == 'IfCondition' else not true
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
    nodes = {('managed_' if type(e).__name__ == 'LifecycleNode' else '') + e.kwargs['executable']:
             e.kwargs for e in entities if type(e).__name__ in ('Node', 'LifecycleNode')}
    return declared, nodes, entities


def launch_arguments(declared, **given):
    values = {name: kw['default_value'] for name, kw in declared.items() if 'default_value' in kw}
    values.update(given)
    return values


def test_arguments_are_declared_with_descriptions(described):
    declared, _, _ = described
    assert {'checkpoint', 'camera_topic', 'input_transport', 'input_reliability', 'input_depth',
            'device', 'precision', 'speed_topic', 'assumed_speed_mps', 'ackermann_topic',
            'use_sim_time', 'rviz', 'lifecycle', 'route_command_topic', 'view'} == set(declared)
    assert all(kw.get('description') for kw in declared.values())
    assert declared['camera_topic']['default_value'] == camera_topic('center')
    assert declared['ackermann_topic']['default_value'] == 'steering/ackermann'   # no remap
    assert declared['route_command_topic']['default_value'] == 'route/command'   # no remap


def test_default_checkpoint_is_the_installed_shipped_model(described, share):
    from signattn_driver.checkpoint import load
    declared, _, _ = described
    default = Path(resolve(declared['checkpoint']['default_value'], {}, share))
    assert default == share / 'config' / 'models' / 'sim_route.pt'
    config = load(default).config
    assert config.attention == 'sign' and config.num_commands == 4   # takes route commands


def test_drive_node_parameters_and_remaps(described, share):
    from signattn_driver.ros.drive_node import PARAMETERS
    declared, nodes, _ = described
    node = resolve(nodes['drive_node'], launch_arguments(
        declared, checkpoint='/models/m.pt', camera_topic='/cam/image/compressed',
        ackermann_topic='/ackermann_cmd', input_depth='3', assumed_speed_mps='12',
        route_command_topic='/navigator/command'), share)
    assert (node['package'], node['executable']) == (PACKAGE, 'drive_node')

    parameter_file, overrides = node['parameters']
    assert Path(parameter_file) == share / 'config' / 'drive.yaml'
    with open(parameter_file) as f:
        params = yaml.safe_load(f)['drive_node']['ros__parameters']
    assert set(params) == set(PARAMETERS)
    for name, value in params.items():
        default = PARAMETERS[name].default
        assert type(value) is type(default), f'{name}: {value!r} vs default {default!r}'
    assert overrides == {'checkpoint': '/models/m.pt', 'device': 'auto', 'precision': 'fp32',
                         'input_transport': 'compressed', 'input_reliability': 'best_effort',
                         'input_depth': 3, 'speed_topic': '', 'assumed_speed_mps': 12.0,
                         'use_sim_time': False}
    assert all(type(v) is type(params.get(k, v)) for k, v in overrides.items())
    assert sorted(node['remappings']) == [('image', '/cam/image/compressed'),
                                          ('image/compressed', '/cam/image/compressed'),
                                          ('route/command', '/navigator/command'),
                                          ('steering/ackermann', '/ackermann_cmd')]


def test_rviz_check_comes_before_the_node_and_rviz_only_when_asked(described, share):
    declared, nodes, entities = described
    order = [type(e).__name__ for e in entities if type(e).__name__ != 'DeclareLaunchArgument']
    assert order == ['OpaqueFunction', 'Node', 'LifecycleNode', 'RegisterEventHandler',
                     'RegisterEventHandler', 'Node', 'Node']
    assert entities[-7].kwargs['function'].__name__ == 'require_rviz2'   # before drive_node
    rviz = nodes['rviz2']
    assert resolve(rviz['condition'], launch_arguments(declared, checkpoint='m'), share) is False
    started = resolve(rviz, launch_arguments(declared, checkpoint='m', rviz='true'), share)
    assert resolve(rviz['condition'], launch_arguments(declared, rviz='true'), share) is True
    flag, view = started['arguments']
    assert flag == '-d' and Path(view) == share / 'config' / 'attention.rviz'
    assert (share / 'launch' / 'drive.launch.py').is_file()


def test_viewer_only_when_asked(described, share):
    declared, nodes, _ = described
    viewer = nodes['viewer_node']
    assert viewer['package'] == PACKAGE and viewer['name'] == 'viewer'
    assert resolve(viewer['condition'], launch_arguments(declared), share) is False
    assert resolve(viewer['condition'], launch_arguments(declared, view='true'), share) is True
    started = resolve(viewer, launch_arguments(declared, camera_topic='/cam/compressed'), share)
    assert started['remappings'] == [('image/compressed', '/cam/compressed')]


def test_pip_layout_puts_the_executables_where_launch_ros_looks(pip_prefix):
    """launch_ros starts `<prefix>/lib/<package>/<executable>`; pip puts scripts in bin/."""
    from conftest import prefix_site_packages
    for name in ('drive_node', 'signattn', 'viewer_node'):
        libexec = pip_prefix / 'lib' / PACKAGE / name
        assert os.access(libexec, os.X_OK), f'{libexec} missing or not executable'
        assert (pip_prefix / 'bin' / name).is_file()
    assert (prefix_site_packages(pip_prefix) / PACKAGE / 'viewer' / 'static' /
            'index.html').is_file()   # the viewer's page ships with the package
    env = dict(os.environ, PYTHONPATH=str(prefix_site_packages(pip_prefix)))
    result = subprocess.run([str(pip_prefix / 'lib' / PACKAGE / 'signattn'), '--help'],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith('usage: signattn'), \
        result.stdout + result.stderr
    assert (pip_prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' /
            PACKAGE).is_file()


def test_lifecycle_starts_the_same_node_managed_instead_of_the_plain_one(described, share):
    declared, nodes, entities = described
    assert declared['lifecycle']['default_value'] == 'false'
    plain, managed = nodes['drive_node'], nodes['managed_drive_node']
    for given, runs in (('false', plain), ('true', managed)):
        arguments = launch_arguments(declared, checkpoint='m', lifecycle=given)
        assert resolve(plain['condition'], arguments, share) is (runs is plain)
        assert resolve(managed['condition'], arguments, share) is (runs is managed)
    assert managed['arguments'] == ['--lifecycle'] and 'arguments' not in plain
    same = {k: v for k, v in managed.items() if k not in ('condition', 'arguments', 'namespace')}
    assert same == {k: v for k, v in plain.items() if k != 'condition'}   # one configuration
    # Either node's exit ends the launch.
    targets = [e.args[0].kwargs['target_action'] for e in entities
               if type(e).__name__ == 'RegisterEventHandler']
    assert {type(t).__name__ for t in targets} == {'Node', 'LifecycleNode'}
