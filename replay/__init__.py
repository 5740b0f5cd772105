"""Everything that works on recorded episodes: rendering, library catalog, labels, auto-labelers, exports and
deterministic re-execution."""

from typing import Any

# Re-execution pulls in gymnasium and deepdiff; load it on first use so `import replay` stays light.
_LAZY = {"replay_episode", "ReplayReport", "ReplayError", "ReplayWarning", "Divergence"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import replayer

        return getattr(replayer, name)
    raise AttributeError(f"module 'replay' has no attribute {name!r}")
