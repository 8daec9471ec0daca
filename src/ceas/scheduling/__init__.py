"""scheduling layer of ceas."""
