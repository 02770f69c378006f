"""The core never needs ROS: only signattn_driver.ros imports rclpy or ROS message packages.

Two checks: every non-ROS module imports with rclpy absent, and no non-ROS module mentions a
ROS import anywhere in its source, lazy imports inside functions included.
"""

import ast
from pathlib import Path
import subprocess
import sys

PACKAGE_DIR = Path(__file__).resolve().parents[2] / 'signattn_driver'
ROS_MODULES = ('rclpy', 'sensor_msgs', 'std_msgs', 'geometry_msgs', 'diagnostic_msgs',
               'std_srvs', 'ackermann_msgs', 'rcl_interfaces', 'rosbag2_py', 'cv_bridge',
               'launch', 'launch_ros')
# Layers allowed to use ROS: the node glue and the CLI that starts it.
ROS_LAYERS = ('ros', 'cli')


def _core_modules():
    for path in sorted(PACKAGE_DIR.rglob('*.py')):
        rel = path.relative_to(PACKAGE_DIR)
        if rel.parts[0] in ROS_LAYERS or rel.name == '__main__.py':
            continue
        yield path, '.'.join(('signattn_driver', *rel.with_suffix('').parts)).removesuffix(
            '.__init__')


def test_core_modules_import_without_rclpy():
    names = [name for _, name in _core_modules()]
    assert 'signattn_driver.model' in names and 'signattn_driver.data.dataset' in names
    code = ('import sys\n'
            f'for name in {ROS_MODULES!r}:\n'
            '    sys.modules[name] = None\n'
            + ''.join(f'import {m}\n' for m in names))
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_core_has_no_ros_import_even_inside_functions():
    offenders = []
    for path, name in _core_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = [a.name.split('.')[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                roots = [(node.module or '').split('.')[0]]
                if node.module and node.module.startswith('signattn_driver.ros'):
                    roots.append('signattn_driver.ros')
            else:
                continue
            offenders += [f'{name}:{node.lineno} imports {r}' for r in roots
                          if r in ROS_MODULES or r == 'signattn_driver.ros']
    assert not offenders, offenders
