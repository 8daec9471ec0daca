"""qnn layer of ceas."""
