"""signattn_driver: steering with quantized sign-only attention (Tashiro & Awano 2023).

The core modules (model, quantization, preprocessing, vehicle, checkpoint, predictor, datasets,
training, explanation, metrics, udacity conversion) are plain torch/numpy/OpenCV and never
import rclpy; ROS glue lives in drive_node, image_conversion and bag replay.
"""

__version__ = '0.1.0'
