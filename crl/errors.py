"""One exception hierarchy for user-facing errors; the CLIs turn these into one-line messages and exit 2."""


class CrlError(Exception):
    """A user-facing error: bad input, unknown name, refused operation. Message says what and how to fix."""


class LayoutError(CrlError):
    """A maze layout is malformed (message names the line and column)."""


class ConfigError(CrlError):
    """An inconsistent or invalid configuration value."""


class DatasetError(CrlError):
    """A dataset id, version or store problem (unknown id, existing version, corrupted input...)."""


class TrainingDivergedError(CrlError):
    """NaN/Inf appeared in losses or parameters; the last good checkpoint is kept."""
