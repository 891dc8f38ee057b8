"""The bottom layer: errors, runtime switches (seed, device, optional imports), configuration."""

from dlpipe.core.errors import (
    BundleError,
    DataWarning,
    DlpipeError,
    DlpipeWarning,
    InvalidConfigError,
    InvalidInputError,
    InvalidTargetError,
    MissingDependencyError,
    RunFailedError,
    UnsupportedFileError,
)

__all__ = [
    "BundleError",
    "DataWarning",
    "DlpipeError",
    "DlpipeWarning",
    "InvalidConfigError",
    "InvalidInputError",
    "InvalidTargetError",
    "MissingDependencyError",
    "RunFailedError",
    "UnsupportedFileError",
]
