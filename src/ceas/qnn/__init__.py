"""Learning layer (SPEC §3): the QNN circuit, its batched simulator, noise, finite shots, QFI and losses.

>>> import numpy as np
>>> from ceas.qnn import CircuitSpec, QNNSimulator
>>> sim = QNNSimulator(CircuitSpec(n_qubits=1, n_layers=1))
>>> e = sim.expval(np.array([[0.3, 0.0]]), np.array([[[0.0]]]))  # <Z> after RY(0.3)
>>> bool(np.isclose(e[0, 0, 0], np.cos(0.3)))
True
"""

from ceas.qnn.circuit import ENTANGLERS, CircuitSpec, Entangler, register_entangler
from ceas.qnn.losses import LOSSES
from ceas.qnn.model import QNNModel
from ceas.qnn.noise import NodeNoise, depolarised_qfi
from ceas.qnn.params import QNNParams
from ceas.qnn.shots import sample_expval
from ceas.qnn.simulator import QNNSimulator

__all__ = [
    "ENTANGLERS",
    "LOSSES",
    "CircuitSpec",
    "Entangler",
    "NodeNoise",
    "QNNModel",
    "QNNParams",
    "QNNSimulator",
    "depolarised_qfi",
    "register_entangler",
    "sample_expval",
]
