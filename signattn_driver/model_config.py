"""Hyper-parameters of SteeringNet (model.py) and the fixed sizes of its input and map.

Pure Python: configs are built, checked and stored (checkpoints, run folders, YAML) without
building a network. model.py re-exports every name, so `from signattn_driver.model import
ModelConfig` keeps working.
"""

from dataclasses import asdict, dataclass
import math

from signattn_driver.quantization import MAX_BITS, MIN_BITS
from signattn_driver.route_command import ROUTE_COMMANDS

INPUT_HEIGHT = 80
INPUT_WIDTH = 160
MAP_HEIGHT = 10
MAP_WIDTH = 20
NUM_LOCATIONS = MAP_HEIGHT * MAP_WIDTH  # L = 200
FEATURE_CHANNELS = 64                   # C of conv5
ATTENTIONS = ('sign', 'soft', 'none')
# 'deterministic' (the paper) and 'stochastic' (Hubara et al., training only) leave alpha inert
# at inference; 'mean_field' and 'gated' make it act (see SteeringNet.sign_path).
BINARIZERS = ('deterministic', 'stochastic', 'mean_field', 'gated')
# 'learned': the paper's score w . tanh(W_g x_ij + W_d h_{t-1}) + b (eq. 11). 'head': the log of
# the head's own sensitivity to each cell, |phi| at uniform attention (SteeringNet._head_score).
# 'both': their sum, alpha proportional to exp(learned score) x |phi at uniform attention|.
ATTENTION_SCORES = ('learned', 'head', 'both')
# What the LSTM reads each step. 'attended' (the paper): X^_t, the features as alpha shaped
# them. 'uniform': the same features at alpha = 1/L, so the memory sees every cell whatever the
# attention silenced; u_t still reads the attended X^_t, so phi is unchanged and exact.
MEMORY_INPUTS = ('attended', 'uniform')


@dataclass
class ModelConfig:
    """Hyper-parameters of SteeringNet; defaults are the paper's."""

    attention: str = 'sign'          # 'sign' (proposed), 'soft' (Kim & Canny), 'none'
    quant_bits: int = 10             # amplitude path width, n = 2**bits levels (Sec. IV-C)
    # Range [a, b] of Q. Softplus output is > 0; the paper does not state b. conv5 activations
    # seldom exceed 4 after training, and a wider range wastes levels at low bit widths.
    quant_range: tuple[float, float] = (0.0, 4.0)
    temperature: float = 1.0         # spatial softmax temperature T (eq. 15)
    lstm_hidden: int = 1024
    attention_hidden: int = 64       # Fig. 3: Linear(64, 64) + Linear(1024, 64)
    dropout: float = 0.5
    binarize: str = 'deterministic'  # BINARIZERS; the default is the paper's eq. 4
    # kappa of 'mean_field': the sign path sees z = kappa * L * alpha * x. L * alpha is 1 for
    # uniform attention, so kappa sets how much of conv5's range stays inside hardtanh's linear
    # part (|z| < 1). With kappa = 1 and x of order 1 about half of the signs saturate at
    # initialisation; `signattn evaluate` reports the saturated share (sign_saturation).
    sign_kappa: float = 1.0
    # u is O(1e-3..1e-1) 1/m. The head predicts u / output_scale so that Xavier-initialised
    # weights start at the label's magnitude instead of ~100x too large.
    output_scale: float = 0.01
    # 0: camera only. len(ROUTE_COMMANDS) (4): conditioned on the navigator's route command
    # (route_command.py) by one output branch per command plus a per-command bias inside the
    # attention score and the output gate. u stays linear in X^_t, so phi stays exact.
    num_commands: int = 0
    # A learned bias (one per map cell, 200 values, zero at the start) added to the attention
    # score before the softmax. Without it the score is the same function of x_ij at every
    # cell, while phi weighs each cell with its own head weights W_beta[l, :]; the bias lets
    # alpha learn where the head listens (docs/model.md, "A per-cell attention bias").
    attention_position_bias: bool = False
    # ATTENTION_SCORES. 'head': alpha = softmax((log(|phi at alpha = 1/L| + eps) + p) / T), the
    # cells the output head draws on at this state and command, before alpha acts; alpha then
    # scales the sign path as in 'learned'. The learned score's weights stay in the model,
    # unused, so checkpoints of either kind load into the other (docs/model.md, "A score read
    # from the head").
    attention_score: str = 'learned'
    # 'both' only: > 0 bounds the learned part of the score to c tanh(e / c), so it can move a
    # cell's weight by at most e^(2c) against the head's map (it cannot park mass on a cell the
    # head does not draw on); 0: unbounded.
    learned_score_bound: float = 0.0
    # 'head' only: whether training's gradient flows through the score into the head and the
    # gate (True), or the score is read as a constant of each step (False: the head learns as
    # if alpha were given; alpha's ranking is |phi at uniform attention| either way).
    head_score_gradient: bool = True
    # A learned global gain g(h_{t-1}, command) in [e^-2, e^2] on alpha where it acts (the sign
    # path sees z = kappa g L alpha x), 1 at the start (layers.AttentionGain). alpha's shape, and
    # so the map, is unchanged; g gives a score that cannot park mass on an empty cell (the
    # head score) the state-dependent strength that parking gives the learned score.
    attention_gain: bool = False
    # MEMORY_INPUTS. 'uniform': the LSTM reads the features at alpha = 1/L instead of X^_t, so
    # where alpha acts it shapes the command of the current step only and cannot keep the
    # memory from seeing a cell the head does not yet draw on (docs/model.md, "A memory that
    # sees every cell"). Changes nothing for attention 'none' or an inert alpha.
    memory_input: str = 'attended'

    def __post_init__(self):
        """Normalise YAML-friendly values and reject impossible settings early."""
        self.quant_range = tuple(float(v) for v in self.quant_range)
        if self.attention not in ATTENTIONS:
            raise ValueError(f'attention must be one of {ATTENTIONS}, got {self.attention!r}')
        if self.binarize not in BINARIZERS:
            raise ValueError(f'binarize must be one of {BINARIZERS}, got {self.binarize!r}')
        if self.attention_score not in ATTENTION_SCORES:
            raise ValueError(f'attention_score must be one of {ATTENTION_SCORES}, '
                             f'got {self.attention_score!r}')
        if self.memory_input not in MEMORY_INPUTS:
            raise ValueError(f'memory_input must be one of {MEMORY_INPUTS}, '
                             f'got {self.memory_input!r}')
        if self.attention_score != 'learned' and self.attention == 'none':
            raise ValueError(f"attention_score {self.attention_score!r} needs an attention "
                             "('sign' or 'soft')")
        if self.attention_gain and self.attention == 'none':
            raise ValueError("attention_gain needs an attention ('sign' or 'soft')")
        if not MIN_BITS <= int(self.quant_bits) <= MAX_BITS:
            raise ValueError(f'quant_bits must be in {MIN_BITS}..{MAX_BITS}, '
                             f'got {self.quant_bits}')
        if len(self.quant_range) != 2 or not self.quant_range[1] > self.quant_range[0]:
            raise ValueError(f'quant_range must be (a, b) with b > a, got {self.quant_range}')
        if not self.temperature > 0:
            raise ValueError(f'temperature must be > 0, got {self.temperature}')
        if self.lstm_hidden < 1 or self.attention_hidden < 1:
            raise ValueError('lstm_hidden and attention_hidden must be positive')
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f'dropout must be in [0, 1), got {self.dropout}')
        if not self.output_scale > 0:
            raise ValueError(f'output_scale must be > 0, got {self.output_scale}')
        if not (self.learned_score_bound >= 0 and math.isfinite(self.learned_score_bound)):
            raise ValueError(f'learned_score_bound must be >= 0, got {self.learned_score_bound}')
        if not (self.sign_kappa > 0 and math.isfinite(self.sign_kappa)):
            raise ValueError(f'sign_kappa must be > 0, got {self.sign_kappa}')
        if self.num_commands not in (0, len(ROUTE_COMMANDS)):
            raise ValueError(f'num_commands must be 0 (camera only) or {len(ROUTE_COMMANDS)} '
                             f'({", ".join(ROUTE_COMMANDS)}), got {self.num_commands}')

    @property
    def lstm_input_size(self) -> int:
        """Length of flatten(X^_t): half the channels for "sign", all of them otherwise."""
        channels = FEATURE_CHANNELS // 2 if self.attention == 'sign' else FEATURE_CHANNELS
        return channels * NUM_LOCATIONS

    def to_dict(self) -> dict:
        """Plain-types dict (lists, not tuples) for checkpoints and YAML."""
        d = asdict(self)
        d['quant_range'] = list(self.quant_range)
        return d
