"""The trajrec version and the episode format version it writes."""

__version__ = "0.1.0"
