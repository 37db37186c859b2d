"""LakeCircle keeps S3 buckets' lifecycle configurations equal to TOML definitions."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lakecircle")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
