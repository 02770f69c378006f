"""The package's one exception tree: a problem the user can act on is a `SignattnError`.

One class per layer, raised with a message that names the file or setting and says what to do;
a layer's specific errors derive from its class (defined beside the code that raises them):

    SignattnError
    +-- ConfigError (also ValueError)  a setting rejected: config field, device, vehicle profile
    +-- CheckpointError                checkpoint.py: unreadable or incompatible checkpoint
    +-- PreprocessingError (also ValueError)  preprocessing.py: an image that cannot be decoded
    +-- DataError                      data/: DatasetError, BagDatasetError
    +-- ConverterError                 udacity/: UnreadableBagError, BagStreamError
    +-- TrainingError                  training/config.py: config, data or run folder unfit
    +-- EvaluationError                evaluation/: ExplanationError, SweepError
    +-- SimulationError                sim/: MetaDriveError (the simulator itself), ClosedLoopError
    +-- RosError                       ros/: ReplayError, LiveEvaluationError, DemoError,
    |                                  NodeProcessError, NodeStartupError, NothingHeardError,
    |                                  ImageConversionError (also ValueError)
    +-- ViewerError                    viewer/: FrameEncodingError, ProtocolError (also ValueError)
    +-- CliError                       cli/: a command line that cannot be run

`signattn` turns a SignattnError into one line on stderr and exit status 2; any other exception
(a bare ValueError included) is a bug and keeps its traceback. Errors that callers also catch as
ValueError (bad values handed in) derive from ValueError too.
"""


class SignattnError(Exception):
    """Root of every error the user can act on; the message says what and where."""


class ConfigError(SignattnError, ValueError):
    """A setting that a config dataclass, the device rule or a vehicle profile rejects."""


class DataError(SignattnError):
    """A dataset or bag in this package's layout that is missing, malformed or unfit."""


class EvaluationError(SignattnError):
    """An evaluation that cannot run: bad methods, no frames, unusable checkpoints."""


class SimulationError(SignattnError):
    """A simulation (recording or closed loop) that cannot run or produced nothing."""


class RosError(SignattnError):
    """A ROS-side step (node, replay, live evaluation, demo) that failed or heard nothing."""
