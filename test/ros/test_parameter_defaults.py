"""One set of defaults: the drive node's PARAMETERS, config/drive.yaml, docs/node.md, launch."""

import ast
from pathlib import Path
import re

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip('rclpy', reason='the drive node module imports rclpy')
from signattn_driver.ros.drive_node import PARAMETERS  # noqa: E402

DEFAULTS = {name: row.default for name, row in PARAMETERS.items()}


def same(a, b) -> bool:
    """Equal by value and by YAML type (1 is not 1.0 for a ROS parameter)."""
    return type(a) is type(b) and a == b


def test_config_drive_yaml_holds_every_default():
    with open(ROOT / 'config' / 'drive.yaml') as f:
        values = yaml.safe_load(f)['drive_node']['ros__parameters']
    assert set(values) == set(DEFAULTS)
    wrong = {k: (v, DEFAULTS[k]) for k, v in values.items() if not same(v, DEFAULTS[k])}
    assert not wrong, f'config/drive.yaml vs drive_node.PARAMETERS: {wrong}'


def docs_parameter_table() -> dict:
    """`name` -> (type, default cell) from the table under '## Parameters' in docs/node.md."""
    text = (ROOT / 'docs' / 'node.md').read_text()
    section = text.split('## Parameters', 1)[1].split('\n## ', 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r'\| `(\w+)` \| (\w+) \| ([^|]+) \|', line)
        if match:
            rows[match.group(1)] = (match.group(2), match.group(3).strip())
    return rows


def test_docs_node_md_table_matches_the_defaults():
    rows = docs_parameter_table()
    assert set(rows) == set(DEFAULTS)
    types = {str: 'string', bool: 'bool', int: 'int', float: 'double'}
    for name, (kind, cell) in rows.items():
        default = DEFAULTS[name]
        assert kind == types[type(default)], f'{name}: documented as {kind}'
        if cell == '(required)':
            assert default == '', name
            continue
        literal = re.fullmatch(r'`([^`]*)`( .*)?', cell)
        assert literal, f'{name}: default cell {cell!r} has no `value`'
        value = yaml.safe_load(literal.group(1)) if literal.group(1) else ''
        if isinstance(default, float) and isinstance(value, int):
            value = float(value)
        assert same(value, default), f'{name}: docs say {value!r}, node says {default!r}'


def launch_argument_defaults() -> dict:
    """Constant default_value of each DeclareLaunchArgument in launch/drive.launch.py."""
    tree = ast.parse((ROOT / 'launch' / 'drive.launch.py').read_text())
    defaults = {}
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, 'id', '') == 'DeclareLaunchArgument':
            name = call.args[0].value
            for keyword in call.keywords:
                if keyword.arg == 'default_value' and isinstance(keyword.value, ast.Constant):
                    defaults[name] = keyword.value.value
    return defaults


def test_launch_arguments_default_to_the_node_defaults():
    defaults = launch_argument_defaults()
    assert {'device', 'precision', 'input_transport'} <= set(defaults)
    for name, text in defaults.items():
        if name in DEFAULTS:
            value = yaml.safe_load(text) if text else ''
            if isinstance(DEFAULTS[name], float) and isinstance(value, int):
                value = float(value)
            assert same(value, DEFAULTS[name]), \
                f'launch argument {name} defaults to {text!r}, the node to {DEFAULTS[name]!r}'
