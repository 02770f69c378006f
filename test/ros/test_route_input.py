"""The drive node's route command input (ros/route_input.py), with a fake clock."""

from signattn_driver.route_command import FOLLOW_LANE, LEFT, RIGHT
from signattn_driver.ros.route_input import RouteInput, RouteState


def test_no_command_is_follow_lane():
    route = RouteInput(timeout_s=2.0)
    assert route.state(5.0) == RouteState(FOLLOW_LANE, 'none')
    assert route.state(5.0).describe() == 'follow_lane (no command received)'


def test_a_command_holds_for_timeout_s_then_expires_to_follow_lane():
    route = RouteInput(timeout_s=2.0)
    assert route.receive(LEFT, now_s=10.0) is None
    assert route.state(10.5) == RouteState(LEFT, 'topic', 0.5)
    assert route.state(10.5).describe() == 'left (topic, 0.5 s old)'
    assert route.state(12.0).command == LEFT                 # exactly timeout_s: still holds
    expired = route.state(12.5)
    assert expired == RouteState(FOLLOW_LANE, 'expired', 2.5)
    assert expired.describe() == 'follow_lane (the last command is 2.5 s old: expired)'
    route.receive(RIGHT, now_s=13.0)                          # a new one restarts the clock
    assert route.state(14.0).command == RIGHT


def test_an_invalid_value_is_counted_refused_and_forgets_the_last_command():
    route = RouteInput(timeout_s=2.0)
    route.receive(LEFT, now_s=0.0)
    note = route.receive(7, now_s=0.5)
    assert note.startswith('route/command refused (follow-lane until a valid one): route '
                           'command must be 0..3') and route.invalid == 1
    assert route.state(0.6) == RouteState(FOLLOW_LANE, 'none')


def test_a_checkpoint_without_commands_ignores_them():
    route = RouteInput(timeout_s=2.0, used=False)
    assert route.receive(LEFT, now_s=0.0).startswith('route/command ignored: the checkpoint')
    assert route.receive(LEFT, now_s=0.1) is None                 # said once
    assert route.state(0.1) == RouteState(FOLLOW_LANE, 'ignored')
    assert route.state(0.1).describe() == 'follow_lane (the checkpoint takes no route command)'


def test_the_startup_line_says_what_the_checkpoint_expects_on_route_command():
    from signattn_driver.ros.route_input import expected_commands
    per_exit = {'route_commands': {'roundabout_commands': 'per_exit'}}
    assert expected_commands(0, per_exit) == 'route/command ignored (camera-only checkpoint)'
    assert 'roundabouts told per_exit' in expected_commands(4, per_exit)
    assert 'roundabout scheme not recorded' in expected_commands(4, {})
