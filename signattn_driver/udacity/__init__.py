"""Conversion of the Udacity self-driving-car ROS 1 bags into ROS 2 bags and datasets."""
