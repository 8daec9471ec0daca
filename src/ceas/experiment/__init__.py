"""experiment layer of ceas."""
