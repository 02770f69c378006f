"""Vehicle geometry: the inverse turning radius (eq. 3) and vehicle profiles.

Label smoothing (eq. 2) lives with the other label math in signattn_driver.data.labels.

Sign convention (REP-103): positive steering-wheel angle and positive u both mean a left turn.
"""

from dataclasses import asdict, dataclass
import math
import numbers
from pathlib import Path

import numpy as np
import yaml

from signattn_driver.errors import ConfigError
from signattn_driver.paths import config_path


@dataclass(frozen=True)
class VehicleProfile:
    """Constants of eq. 3 for one vehicle (sources in config/vehicles/*.yaml)."""

    name: str
    wheelbase_m: float            # d_w
    steering_ratio: float         # K_s, steering-wheel angle / front-wheel angle
    slip_factor_s2_per_m2: float  # K_slip

    def __post_init__(self):
        """Reject profiles that would divide by zero, flip signs or carry inf/NaN."""
        for name in ('wheelbase_m', 'steering_ratio', 'slip_factor_s2_per_m2'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                    or not math.isfinite(value):
                raise ConfigError(f'vehicle profile {self.name!r}: {name} must be a finite '
                                  f'number, got {value!r}')
        if not (self.wheelbase_m > 0 and self.steering_ratio > 0
                and self.slip_factor_s2_per_m2 >= 0):
            raise ConfigError(f'vehicle profile {self.name!r}: wheelbase_m and steering_ratio '
                              f'must be > 0 and slip_factor_s2_per_m2 >= 0, got {self}')

    def to_dict(self) -> dict:
        """Plain dict for checkpoints, manifests and YAML."""
        return asdict(self)


def load_vehicle(name_or_path: str | Path = 'mkz') -> VehicleProfile:
    """Load a profile by name (config/vehicles/NAME.yaml) or from a YAML file path.

    Raises:
        FileNotFoundError: no such profile or file.
        ValueError: unreadable, not YAML, not a mapping of the profile's fields, or values out
            of range; the message is one line naming the file.
    """
    path = Path(name_or_path)
    if path.suffix not in ('.yaml', '.yml'):
        path = config_path('vehicles', f'{name_or_path}.yaml')
    if not path.is_file():
        raise FileNotFoundError(f'no vehicle profile {name_or_path!r} (looked for {path})')
    try:
        with open(path, encoding='utf-8') as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as err:
        mark = getattr(err, 'problem_mark', None)
        where = f' at line {mark.line + 1}, column {mark.column + 1}' if mark else ''
        problem = getattr(err, 'problem', None) or type(err).__name__
        raise ConfigError(f'{path}: not valid YAML ({problem}{where})') from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f'{path}: cannot be read ({err})') from err
    if not isinstance(data, dict):
        raise ConfigError(f'{path}: not a vehicle profile (expected a mapping with name, '
                          f'wheelbase_m, steering_ratio, slip_factor_s2_per_m2)')
    try:
        return VehicleProfile(**data)
    except TypeError as err:
        raise ConfigError(f'{path}: not a vehicle profile ({err})') from err


def inverse_radius_from_steering(steering_wheel_rad, speed_mps, profile: VehicleProfile):
    """Eq. 3: u = theta / (d_w K_s (1 + K_slip v^2)), in 1/m (+ = left). Works on arrays."""
    v = np.asarray(speed_mps, dtype=np.float64)
    denom = profile.wheelbase_m * profile.steering_ratio * (
        1.0 + profile.slip_factor_s2_per_m2 * v * v)
    return np.asarray(steering_wheel_rad, dtype=np.float64) / denom


def steering_from_inverse_radius(inverse_radius_per_m, speed_mps, profile: VehicleProfile):
    """Eq. 3 inverted: theta = u d_w K_s (1 + K_slip v^2), in rad. Works on arrays."""
    v = np.asarray(speed_mps, dtype=np.float64)
    return np.asarray(inverse_radius_per_m, dtype=np.float64) * profile.wheelbase_m * \
        profile.steering_ratio * (1.0 + profile.slip_factor_s2_per_m2 * v * v)


def front_wheel_angle_rad(inverse_radius_per_m, speed_mps, profile: VehicleProfile):
    """Eq. 3 for the front wheels: delta = theta / K_s = u d_w (1 + K_slip v^2), in rad.

    The angle the front wheels need for curvature u at speed v (+ = left); K_slip makes it
    grow with speed (understeer). At v = 0 it is the kinematic bicycle model's small-angle
    d_w u. Works on arrays.
    """
    return steering_from_inverse_radius(inverse_radius_per_m, speed_mps, profile) / \
        profile.steering_ratio


def steering_wheel_error_deg(u_pred_per_m, u_true_per_m, speed_mps, profile: VehicleProfile):
    """Steering-wheel angle error in deg of a predicted u against the true one (signed).

    Eq. 3 inverted at the frame's speed is linear in u, so the error is the angle of
    u_pred - u_true: the one steering-error measure of training validation, offline and live
    evaluation and the demo (+ = the prediction steers further left). Works on arrays.
    """
    error_per_m = np.subtract(u_pred_per_m, u_true_per_m, dtype=np.float64)
    return np.degrees(steering_from_inverse_radius(error_per_m, speed_mps, profile))
