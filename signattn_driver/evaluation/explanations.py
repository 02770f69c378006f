"""Saliency maps of one checkpoint: its own attention, Grad-CAM, LIME, and two floors.

Every method explains the prediction u_t of frame t given the LSTM state (h_{t-1}, c_{t-1})
carried from the previous *unmasked* frames, and returns maps (N, 80, 160) float32 on the CPU,
larger = more important. These full-resolution maps are what the deletion metric ranks.

    'attention'  the model's alpha_t (10x20), bilinearly upsampled to 80x160. The paper adds a
                 Gaussian blur "to soften the edges" (Sec. IV-B-2): `blur_for_display` does that
                 for figures only; ranking uses the unblurred upsampled map.
    'gradcam'    Captum's LayerGradCam on the last convolution (encoder.convs[-1]) for the scalar
                 u. The channel-weighted sum sum_k w_k A^k is taken in absolute value instead of
                 Grad-CAM's ReLU: for a regression output, regions that push u either way matter.
    'lime'       lime_image.LimeImageExplainer on the regression output: classifier_fn returns
                 [u / output_scale] (one column) and LIME explains label 0 with its weighted
                 ridge model; the importance of a superpixel is |weight|. SLIC superpixels are
                 computed on the RGB view of the HSV frame (a regular grid when SLIC finds
                 almost no regions, e.g. on noise). Switched-off superpixels take LIME's own
                 default (`lime_hide` 'superpixel_mean': each superpixel's mean colour), or the
                 image mean, never the deletion fill unless asked ('black'): a LIME fitted to
                 the metric's own perturbation would be favoured by it. Sampling is seeded.
    'random'     uniform noise at 10x20, upsampled like attention (a floor with the same
                 granularity as attention and Grad-CAM), seeded per call.
    'random_superpixels'  one uniform random value per superpixel of LIME's segmentation (a
                 floor at LIME's granularity: coarser rankings move the deletion curve
                 differently, whatever the map says).
    'center'     a centred Gaussian prior (sigma = 1/4 of each side).
    'contribution'  |phi|, the exact contribution map of the frame to u_t (model.explain_step),
                 upsampled like attention: the reference the other maps are judged against
                 (contribution_agreement), and its own deletion curve.

A model is anything with `step(frames (B, 3, 80, 160), state) -> (u (B,), alpha (B, 10, 20) or
None, state)` (SteeringNet.step); Grad-CAM also needs its last convolution (`layer`).
A route-command model explains each frame under its own command: `commands` (N,) long, one per
frame (evaluation.route_commands), is passed on as step's third argument; None (camera-only
models) keeps the two-argument call, and a command model given None runs under follow-lane.
"""

from contextlib import contextmanager
from dataclasses import dataclass
import logging
import time

import numpy as np
import torch
import torch.nn.functional as F

from signattn_driver.attention_overlay import BLUR_SIGMA_CELLS
from signattn_driver.errors import EvaluationError
from signattn_driver.model import INPUT_HEIGHT, INPUT_WIDTH, MAP_HEIGHT, MAP_WIDTH
from signattn_driver.evaluation.route_commands import step_with
from signattn_driver.preprocessing import hsv_u8_to_input

LOG = logging.getLogger(__name__)
METHODS = ('attention', 'gradcam', 'lime', 'random', 'random_superpixels', 'center',
           'contribution')
LIME_HIDES = ('superpixel_mean', 'image_mean', 'black')


class ExplanationError(EvaluationError):
    """A saliency method that cannot run on this model or input."""


@dataclass
class ExplainConfig:
    """Parameters of the sampling and prior methods."""

    lime_samples: int = 1000      # perturbed images per frame (LIME's default)
    lime_segments: int = 50       # SLIC superpixels requested on the 80x160 frame
    lime_compactness: float = 10.0
    lime_batch: int = 250         # perturbed images per forward pass
    # What switched-off superpixels become: LIME's own default ('superpixel_mean'), the frame's
    # mean colour ('image_mean'), or 'black' (the deletion metric's default fill; biased).
    lime_hide: str = 'superpixel_mean'
    seed: int = 0                 # LIME sampling and the random floor
    center_sigma: float = 0.25    # of height and width

    def __post_init__(self):
        """Reject an unknown LIME hide colour."""
        if self.lime_hide not in LIME_HIDES:
            raise ExplanationError(f'lime_hide must be one of {LIME_HIDES}, '
                                   f'got {self.lime_hide!r}')


State = tuple | None


def index_state(state: State, index: torch.Tensor) -> State:
    """Select/repeat rows of an LSTM state (tuple of (B, ...) tensors) along the batch axis."""
    if state is None:
        return None
    return tuple(s.index_select(0, index.to(s.device)) for s in state)


def expand_state(state: State, n: int) -> State:
    """Repeat a batch-1 state to batch n (None stays None)."""
    if state is None:
        return None
    return tuple(s.expand(n, *s.shape[1:]) for s in state)


def _step_fn(model):
    return model.step if hasattr(model, 'step') else model


def upsample(maps: torch.Tensor) -> torch.Tensor:
    """Bilinear upsampling of maps (N, h, w) to (N, 80, 160)."""
    out = F.interpolate(maps[:, None].float(), size=(INPUT_HEIGHT, INPUT_WIDTH), mode='bilinear',
                        align_corners=False)
    return out[:, 0]


def blur_for_display(maps: np.ndarray, sigma_px: float | None = None) -> np.ndarray:
    """Gaussian blur of maps (N, H, W) or (H, W) for figures (paper Fig. 4); not for ranking.

    The default sigma is the node's overlay blur (attention_overlay.BLUR_SIGMA_CELLS cells of
    the 10x20 map), so figures and the live `attention` topic look alike.
    """
    import cv2
    arr = np.asarray(maps, np.float32)
    if sigma_px is None:
        sigma_px = BLUR_SIGMA_CELLS * arr.shape[-1] / MAP_WIDTH
    flat = arr.reshape(-1, *arr.shape[-2:])
    out = np.stack([cv2.GaussianBlur(m, (0, 0), sigma_px) for m in flat])
    return out.reshape(arr.shape)


def attention_maps(model, inputs: torch.Tensor, state: State,
                   commands: torch.Tensor | None = None) -> torch.Tensor:
    """Return the model's own alpha_t for inputs (N, 3, 80, 160) -> (N, 80, 160)."""
    with torch.inference_mode():
        _, alpha, _ = step_with(_step_fn(model), inputs, state, commands)
    if alpha is None:
        raise ExplanationError('this model returns no attention map')
    return upsample(alpha.reshape(-1, MAP_HEIGHT, MAP_WIDTH)).cpu()


def contribution_maps(model, inputs: torch.Tensor, state: State,
                      commands: torch.Tensor | None = None) -> torch.Tensor:
    """Return |phi_t| (model.explain_step) for inputs (N, 3, 80, 160) -> (N, 80, 160)."""
    if not hasattr(model, 'explain_step'):
        raise ExplanationError('contribution needs a SteeringNet (explain_step)')
    with torch.inference_mode():
        phi = model.explain_step(inputs, state, commands).contribution
    return upsample(phi.abs()).cpu()


def gradcam_maps(model, inputs: torch.Tensor, state: State, layer=None,
                 commands: torch.Tensor | None = None) -> torch.Tensor:
    """|Grad-CAM| of u on `layer` (default: model.encoder.convs[-1]) -> (N, 80, 160)."""
    from captum.attr import LayerGradCam
    if layer is None:
        try:
            layer = model.encoder.convs[-1]
        except AttributeError as err:
            raise ExplanationError('gradcam needs the last convolution: pass layer=') from err
    step = _step_fn(model)

    def forward(x):
        # Detached state: the explanation is of frame t alone, as for the other methods.
        return step_with(step, x, state, commands)[0]

    with torch.inference_mode(False), torch.enable_grad():
        x = inputs.detach().clone().requires_grad_(True)
        if state is not None:
            state = tuple(s.detach().clone() for s in state)
        cam = LayerGradCam(forward, layer).attribute(x, relu_attributions=False)
    return upsample(cam.detach().abs()[:, 0]).cpu()


@contextmanager
def _quiet_lime():
    """Silence lime_image's per-sample tqdm bar (it offers no switch in lime 0.2.0.1)."""
    from lime import lime_image
    saved = lime_image.tqdm
    lime_image.tqdm = lambda iterable, *a, **k: iterable
    try:
        yield
    finally:
        lime_image.tqdm = saved


def lime_maps(model, hsv_u8: np.ndarray, state: State, config: ExplainConfig = ExplainConfig(),
              output_scale: float = 0.01, device=None,
              commands: torch.Tensor | None = None) -> torch.Tensor:
    """LIME importance |w| per SLIC superpixel for frames (N, 80, 160, 3) uint8 HSV.

    Args:
        model: step interface (see module docstring).
        hsv_u8: (N, 80, 160, 3) uint8 HSV frames (the dataset's stored form).
        state: state for the N frames (tuple of (N, ...) tensors) or None.
        config: sample count, superpixels and seed.
        output_scale: u is divided by this before the ridge fit, keeping LIME's default
            regularisation meaningful for outputs of order 1e-2 1/m.
        device: where perturbed batches run (default: the state's device, else CPU).
        commands: (N,) route command of each frame (its perturbed images run under it), or
            None.

    Returns:
        (N, 80, 160) float32 maps on the CPU.
    """
    from lime import lime_image

    step = _step_fn(model)
    if device is None:
        device = state[0].device if state is not None else torch.device('cpu')
    maps = []
    for i, frame in enumerate(np.asarray(hsv_u8)):
        row = None if state is None else tuple(s[i:i + 1] for s in state)
        command = None if commands is None else commands[i:i + 1].to(device)

        def classifier_fn(images, row=row, command=command):
            x = hsv_u8_to_input(torch.from_numpy(np.ascontiguousarray(images)).to(device))
            with torch.inference_mode():
                u = step_with(step, x, expand_state(row, len(x)), command)[0]
            return (u.float() / output_scale).cpu().numpy()[:, None]

        def segment(image):
            return lime_segmentation(image, config)

        explainer = lime_image.LimeImageExplainer(random_state=config.seed)
        hide = _hide(frame, config)
        with _quiet_lime():
            exp = explainer.explain_instance(
                frame, classifier_fn, labels=(0,), top_labels=None, hide_color=hide,
                num_features=10 ** 6, num_samples=config.lime_samples,
                batch_size=config.lime_batch, segmentation_fn=segment,
                random_seed=config.seed)
        weights = np.zeros(int(exp.segments.max()) + 1, np.float32)
        for segment_id, w in exp.local_exp[0]:
            weights[segment_id] = abs(w)
        maps.append(weights[exp.segments])
    return torch.from_numpy(np.stack(maps)).float()


def _hide(frame: np.ndarray, config: ExplainConfig):
    """Return LIME's hide_color: None (its own per-superpixel mean) or a uint8 HSV colour."""
    if config.lime_hide == 'superpixel_mean':
        return None
    if config.lime_hide == 'image_mean':
        return frame.reshape(-1, 3).mean(0).round().astype(np.uint8)
    return 0                                   # HSV (0, 0, 0): the 'black' deletion fill


def lime_segmentation(hsv_u8: np.ndarray, config: ExplainConfig = ExplainConfig()):
    """SLIC superpixels of one (80, 160, 3) uint8 HSV frame, on its RGB view: (80, 160) int.

    Falls back to a regular grid of about `lime_segments` cells when SLIC finds almost no
    regions (texture-less or pure-noise frames).
    """
    import cv2
    from skimage.segmentation import slic
    rgb = cv2.cvtColor(np.ascontiguousarray(hsv_u8), cv2.COLOR_HSV2RGB)
    seg = slic(rgb, n_segments=config.lime_segments, compactness=config.lime_compactness,
               start_label=0)
    if seg.max() + 1 < max(2, config.lime_segments // 4):
        seg = grid_segments(config.lime_segments)
    return seg


def random_superpixel_maps(hsv_u8: np.ndarray, config: ExplainConfig = ExplainConfig(),
                           seed: int = 0) -> torch.Tensor:
    """One seeded uniform value per superpixel of LIME's segmentation: (N, 80, 160)."""
    rng = np.random.default_rng(seed)
    maps = []
    for frame in np.asarray(hsv_u8):
        seg = lime_segmentation(frame, config)
        maps.append(rng.random(int(seg.max()) + 1).astype(np.float32)[seg])
    return torch.from_numpy(np.stack(maps))


def grid_segments(n_segments: int) -> np.ndarray:
    """Regular grid of about n_segments cells over 80x160: (80, 160) int labels from 0."""
    rows = max(1, int(round(np.sqrt(n_segments * INPUT_HEIGHT / INPUT_WIDTH))))
    cols = max(1, int(round(n_segments / rows)))
    r = np.arange(INPUT_HEIGHT) * rows // INPUT_HEIGHT
    c = np.arange(INPUT_WIDTH) * cols // INPUT_WIDTH
    return (r[:, None] * cols + c[None]).astype(np.int64)


def random_maps(n: int, seed: int = 0) -> torch.Tensor:
    """Seeded uniform noise at 10x20, upsampled: (n, 80, 160)."""
    g = torch.Generator().manual_seed(seed)
    return upsample(torch.rand(n, MAP_HEIGHT, MAP_WIDTH, generator=g))


def center_maps(n: int, sigma: float = 0.25) -> torch.Tensor:
    """Centred Gaussian prior, sigma a fraction of each side: (n, 80, 160)."""
    y = (torch.arange(INPUT_HEIGHT) + 0.5) / INPUT_HEIGHT - 0.5
    x = (torch.arange(INPUT_WIDTH) + 0.5) / INPUT_WIDTH - 0.5
    g = torch.exp(-(y[:, None] ** 2 + x[None] ** 2) / (2 * sigma ** 2))
    return g.expand(n, -1, -1).clone()


def compute_maps(method: str, model, inputs: torch.Tensor, state: State,
                 hsv_u8: np.ndarray | None = None, config: ExplainConfig = ExplainConfig(),
                 seed_offset: int = 0, commands: torch.Tensor | None = None):
    """Compute one method's maps for a batch of frames, and time it.

    Args:
        method: one of METHODS.
        model: step interface; SteeringNet for 'attention' and 'gradcam'.
        inputs: (N, 3, 80, 160) network input on the model's device.
        state: LSTM state before these frames (tuple of (N, ...) tensors) or None.
        hsv_u8: (N, 80, 160, 3) uint8 HSV frames; needed by 'lime', 'random_superpixels'.
        config: ExplainConfig.
        seed_offset: added to the seed of 'random' so that batches differ.
        commands: (N,) long route command of each frame for a command model, or None
            (see the module docstring); the floors ('random', 'center', ...) ignore it.

    Returns:
        (maps (N, 80, 160) float32 CPU tensor, seconds) where seconds covers the whole batch
        (device synchronised before and after).
    """
    if method not in METHODS:
        raise ExplanationError(f'unknown method {method!r}; choose from {METHODS}')
    n = len(inputs)
    sync = torch.cuda.synchronize if inputs.is_cuda else (lambda: None)
    sync()
    t0 = time.perf_counter()
    if method == 'attention':
        maps = attention_maps(model, inputs, state, commands)
    elif method == 'gradcam':
        maps = gradcam_maps(model, inputs, state, commands=commands)
    elif method == 'lime':
        if hsv_u8 is None:
            raise ExplanationError('lime needs the uint8 HSV frames (hsv_u8=)')
        scale = getattr(getattr(model, 'config', None), 'output_scale', 0.01)
        maps = lime_maps(model, hsv_u8, state, config, output_scale=scale, device=inputs.device,
                         commands=commands)
    elif method == 'contribution':
        maps = contribution_maps(model, inputs, state, commands)
    elif method == 'random':
        maps = random_maps(n, config.seed + seed_offset)
    elif method == 'random_superpixels':
        if hsv_u8 is None:
            raise ExplanationError('random_superpixels needs the uint8 HSV frames (hsv_u8=)')
        maps = random_superpixel_maps(hsv_u8, config, config.seed + seed_offset)
    else:
        maps = center_maps(n, config.center_sigma)
    sync()
    return maps, time.perf_counter() - t0


def mass_inside(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Share of each map's (non-negative) mass inside a binary mask; maps, masks (N, H, W)."""
    m = maps.clamp_min(0).flatten(1).double()
    inside = (m * (masks.flatten(1) > 0).double()).sum(1)
    total = m.sum(1)
    return torch.where(total > 0, inside / total.clamp_min(1e-300),
                       torch.full_like(total, float('nan')))
