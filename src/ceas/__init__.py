"""CEAS: Consensus-Entanglement-Aware Scheduling for distributed quantum neural networks."""

from ceas.errors import CeasError, ConfigError

__all__ = ["CeasError", "ConfigError", "__version__"]
__version__ = "0.1.0"
