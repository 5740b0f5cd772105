"""Everything that works on recorded episodes: rendering, library catalog, labels, auto-labelers, exports and
deterministic re-execution."""
