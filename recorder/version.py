"""The trajrec version, recorded in every episode's provenance."""

from trajrec._version import __version__

__all__ = ["__version__"]
