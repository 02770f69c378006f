"""The drive node's parameters: defaults, types, descriptions and validation, in one table.

`config/drive.yaml`, the launch file's arguments and docs/node.md mirror `PARAMETERS` by value
(test/ros/test_parameter_defaults.py).
"""

from dataclasses import dataclass
import math

from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from signattn_driver.data.sequence_rule import SEQUENCE_BREAK_GAP_S
from signattn_driver.choices import (is_device_name, PRECISIONS, RELIABILITY_NAMES,
                                     TRANSPORTS)
from signattn_driver.vehicle import load_vehicle

RELIABILITIES = dict(zip(RELIABILITY_NAMES,
                         (ReliabilityPolicy.BEST_EFFORT, ReliabilityPolicy.RELIABLE)))
# The navigator's route command: reliable and latched, so a late joiner gets the current one.
ROUTE_COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                               durability=DurabilityPolicy.TRANSIENT_LOCAL)


def input_qos(settings: dict) -> QoSProfile:
    """Return the camera subscription's QoS for the node's parameter values.

    REP-2003 sensor data (best effort, volatile, keep last) unless input_reliability says
    reliable: Fast DDS LARGE_DATA loses raw 640x480 frames sent best effort (docs/node.md).
    """
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=settings['input_depth'],
                      reliability=RELIABILITIES[settings['input_reliability']],
                      durability=DurabilityPolicy.VOLATILE)


@dataclass(frozen=True)
class NodeParameter:
    """One row of PARAMETERS: a drive node parameter's default, type and description.

    Attributes:
        default: the value the node starts with (its Python type is the ROS type).
        kind: rcl_interfaces ParameterType constant.
        read_only: fixed at start (rclpy refuses later changes).
        description: what the parameter does, shown by `ros2 param describe`.
    """

    default: object
    kind: int
    read_only: bool
    description: str

    def descriptor(self) -> ParameterDescriptor:
        """Return this parameter's ParameterDescriptor."""
        return ParameterDescriptor(description=self.description, type=self.kind,
                                   read_only=self.read_only)


STRING, BOOL, INTEGER, DOUBLE = (ParameterType.PARAMETER_STRING, ParameterType.PARAMETER_BOOL,
                                 ParameterType.PARAMETER_INTEGER,
                                 ParameterType.PARAMETER_DOUBLE)
TYPE_NAMES = {STRING: 'a string', BOOL: 'true or false', INTEGER: 'an integer',
              DOUBLE: 'a floating-point number (e.g. 1.0)'}
# name -> row; config/drive.yaml mirrors this table (test/ros/test_parameter_defaults.py).
PARAMETERS = {
    'checkpoint': NodeParameter(
        '', STRING, True, 'checkpoint file written by `signattn train` (required)'),
    'device': NodeParameter(
        'auto', STRING, True, 'auto | cpu | cuda | cuda:N (auto = CUDA when present)'),
    'precision': NodeParameter(
        'fp32', STRING, True, 'fp32 | bf16 (autocast) | int8 (dynamic, CPU only)'),
    'input_transport': NodeParameter(
        'compressed', STRING, True, 'compressed: subscribe image/compressed (CompressedImage); '
        'raw: subscribe image (Image)'),
    'input_reliability': NodeParameter(
        'best_effort', STRING, True, 'best_effort (sensor-data QoS, REP-2003) | reliable: the '
        'input subscription\'s reliability; raw 640x480 images need reliable over Fast DDS '
        'LARGE_DATA (docs/node.md)'),
    'input_depth': NodeParameter(
        1, INTEGER, True, 'input subscription queue depth (>= 1; the node always works on the '
        'newest frame)'),
    'num_threads': NodeParameter(
        1, INTEGER, True, 'torch CPU threads (0 = torch default: one per core)'),
    'vehicle': NodeParameter(
        'mkz', STRING, False, 'vehicle profile name (config/vehicles) or YAML path; d_w, K_s, '
        'K_slip for the Ackermann front-wheel angle (eq. 3)'),
    'speed_topic': NodeParameter(
        '', STRING, True, 'geometry_msgs/TwistStamped topic whose linear.x (m/s) is the speed '
        'for the Ackermann angle, e.g. /vehicle/twist (empty = off)'),
    'assumed_speed_mps': NodeParameter(
        0.0, DOUBLE, False, 'speed for the Ackermann angle while no speed_topic message has '
        'arrived (or without speed_topic), m/s >= 0'),
    'publish_attention': NodeParameter(
        True, BOOL, False, 'publish `attention` while someone subscribes'),
    'attention_every_n': NodeParameter(
        1, INTEGER, False, 'publish the attention map every n-th frame (>= 1)'),
    'attention_raw': NodeParameter(
        False, BOOL, False, 'publish the raw 10x20 map (32FC1) instead of the bgr8 overlay on '
        'the camera image'),
    'attention_alpha': NodeParameter(
        0.5, DOUBLE, False, 'heat-map weight of the overlay, 0..1'),
    'publish_contribution': NodeParameter(
        True, BOOL, False, 'publish `attention/contribution` while someone subscribes (every '
        'attention_every_n-th frame, as `attention`)'),
    'contribution_raw': NodeParameter(
        False, BOOL, False, 'publish the raw 10x20 contribution map phi (32FC1, 1/m) instead '
        'of the bgr8 overlay on the camera image'),
    'contribution_scale_per_m': NodeParameter(
        0.0, DOUBLE, False, '|phi| (1/m) drawn at full strength in the contribution overlay; '
        '0 = each frame\'s own max |phi| (the scale in use is in /diagnostics)'),
    'max_input_pixels': NodeParameter(
        4096 * 4096, INTEGER, False, 'reject frames with more pixels than this, read from the '
        'raw header or the JPEG/PNG header before decoding (0 = no limit)'),
    'max_future_s': NodeParameter(
        1.0, DOUBLE, False, 'reject frames stamped more than this ahead of the node clock '
        '(0 = off)'),
    'stale_input_s': NodeParameter(
        2.0, DOUBLE, False, '/diagnostics warns when the input topic has publishers but no '
        'frame arrived for this long (0 = off)'),
    'max_drop_fraction': NodeParameter(
        0.2, DOUBLE, False, '/diagnostics warns when more than this share of the frames '
        'received in the last 10 s was dropped or rejected'),
    'max_frame_age_s': NodeParameter(
        0.0, DOUBLE, False, 'reject frames whose header stamp is older than this against the '
        'node clock (0 = off; use_sim_time with bags)'),
    'reset_gap_s': NodeParameter(
        SEQUENCE_BREAK_GAP_S, DOUBLE, False, 'reset the LSTM state when consecutive frame stamps '
        'are further apart than this (s > 0; the gap training cuts sequences at); it also '
        'resets when time jumps back'),
    'route_command_timeout_s': NodeParameter(
        2.0, DOUBLE, False, 'a route/command holds this long after it arrived, s (> 0); none '
        'or an older one means follow-lane'),
}


def validate(name: str, value) -> str | None:
    """Return why `value` is not acceptable for parameter `name`, or None when it is."""
    if name == 'checkpoint' and not value:
        return 'checkpoint is required (path of a file written by `signattn train`)'
    if name == 'device' and not is_device_name(value):
        return f'device must be auto, cpu, cuda or cuda:N, got {value!r}'
    if name == 'precision' and value not in PRECISIONS:
        return (f'precision must be {", ".join(PRECISIONS[:-1])} or {PRECISIONS[-1]}, '
                f'got {value!r}')
    if name == 'input_transport' and value not in TRANSPORTS:
        return f'input_transport must be raw or compressed, got {value!r}'
    if name == 'input_reliability' and value not in RELIABILITIES:
        return f'input_reliability must be best_effort or reliable, got {value!r}'
    if name == 'input_depth' and value < 1:
        return f'input_depth must be >= 1, got {value}'
    if name in ('num_threads', 'max_input_pixels') and value < 0:
        return f'{name} must be >= 0, got {value}'
    if name in ('max_future_s', 'stale_input_s') and not (math.isfinite(value) and value >= 0):
        return f'{name} must be >= 0 (0 = off), got {value}'
    if name == 'max_drop_fraction' and not 0.0 <= value <= 1.0:
        return f'max_drop_fraction must be in [0, 1], got {value}'
    if name == 'attention_every_n' and value < 1:
        return f'attention_every_n must be >= 1, got {value}'
    if name == 'attention_alpha' and not 0.0 <= value <= 1.0:
        return f'attention_alpha must be in [0, 1], got {value}'
    if name == 'max_frame_age_s' and not (math.isfinite(value) and value >= 0.0):
        return f'max_frame_age_s must be >= 0 (0 = off), got {value}'
    if name == 'assumed_speed_mps' and not (math.isfinite(value) and value >= 0.0):
        return f'assumed_speed_mps must be >= 0, got {value}'
    if name in ('reset_gap_s', 'route_command_timeout_s') and not (
            math.isfinite(value) and value > 0.0):
        return f'{name} must be > 0, got {value}'
    if name == 'contribution_scale_per_m' and not (math.isfinite(value) and value >= 0.0):
        return f'contribution_scale_per_m must be >= 0 (0 = per frame), got {value}'
    return None   # `vehicle` is checked by loading it, once (check_updates)


def check_updates(params) -> tuple:
    """Validate a parameter update; return (why it is refused or None, loaded vehicle or None).

    Args:
        params: rclpy Parameters of one set_parameters call; all must pass for any to apply.
    """
    vehicle = None
    for param in params:
        if param.name in PARAMETERS:
            reason = validate(param.name, param.value)
            if reason:
                return reason, None
        if param.name == 'vehicle':   # loaded once here: the file may change in between
            try:
                vehicle = load_vehicle(param.value)
            except Exception as err:   # never let a profile file stop the node
                return f'vehicle {param.value!r}: {str(err).splitlines()[0]}', None
    return None, vehicle
