"""Every core module imports with rclpy absent (the core never needs ROS)."""

import subprocess
import sys

CORE = ['metadrive_adapter', 'simulation', 'closed_loop',
        'model', 'quantization', 'preprocessing', 'vehicle', 'checkpoint', 'predictor',
        'dataset', 'bag_layout', 'sequences', 'training_config', 'training',
        'udacity', 'udacity_fixtures',
        'explanation', 'deletion', 'stats', 'evaluation', 'report', 'sweep',
        'device', 'paths', 'attention_overlay', 'bag_dataset']


def test_core_modules_import_without_rclpy():
    code = ("import sys\n"
            "for name in ('rclpy', 'sensor_msgs', 'std_msgs', 'rosbag2_py', 'cv_bridge'):\n"
            "    sys.modules[name] = None\n"
            + ''.join(f'import signattn_driver.{m}\n' for m in CORE))
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
