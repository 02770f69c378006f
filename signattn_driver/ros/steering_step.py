"""One camera image through the network for the drive node: preprocess, step, check the output.

`SteeringStep` wraps the node's Predictor: it times preprocessing and the network, copies back
only the maps the node will publish, moves to the CPU when CUDA runs out of memory, and turns
every failure into a frame_gate.Rejection instead of an exception. No rclpy import:
test/ros/test_steering_step.py drives it directly.
"""

from dataclasses import dataclass
import math
import time

import numpy as np
import torch

from signattn_driver.preprocessing import PreprocessingError
from signattn_driver.ros.frame_gate import Rejection

CUDA_FALLBACK_NOTE = 'fell back to the CPU after CUDA ran out of memory'


@dataclass(frozen=True)
class SteeringResult:
    """One frame's answer on the host.

    Attributes:
        u_per_m: inverse turning radius, 1/m (+ = left, REP-103).
        attention: (10, 20) float32 alpha summing to 1, or None when not asked for.
        contribution_per_m: (10, 20) float32 phi, signed, 1/m (u = bias + sum), or None.
    """

    u_per_m: float
    attention: np.ndarray | None = None
    contribution_per_m: np.ndarray | None = None


class SteeringStep:
    """Advance a Predictor one frame at a time on behalf of the node.

    Args:
        predictor: the loaded signattn_driver.predictor.Predictor (its LSTM state is used).
    """

    def __init__(self, predictor):
        self.predictor = predictor
        self.device_note = ''   # set when the network left its device (a CUDA fallback)

    def __call__(self, image: np.ndarray, color_order: str, times_ms: dict,
                 want_attention: bool = False, want_contribution: bool = False,
                 command: int | None = None) -> SteeringResult | Rejection:
        """Steer on one decoded image; return the result or why the frame is rejected.

        Args:
            image: (H, W, 3) uint8 camera image.
            color_order: 'bgr' or 'rgb'.
            times_ms: gets 'preprocess' and 'network' (ms; network includes reading u back).
            want_attention: copy alpha back to the host.
            want_contribution: copy phi back to the host.
            command: route command for command models (route_command.py); None = follow-lane.
        """
        try:
            prepared = time.perf_counter()
            x = self.predictor.preprocess(image, color_order)
            stepped = time.perf_counter()
            out = self.predictor.step_input(x, command)
            u = float(out.u[0])   # the one synchronisation per frame
            attention = out.alpha[0].float().cpu().numpy() if want_attention else None
            phi = out.contribution[0].float().cpu().numpy() if want_contribution else None
            times_ms['preprocess'] = (stepped - prepared) * 1e3
            times_ms['network'] = (time.perf_counter() - stepped) * 1e3
        except torch.cuda.OutOfMemoryError:
            self.predictor.to('cpu')
            self.device_note = CUDA_FALLBACK_NOTE
            return Rejection('cuda_oom', f'CUDA out of memory: {CUDA_FALLBACK_NOTE}')
        except PreprocessingError as err:
            return Rejection('corrupt', str(err))
        if not math.isfinite(u):
            return Rejection('non_finite_output', f'network output {u} (state kept)')
        return SteeringResult(u, attention, phi)
