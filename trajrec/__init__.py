"""trajrec: record, replay, label and export agent trajectories in Gymnasium-style tool environments.

The import packages are ``recorder`` (format, writer, reader, wrapper), ``replay`` (library, labels, exports,
re-execution), ``envs`` (built-in tool environments) and ``tui`` (the terminal app). This package holds the
``trajrec`` command line.
"""

from recorder.version import __version__

__all__ = ["__version__"]
