"""ceas.network: the physical and link layer (SPEC §4) — topologies, heralded generation, decaying memories,
the entanglement inventory (Definition 2), swapping, purification, teleportation, BBM92 key pools and
entanglement verification.

The broker drives it through :class:`QuantumNetwork` (a clock over a ledger of live pairs)::

    net = QuantumNetwork.from_params(NetworkParams(), rng)
    net.advance(1.0)                                     # generate, decay, expire, evict on every link at once
    got = net.request(3, 4, purpose="payload", min_fidelity=0.85)   # 4 pairs on link 3, fidelity at use
    got.werner                                           # visibilities for the teleportation channel
    net.distill_key(3, 2)                                # BBM92 into link 3's key pool
    net.counters().residual                              # generated - consumed - expired - evicted - held == 0

Units everywhere: seconds, km, fidelities in [1/4, 1]. Modules, one job each:

=================== ===================================================================================
``params``          pydantic section of the run config (topology, link physics presets, memory)
``topology``        star / grid / Waxman / random geometric / GraphML builders, validation, reliable paths
``links``           per-link physics: transmissivity, success probability, attempt period, F0, coherence
``werner``          the one home of the pair physics: fidelity <-> Werner, decay, cutoff age, Bell vectors,
                    QBER, CHSH, key fraction, stamp weight (other layers import it, none restates it)
``generation``      geometric waiting times on every link's attempt grid, vectorised
``memory``          closed-form expiry and eviction over a window (policies ``oldest``, ``lowest_fidelity``)
``inventory``       the ledger of live pairs, lazy fidelity, consumption by purpose, counters
``swapping``        entanglement swapping (w product)
``purification``    BBPSSW and DEJMPS
``teleportation``   the depolarising / Pauli channel of a pair
``qkd``, ``keys``   BBM92 distillation, key budgets (``pairs_for_bits``) and per-link key pools
``verification``    QBER and CHSH tests with Clopper-Pearson bounds
``network``         :class:`QuantumNetwork`, the clock API
``simulate``        the engine of ``ceas network simulate``
=================== ===================================================================================
"""

from typing import TYPE_CHECKING

from ceas._lazy import lazy_exports

if TYPE_CHECKING:
    # the names below are imported on first use (PEP 562): `import ceas.network.params` and the like (what checking a
    # config needs) then no longer import every module of the layer
    from ceas.network.inventory import (
        PAIR_PURPOSES,
        SELECTION_ORDERS,
        Delivery,
        EntanglementInventory,
        InventoryCounters,
        InventorySnapshot,
        LinkSnapshot,
    )
    from ceas.network.keys import KeyPool
    from ceas.network.links import (
        LinkTable,
        annotate_links,
        arm_transmissivity,
        attempt_period_s,
        initial_fidelity,
        link_coherence_s,
        link_table,
        success_probability,
    )
    from ceas.network.memory import (
        EVICTION_POLICIES,
        BlockWhenFull,
        EvictionPolicy,
        LowestFidelityFirst,
        OldestFirst,
        get_eviction_policy,
    )
    from ceas.network.network import (
        AdvanceReport,
        EndToEndPair,
        PurificationResult,
        QuantumNetwork,
        StreamDemand,
        SwapResult,
    )
    from ceas.network.params import (
        LINK_PRESETS,
        LinkParams,
        MemoryParams,
        NetworkParams,
        TopologyParams,
    )
    from ceas.network.purification import PURIFICATION_PROTOCOLS, bbpssw, dejmps
    from ceas.network.qkd import KeyYield, bbm92, pairs_for_bits
    from ceas.network.simulate import Demand, SimulationReport, plot_report, report_table
    from ceas.network.swapping import swap_bell, swap_fidelity, swap_werner
    from ceas.network.teleportation import teleport_bloch, teleport_pauli, teleport_qubit
    from ceas.network.topology import (
        TOPOLOGY_BUILDERS,
        build_topology,
        most_reliable_path,
        read_graphml,
        validate_topology,
    )
    from ceas.network.verification import VerificationResult, run_verification
    from ceas.network.werner import (
        BELL_STATES,
        basis_error_rates,
        bbm92_key_fraction,
        bell_correlations,
        bell_decay,
        bell_from_correlations,
        binary_entropy,
        chsh_max,
        chsh_value,
        cutoff_age,
        fidelity_at_age,
        fidelity_from_chsh,
        fidelity_from_qber,
        fidelity_from_werner,
        qber,
        qber_from_werner,
        secret_fraction,
        stamp_weight,
        werner_at_age,
        werner_bell_vector,
        werner_from_fidelity,
    )

_EXPORTS = {
    "PAIR_PURPOSES": "ceas.network.inventory",
    "SELECTION_ORDERS": "ceas.network.inventory",
    "Delivery": "ceas.network.inventory",
    "EntanglementInventory": "ceas.network.inventory",
    "InventoryCounters": "ceas.network.inventory",
    "InventorySnapshot": "ceas.network.inventory",
    "LinkSnapshot": "ceas.network.inventory",
    "KeyPool": "ceas.network.keys",
    "LinkTable": "ceas.network.links",
    "annotate_links": "ceas.network.links",
    "arm_transmissivity": "ceas.network.links",
    "attempt_period_s": "ceas.network.links",
    "initial_fidelity": "ceas.network.links",
    "link_coherence_s": "ceas.network.links",
    "link_table": "ceas.network.links",
    "success_probability": "ceas.network.links",
    "EVICTION_POLICIES": "ceas.network.memory",
    "BlockWhenFull": "ceas.network.memory",
    "EvictionPolicy": "ceas.network.memory",
    "LowestFidelityFirst": "ceas.network.memory",
    "OldestFirst": "ceas.network.memory",
    "get_eviction_policy": "ceas.network.memory",
    "AdvanceReport": "ceas.network.network",
    "EndToEndPair": "ceas.network.network",
    "PurificationResult": "ceas.network.network",
    "QuantumNetwork": "ceas.network.network",
    "StreamDemand": "ceas.network.network",
    "SwapResult": "ceas.network.network",
    "LINK_PRESETS": "ceas.network.params",
    "LinkParams": "ceas.network.params",
    "MemoryParams": "ceas.network.params",
    "NetworkParams": "ceas.network.params",
    "TopologyParams": "ceas.network.params",
    "PURIFICATION_PROTOCOLS": "ceas.network.purification",
    "bbpssw": "ceas.network.purification",
    "dejmps": "ceas.network.purification",
    "KeyYield": "ceas.network.qkd",
    "bbm92": "ceas.network.qkd",
    "pairs_for_bits": "ceas.network.qkd",
    "Demand": "ceas.network.simulate",
    "SimulationReport": "ceas.network.simulate",
    "plot_report": "ceas.network.simulate",
    "report_table": "ceas.network.simulate",
    "swap_bell": "ceas.network.swapping",
    "swap_fidelity": "ceas.network.swapping",
    "swap_werner": "ceas.network.swapping",
    "teleport_bloch": "ceas.network.teleportation",
    "teleport_pauli": "ceas.network.teleportation",
    "teleport_qubit": "ceas.network.teleportation",
    "TOPOLOGY_BUILDERS": "ceas.network.topology",
    "build_topology": "ceas.network.topology",
    "most_reliable_path": "ceas.network.topology",
    "read_graphml": "ceas.network.topology",
    "validate_topology": "ceas.network.topology",
    "VerificationResult": "ceas.network.verification",
    "run_verification": "ceas.network.verification",
    "BELL_STATES": "ceas.network.werner",
    "basis_error_rates": "ceas.network.werner",
    "bbm92_key_fraction": "ceas.network.werner",
    "bell_correlations": "ceas.network.werner",
    "bell_decay": "ceas.network.werner",
    "bell_from_correlations": "ceas.network.werner",
    "binary_entropy": "ceas.network.werner",
    "chsh_max": "ceas.network.werner",
    "chsh_value": "ceas.network.werner",
    "cutoff_age": "ceas.network.werner",
    "fidelity_at_age": "ceas.network.werner",
    "fidelity_from_chsh": "ceas.network.werner",
    "fidelity_from_qber": "ceas.network.werner",
    "fidelity_from_werner": "ceas.network.werner",
    "qber": "ceas.network.werner",
    "qber_from_werner": "ceas.network.werner",
    "secret_fraction": "ceas.network.werner",
    "stamp_weight": "ceas.network.werner",
    "werner_at_age": "ceas.network.werner",
    "werner_bell_vector": "ceas.network.werner",
    "werner_from_fidelity": "ceas.network.werner",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "BELL_STATES",
    "EVICTION_POLICIES",
    "LINK_PRESETS",
    "PAIR_PURPOSES",
    "PURIFICATION_PROTOCOLS",
    "SELECTION_ORDERS",
    "TOPOLOGY_BUILDERS",
    "AdvanceReport",
    "BlockWhenFull",
    "Delivery",
    "Demand",
    "EndToEndPair",
    "EntanglementInventory",
    "EvictionPolicy",
    "InventoryCounters",
    "InventorySnapshot",
    "KeyPool",
    "KeyYield",
    "LinkParams",
    "LinkSnapshot",
    "LinkTable",
    "LowestFidelityFirst",
    "MemoryParams",
    "NetworkParams",
    "OldestFirst",
    "PurificationResult",
    "QuantumNetwork",
    "SimulationReport",
    "StreamDemand",
    "SwapResult",
    "TopologyParams",
    "VerificationResult",
    "annotate_links",
    "arm_transmissivity",
    "attempt_period_s",
    "basis_error_rates",
    "bbm92",
    "bbm92_key_fraction",
    "bbpssw",
    "bell_correlations",
    "bell_decay",
    "bell_from_correlations",
    "binary_entropy",
    "build_topology",
    "chsh_max",
    "chsh_value",
    "cutoff_age",
    "dejmps",
    "fidelity_at_age",
    "fidelity_from_chsh",
    "fidelity_from_qber",
    "fidelity_from_werner",
    "get_eviction_policy",
    "initial_fidelity",
    "link_coherence_s",
    "link_table",
    "most_reliable_path",
    "pairs_for_bits",
    "plot_report",
    "qber",
    "qber_from_werner",
    "read_graphml",
    "report_table",
    "run_verification",
    "secret_fraction",
    "stamp_weight",
    "success_probability",
    "swap_bell",
    "swap_fidelity",
    "swap_werner",
    "teleport_bloch",
    "teleport_pauli",
    "teleport_qubit",
    "validate_topology",
    "werner_at_age",
    "werner_bell_vector",
    "werner_from_fidelity",
]
