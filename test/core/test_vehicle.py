"""Eq. 3 (inverse turning radius) and vehicle profiles against hand-computed values."""

import numpy as np
import pytest

from signattn_driver.vehicle import (front_wheel_angle_rad, inverse_radius_from_steering,
                                     load_vehicle, steering_from_inverse_radius,
                                     VehicleProfile)


def test_mkz_profile_values():
    mkz = load_vehicle('mkz')
    assert (mkz.wheelbase_m, mkz.steering_ratio, mkz.slip_factor_s2_per_m2) == \
        (2.8498, 16.0, 0.0014)


def test_equation_3_by_hand():
    mkz = load_vehicle('mkz')
    # 0.5 rad at 10 m/s: 0.5 / (2.8498 * 16 * (1 + 0.0014 * 100)) = 0.5 / 51.98035...
    assert inverse_radius_from_steering(0.5, 10.0, mkz) == pytest.approx(0.5 / 51.9803520)
    assert inverse_radius_from_steering(-0.5, 0.0, mkz) == pytest.approx(-0.5 / 45.5968)


def test_equation_3_round_trip_on_arrays():
    mkz = load_vehicle('mkz')
    theta = np.linspace(-6, 6, 13)
    v = np.linspace(0, 30, 13)
    u = inverse_radius_from_steering(theta, v, mkz)
    assert np.allclose(steering_from_inverse_radius(u, v, mkz), theta)
    assert np.all(np.sign(u) == np.sign(theta))


def test_front_wheel_angle_is_equation_3_over_the_steering_ratio():
    mkz = load_vehicle('mkz')
    # 0.1 1/m at 0 m/s: 0.1 * 2.8498 = 0.28498 rad; at 10 m/s: * (1 + 0.0014 * 100) = 0.3248772
    assert front_wheel_angle_rad(0.1, 0.0, mkz) == pytest.approx(0.28498)
    assert front_wheel_angle_rad(0.1, 10.0, mkz) == pytest.approx(0.3248772)
    assert front_wheel_angle_rad(-0.1, 10.0, mkz) == pytest.approx(-0.3248772)
    # the wheel angle times K_s is eq. 3's steering-wheel angle, at every speed
    u, v = np.array([0.02, -0.05]), np.array([5.0, 25.0])
    assert np.allclose(front_wheel_angle_rad(u, v, mkz) * mkz.steering_ratio,
                       steering_from_inverse_radius(u, v, mkz))


def test_profile_from_file_and_errors(tmp_path):
    p = tmp_path / 'car.yaml'
    p.write_text('name: car\nwheelbase_m: 2.5\nsteering_ratio: 15\nslip_factor_s2_per_m2: 0\n')
    assert load_vehicle(p) == VehicleProfile('car', 2.5, 15.0, 0.0)
    with pytest.raises(FileNotFoundError):
        load_vehicle('no_such_car')
    with pytest.raises(ValueError):
        VehicleProfile('bad', 0.0, 16.0, 0.0)


@pytest.mark.parametrize('text, reason', [
    ('name: bad\nwheelbase_m: [1, 2\n', 'not valid YAML'),
    ('name: bad\n  wheelbase_m: 2.8\n: :\n', 'not valid YAML'),
    ('- just\n- a list\n', 'not a vehicle profile'),
    ('name: car\nwheelbase_m: 2.5\n', 'not a vehicle profile'),
    ('name: car\nwheelbase_m: .inf\nsteering_ratio: 15\nslip_factor_s2_per_m2: 0\n',
     'wheelbase_m must be a finite number, got inf'),
    ('name: car\nwheelbase_m: .nan\nsteering_ratio: 15\nslip_factor_s2_per_m2: 0\n',
     'wheelbase_m must be a finite number'),
    ('name: car\nwheelbase_m: -2.5\nsteering_ratio: 15\nslip_factor_s2_per_m2: 0\n',
     'must be > 0'),
    ('name: car\nwheelbase_m: long\nsteering_ratio: 15\nslip_factor_s2_per_m2: 0\n',
     "wheelbase_m must be a finite number, got 'long'"),
    ('name: car\nwheelbase_m: 2.5\nsteering_ratio: 15\nslip_factor_s2_per_m2: .inf\n',
     'slip_factor_s2_per_m2 must be a finite number'),
])
def test_malformed_profiles_are_one_line_value_errors(tmp_path, text, reason):
    path = tmp_path / 'bad.yaml'
    path.write_text(text)
    with pytest.raises(ValueError, match=reason) as info:
        load_vehicle(path)
    assert '\n' not in str(info.value)
