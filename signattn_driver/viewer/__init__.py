"""The live view of a running drive node: a local web page and a Foxglove WebSocket server.

Pure asyncio/numpy/OpenCV, no rclpy: `ros/viewer_node.py` subscribes to the node's topics and
hands plain values (JPEG frames, commands, status) to a `StreamHub` (hub.py); the web server
(server.py, page under static/) and the Foxglove bridge (foxglove_bridge.py) read from it.
Defaults live in `ViewerConfig` (config.py); how to use it: docs/viewer.md.
"""
