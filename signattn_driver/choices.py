"""Allowed values of user-facing settings, defined once and free of torch and rclpy.

The node's parameters, the CLI's flags, the predictor and the launch file (which should start
fast, so it cannot import torch) all read them from here.
"""

PRECISIONS = ('fp32', 'bf16', 'int8')      # Predictor: fp32, bf16 autocast, int8 (CPU only)
TRANSPORTS = ('raw', 'compressed')          # camera input: sensor_msgs/Image or CompressedImage
RELIABILITY_NAMES = ('best_effort', 'reliable')   # camera subscription QoS reliability
# What a device setting may say (flags, node parameters, configs); N is a GPU index.
DEVICE_NAMES = ('auto', 'cpu', 'cuda', 'cuda:N')
DEVICE_HELP = 'auto (CUDA when present), cpu, cuda or cuda:N'


def is_device_name(device: str) -> bool:
    """Return whether `device` is spelled as DEVICE_NAMES allow (hardware not checked)."""
    return device in ('auto', 'cpu', 'cuda') or (
        device.startswith('cuda:') and device[len('cuda:'):].isdigit())
