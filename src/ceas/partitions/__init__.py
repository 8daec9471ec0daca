"""partitions layer of ceas."""
