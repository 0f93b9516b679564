"""The one error type of edgeprune.

Every user mistake (a bad value, a missing file, a checkpoint for another model) raises a subclass of
:class:`EdgepruneError` with a one-line message that names the bad value and what is allowed. The CLI
prints that line and exits with code 2; anything else is a bug and keeps its traceback.
"""


class EdgepruneError(Exception):
    """Base class of every error edgeprune raises for bad input."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # always one line


class ConfigError(EdgepruneError):
    """A setting is out of range or unknown (epochs <= 0, unknown model spec, malformed recipe...)."""


class DataError(EdgepruneError):
    """A data folder or file is missing, corrupt, truncated or has the wrong checksum."""


class CheckpointError(EdgepruneError):
    """A file is not an edgeprune checkpoint, holds pickled code, or does not fit its model."""


class ModelError(EdgepruneError):
    """A model cannot be built or cannot take the requested input (channels, classes, image size)."""


class DamagedFileError(ConfigError):
    """A file edgeprune reads (run record, config, plan, recipe, checkpoint) is damaged: not UTF-8, not valid
    JSON/YAML at a named line, the wrong shape, or its content hash does not match (bytes changed on disk)."""


class WriteError(EdgepruneError):
    """The operating system refused to write a file (disk full, quota, I/O error, read-only, permission):
    names the file and the OS reason; nothing half-written is left, and re-running resumes."""


class DeviceError(EdgepruneError):
    """A device latency is measured on cannot be reached, lacks the runtime, or its command failed: names the
    device and what went wrong."""


class DependencyError(EdgepruneError):
    """An optional library (transformers, timm, torchvision, ray) is missing or cannot reach its weights."""


def check_positive(name: str, value, *, allow_zero: bool = False):
    """Raise ConfigError unless ``value`` > 0 (or >= 0); returns the value for chaining."""
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be {bound}, got {value!r}")
    return value


def check_at_most(name: str, value, bound):
    """Raise ConfigError if ``value`` > ``bound`` (sane upper bounds on epochs, batches, seeds...)."""
    if value > bound:
        raise ConfigError(f"{name} must be <= {bound:,}, got {value!r}")
    return value


def check_fraction(name: str, value: float) -> float:
    """Raise ConfigError unless ``value`` is in [0, 1) (the convention for sparsities and ratios)."""
    if not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)
