"""The drive node as a ROS 2 managed (lifecycle) node: `drive_node --lifecycle`.

Same parameters, topics and callbacks as DriveNode (ros/drive_node.py), brought up by a
lifecycle manager (Nav2's, launch's `lifecycle:=true`, `ros2 lifecycle set`) instead of at
once:

- configure: read the parameters, load the vehicle and the checkpoint, create the publishers
  and the inference thread. A failure (missing checkpoint, unknown device, ...) leaves the node
  unconfigured; the reason is logged and /diagnostics reports it (ERROR).
- activate: subscribe to the camera (and the speed); commands are published from now on.
- deactivate: unsubscribe; once the transition returns, no command is published, not even
  for a frame that was being computed. The next activate starts a fresh LSTM state.
- cleanup: stop the inference thread, remove the publishers, free the network.
- shutdown: whatever is up is taken down.

/diagnostics and `~/reset_state` exist in every state (`state` says which).
"""

from rclpy.lifecycle import LifecycleNodeMixin, LifecycleState, TransitionCallbackReturn

from signattn_driver.ros.drive_node import DriveNode
from signattn_driver.ros.node_startup import NodeStartupError


class ManagedDriveNode(LifecycleNodeMixin, DriveNode):
    """DriveNode whose start and stop follow the managed-node state machine."""

    START_AT_ONCE = False

    def __init__(self, **kwargs):
        DriveNode.__init__(self, **kwargs)
        LifecycleNodeMixin.__init__(self)

    def _create_output(self, kind, topic: str):
        """Lifecycle publishers: enabled by activate, disabled by deactivate."""
        return self.create_lifecycle_publisher(kind, topic, 10)

    def destroy_publisher(self, publisher) -> bool:
        """Forget a lifecycle publisher as a managed entity too."""
        self._managed_entities.discard(publisher)
        return super().destroy_publisher(publisher)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the checkpoint and create the outputs; FAILURE (with the reason) leaves it."""
        try:
            self._start()
        except NodeStartupError as err:
            self.start_error = str(err)
            self.get_logger().error(f'configure failed: {err}')
            return TransitionCallbackReturn.FAILURE
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Enable the publishers, then subscribe."""
        result = super().on_activate(state)
        if result == TransitionCallbackReturn.SUCCESS:
            self._open_input()
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe and stop answering, then disable the publishers."""
        self._close_input()
        self.get_logger().info('deactivated: not steering')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the inference thread and free the network."""
        self._stop()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Take down whatever is up."""
        self._take_down()
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Take everything down after a transition raised; back to unconfigured."""
        self.get_logger().error(f'transition from {state.label} failed: back to unconfigured')
        self._take_down()
        return super().on_error(state)

    def _take_down(self):
        if self.active:
            self._close_input()
        if self.started:
            self._stop()
