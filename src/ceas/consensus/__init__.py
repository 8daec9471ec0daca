"""consensus layer of ceas."""
