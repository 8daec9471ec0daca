"""The cross-layer broker: one round runs the layers in order (SPEC §2)."""
