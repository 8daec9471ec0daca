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
