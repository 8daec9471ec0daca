"""Learning layer (SPEC §3): the QNN circuit, its batched simulator, noise, finite shots, QFI and losses.

>>> import numpy as np
>>> from ceas.qnn import CircuitSpec, QNNSimulator
>>> sim = QNNSimulator(CircuitSpec(n_qubits=1, n_layers=1))
>>> e = sim.expval(np.array([[0.3, 0.0]]), np.array([[[0.0]]]))  # <Z> after RY(0.3)
>>> bool(np.isclose(e[0, 0, 0], np.cos(0.3)))
True
"""

from typing import TYPE_CHECKING

from ceas._lazy import lazy_exports

if TYPE_CHECKING:  # the names below, imported on first use (PEP 562): `import ceas.qnn.params` and
    # the like (what checking a config needs) then no longer import every module of the layer
    from ceas.qnn.circuit import ENTANGLERS, CircuitSpec, Entangler, register_entangler
    from ceas.qnn.losses import LOSSES
    from ceas.qnn.model import QNNModel
    from ceas.qnn.noise import NodeNoise, depolarised_qfi
    from ceas.qnn.params import QNNParams
    from ceas.qnn.shots import sample_expval
    from ceas.qnn.simulator import QNNSimulator

_EXPORTS = {
    "ENTANGLERS": "ceas.qnn.circuit",
    "CircuitSpec": "ceas.qnn.circuit",
    "Entangler": "ceas.qnn.circuit",
    "register_entangler": "ceas.qnn.circuit",
    "LOSSES": "ceas.qnn.losses",
    "QNNModel": "ceas.qnn.model",
    "NodeNoise": "ceas.qnn.noise",
    "depolarised_qfi": "ceas.qnn.noise",
    "QNNParams": "ceas.qnn.params",
    "sample_expval": "ceas.qnn.shots",
    "QNNSimulator": "ceas.qnn.simulator",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


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
