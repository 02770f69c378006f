"""`signattn view`: watch the running drive node in a browser (and, optionally, Foxglove)."""

import argparse
from dataclasses import fields

from signattn_driver.cli import CliError
from signattn_driver.viewer.config import ViewerConfig, ViewerError

# flag -> ViewerConfig field; every flag defaults to None and overrides only when given
FLAGS = {'host': str, 'port': int, 'foxglove_port': int, 'trace_s': float, 'jpeg_quality': int,
         'vehicle': str}


def register(subparsers):
    """Add the `view` subcommand."""
    defaults = ViewerConfig()
    parser = subparsers.add_parser(
        'view', help=f'watch the drive node live in a browser ({defaults.url})',
        description='Serves a local web page with the camera and attention overlay, the '
        'steering command (wheel and trace) and the node status from /diagnostics, at camera '
        'rate. Runs beside drive_node (same ROS_DOMAIN_ID); Ctrl-C stops. docs/viewer.md.')
    texts = {
        'host': f'address to listen on (default {defaults.host}; any other address lets '
                'others on the network see the camera, and is warned about)',
        'port': f'web page port (default {defaults.port})',
        'foxglove_port': f'Foxglove WebSocket port (default {defaults.foxglove_port})',
        'trace_s': f'steering trace length, s (default {defaults.trace_s:g})',
        'jpeg_quality': f'JPEG quality 1-100 (default {defaults.jpeg_quality})',
        'vehicle': f'vehicle profile for the steering-wheel angle (default {defaults.vehicle})',
    }
    for name, kind in FLAGS.items():
        parser.add_argument('--' + name.replace('_', '-'), type=kind, help=texts[name])
    parser.add_argument('--foxglove', action='store_true', default=None,
                        help='also serve the topics to the Foxglove app over the Foxglove '
                        f'WebSocket protocol (ws://{defaults.host}:{defaults.foxglove_port})')
    parser.add_argument('--ros-args', dest='ros_args', nargs=argparse.REMAINDER,
                        help='the rest goes to ROS, e.g. --ros-args -r '
                        'steering/command:=/car/steering/command')
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from signattn_driver.ros.viewer_node import run_viewer
    given = {f.name: getattr(args, f.name) for f in fields(ViewerConfig)
             if getattr(args, f.name, None) is not None}
    try:
        config = ViewerConfig(**given)
        ros_args = None if args.ros_args is None else ['--ros-args', *args.ros_args]
        return run_viewer(config, args=ros_args, announce=lambda line: print(line, flush=True))
    except ViewerError as err:
        raise CliError(str(err)) from err
