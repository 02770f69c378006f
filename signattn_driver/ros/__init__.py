"""ROS 2 glue: the only modules of this package that import rclpy."""
