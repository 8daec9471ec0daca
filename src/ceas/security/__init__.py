"""security layer of ceas."""
