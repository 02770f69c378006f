"""run_node: how the node process ends (signattn_driver/ros/node_startup.py)."""

import signal

import pytest

rclpy = pytest.importorskip('rclpy', reason='node_startup runs rclpy')
from signattn_driver.ros import node_startup  # noqa: E402


class _Node:
    destroyed = False

    def destroy_node(self):
        self.destroyed = True


def _run(monkeypatch, spin):
    """Run run_node with a stand-in node and spin; return (status, node)."""
    node = _Node()
    monkeypatch.setattr(node_startup, 'init_rclpy', lambda args: rclpy.init(args=[]))
    monkeypatch.setattr(node_startup.rclpy, 'spin', spin)
    return node_startup.run_node(lambda: node, []), node


@pytest.fixture
def domain(ros_domain_id):
    """Give the test a DDS domain of its own; restore SIGINT, which run_node ignores on exit."""
    handler = signal.getsignal(signal.SIGINT)
    yield ros_domain_id
    signal.signal(signal.SIGINT, handler)


def test_a_shutdown_racing_the_executor_is_a_clean_exit(monkeypatch, domain):
    # Ctrl-C's handler shut the context down while the executor built its next wait set
    def spin(node):
        rclpy.shutdown()
        raise RuntimeError('failed to initialize wait set: the given context is not valid')
    status, node = _run(monkeypatch, spin)
    assert status == 0 and node.destroyed and not rclpy.ok()


def test_an_error_while_the_context_is_up_still_raises(monkeypatch, domain):
    def spin(node):
        raise RuntimeError('a real failure')
    with pytest.raises(RuntimeError, match='a real failure'):
        _run(monkeypatch, spin)
    assert not rclpy.ok()      # shut down on the way out all the same
