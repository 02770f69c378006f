"""What the drive node publishes for each steered frame: the command in three forms, the maps.

`DriveOutputs` owns the per-frame publishers (plain or lifecycle ones, as the node creates
them) and turns one SteeringResult into messages: `steering/command` (Vector3Stamped, camera
header), `steering/inverse_turning_radius` (Float32), `steering/ackermann` (where
ackermann_msgs is installed), and, when the result carries them, `attention` and
`attention/contribution` (bgr8 overlays or raw 32FC1 maps). Topics: docs/node.md.
"""

import numpy as np

from geometry_msgs.msg import Vector3Stamped
from sensor_msgs.msg import Image
from std_msgs.msg import Float32

from signattn_driver.attention_overlay import attention_overlay
from signattn_driver.contribution_overlay import contribution_overlay, contribution_scale_per_m
from signattn_driver.ros.image_conversion import array_to_image_msg
from signattn_driver.ros.node_health import FrameCounters
from signattn_driver.ros.steering_step import SteeringResult
from signattn_driver.vehicle import front_wheel_angle_rad

try:  # optional: ros-<distro>-ackermann-msgs
    from ackermann_msgs.msg import AckermannDriveStamped
except ImportError:
    AckermannDriveStamped = None


class DriveOutputs:
    """The per-frame publishers of the drive node.

    Args:
        create: `create(msg_type, topic)` -> publisher (the node's plain or lifecycle kind).
    """

    def __init__(self, create):
        self.radius = create(Float32, 'steering/inverse_turning_radius')
        self.command = create(Vector3Stamped, 'steering/command')
        self.ackermann = (create(AckermannDriveStamped, 'steering/ackermann')
                          if AckermannDriveStamped else None)
        self.attention = create(Image, 'attention')
        self.contribution = create(Image, 'attention/contribution')
        self.contribution_scale_per_m = 0.0   # of the last contribution overlay, 1/m

    def publishers(self) -> list:
        """Return every publisher this object created."""
        return [p for p in (self.radius, self.command, self.ackermann, self.attention,
                            self.contribution) if p is not None]

    def publish(self, header, result: SteeringResult, image_bgr: np.ndarray, settings: dict,
                vehicle, speed_mps: float, counters: FrameCounters):
        """Publish one frame's answer.

        Args:
            header: the camera frame's header (stamp and frame_id of every output).
            result: the network's answer (maps only where they were asked for).
            image_bgr: (H, W, 3) uint8 BGR camera image for the overlays.
            settings: the node's parameter values (raw or overlay, alpha, scale).
            vehicle: vehicle profile for the Ackermann angle.
            speed_mps: speed for the Ackermann angle, m/s.
            counters: gets attention_published / contribution_published.
        """
        u = result.u_per_m
        command = Vector3Stamped()
        command.header = header
        command.vector.x = u
        self.command.publish(command)
        self.radius.publish(Float32(data=u))
        if self.ackermann is not None:
            ackermann = AckermannDriveStamped()
            ackermann.header = header
            # speed / acceleration / jerk stay 0: the network commands steering only
            ackermann.drive.steering_angle = float(front_wheel_angle_rad(u, speed_mps, vehicle))
            self.ackermann.publish(ackermann)
        if result.attention is not None:
            alpha = result.attention
            self.attention.publish(
                array_to_image_msg(alpha.astype(np.float32), '32FC1', header)
                if settings['attention_raw'] else array_to_image_msg(
                    attention_overlay(image_bgr, alpha, settings['attention_alpha']), 'bgr8',
                    header))
            counters.frames['attention_published'] += 1
        phi = result.contribution_per_m
        if phi is not None:
            self.contribution_scale_per_m = scale = contribution_scale_per_m(
                phi, settings['contribution_scale_per_m'])
            self.contribution.publish(
                array_to_image_msg(phi.astype(np.float32), '32FC1', header)
                if settings['contribution_raw'] else array_to_image_msg(
                    contribution_overlay(image_bgr, phi, scale, settings['attention_alpha']),
                    'bgr8', header))
            counters.frames['contribution_published'] += 1
