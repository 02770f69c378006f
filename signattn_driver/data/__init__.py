"""Data: label math, LSTM sequence rule, datasets on disk, the ROS 2 bag layout."""
