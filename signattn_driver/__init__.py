"""signattn_driver: steering with quantized sign-only attention (Tashiro & Awano 2023).

Folders by concern:

- the core at the top (model, quantization, preprocessing, vehicle, checkpoint, predictor,
  device, paths, attention_overlay): plain torch/numpy/OpenCV;
- data/: label math (labels: stamps, interpolation, eq. 2), the LSTM sequence rule
  (sequence_rule), datasets on disk, sequences and splits, the ROS 2 bag layout, bag -> dataset;
- udacity/: conversion of the Udacity CH2 data (sources, ROS 1 decoding, sink, one exception
  tree, orchestration);
- training/: config, data preparation, epoch plan, augmentation, distributed, run folders,
  validation, the loop;
- evaluation/: explanation methods, deletion/insertion, statistics, reports, sweeps;
- sim/: the MetaDrive adapter, lane masks, recording, closed loop (optional extra);
- ros/: the only modules that import rclpy: drive node, node process, image conversion,
  replay, live evaluation, the demo, the simulator's ROS controller;
- cli/: the one `signattn` command.

Nothing outside ros/ and cli/ imports rclpy (test/lint/test_core_imports.py).
"""

__version__ = '0.1.0'
