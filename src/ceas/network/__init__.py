"""network layer of ceas."""
