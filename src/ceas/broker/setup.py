"""What a broker run holds: the fixed :class:`BrokerContext` (built once) and the evolving :class:`BrokerState`.

The context is everything a round reads but never changes -- configuration, learning layer, policy, aggregation rule,
adversary and Byzantine set, payload size, QFI caps, the QFI probe batch, the channels from each node to the broker
(:mod:`ceas.broker.channels`). The state is everything the rounds change -- network and inventory, the channels' key
pools and MACs, the verifier's replay memory, trust, the last verified stamps, the
broker's fidelity estimates and the run's accounting totals -- and is pickled whole into the checkpoint, so a
resumed run continues exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ceas.broker.channels import Channels, build_channels
from ceas.broker.circuit_pairs import predicted_time_s
from ceas.broker.learning import Learner
from ceas.broker.replicas import Replicas, build_replicas
from ceas.config import RunConfig
from ceas.consensus.params import aggregation_from_params, trust_from_params
from ceas.consensus.stamps import qfi_noise_bound
from ceas.errors import ConfigError
from ceas.network import QuantumNetwork
from ceas.network.keys import KeyPool
from ceas.network.werner import stamp_weight, werner_from_fidelity
from ceas.partitions import pair_demand, scheme_from_params
from ceas.rng import stream
from ceas.scheduling.policies.value_iteration import exact_size_error, reduced_instance
from ceas.scheduling.registry import make_policy
from ceas.security.attacks import choose_byzantine, make_adversary
from ceas.security.mac import OneTimeMac
from ceas.security.messages import Verifier

TAG_BITS = 128  # SPEC §6: one fresh 128-bit pad per message (Poly1305 tags are 128 bits)

TOTALS = ("generated", "expired", "evicted", "used", "key_bits_in", "key_bits_out", "key_pairs")
"""Run-long counters of :attr:`BrokerState.totals` (pairs, except the key bits)."""
CIRCUIT_TOTALS = ("circuit_pairs", "circuit_generated", "circuit_runs")
"""Run-long counters of a split circuit's QPU-QPU pairs (end-to-end pairs used, link pairs heralded, runs)."""


@dataclass(frozen=True, eq=False)
class BrokerContext:
    """Everything fixed for a broker run.

    Attributes
    ----------
    cfg : RunConfig
    learner : Learner
        Data, shards, node noise and model; its ``y_train`` holds the Byzantine shards' poisoned labels.
    policy, aggregation, adversary
        The scheduling policy, the robust fidelity-weighted aggregation and the coordinating adversary.
    byzantine : (f,) int
        Byzantine node ids; ``is_byzantine`` is the (N,) mask of the same set.
    copies : int
        S_p, copies per payload component (0 with classical payloads).
    qfi_max : (N,) float
        Largest QFI summary each node's noise allows (the stamp verification cap).
    x_probe : (Q, n) float
        The fixed probe batch of the QFI summaries.
    channels : Channels
        Node k's end-to-end channel to the broker, per node (one link each in the star).
    scheme : PartitionScheme or None
        The split-circuit scheme (``partitions.scheme`` other than "data"); None for the data-level scheme.
    replicas : Replicas or None
        The nodes grouped into the scheme's replicas (:mod:`ceas.broker.replicas`); None for the data-level scheme.
    """

    cfg: RunConfig
    learner: Learner
    policy: Any
    aggregation: Any
    adversary: Any
    byzantine: np.ndarray
    is_byzantine: np.ndarray
    copies: int
    qfi_max: np.ndarray
    x_probe: np.ndarray
    channels: Channels
    scheme: Any = None
    replicas: Replicas | None = None

    @property
    def n_params(self) -> int:
        return self.learner.spec.n_params

    @property
    def payload_pairs(self) -> int:
        """P·S_p pairs carry one quantum payload (0 with classical payloads)."""
        return self.n_params * self.copies


def build_context(cfg: RunConfig) -> BrokerContext:
    """Build the learning layer, the policy, the rule and the adversary of a broker run (see :class:`BrokerContext`).

    The channels are read off the network :func:`initial_state` builds (the same stream gives the same graph).
    """
    seed, n = cfg.run.seed, cfg.training.nodes
    channels = build_channels(_network(cfg), n)
    learner = Learner(cfg)
    aggregation = aggregation_from_params(cfg.consensus, cfg.security.byzantine_fraction)
    byzantine = choose_byzantine(n, cfg.security.byzantine_fraction, stream(seed, "byzantine"))
    is_byzantine = np.zeros(n, bool)
    is_byzantine[byzantine] = True
    adversary = make_adversary(
        cfg.security.attacks,
        cfg.security.attack_params,
        aggregator=aggregation.as_rule(),
        network=(n, int(byzantine.size)),
    )
    # label-flip and other data attacks poison the Byzantine nodes' shards once, at the start
    poison_rng = stream(seed, "poison")
    y_train = learner.data.y_train.copy()
    for k in byzantine:
        idx = learner.shards[k]
        y_train[idx] = adversary.poison_labels(y_train[idx], learner.data.n_classes, poison_rng)
    learner.y_train = y_train
    probe = stream(seed, "qfi-probe").choice(
        learner.data.x_train.shape[0], size=cfg.model.qfi_probe_samples, replace=False
    )
    copies = cfg.scheduling.payload_copies if cfg.broker.payload == "quantum" else 0
    scheme = replicas = None
    if cfg.partitions.scheme != "data":
        scheme = scheme_from_params(cfg.partitions, learner.spec)
        members = np.arange(n).reshape(-1, scheme.n_qpus)
        runs = pair_demand(scheme, samples=cfg.training.batch_size, shots=cfg.training.shots).runs
        replicas = build_replicas(scheme, n, runs, predicted_time_s(scheme, channels, members, runs))
    qfi_max = np.asarray(
        qfi_noise_bound(learner.depolarizing, cfg.model.n_layers, cfg.model.n_qubits), float
    )
    return BrokerContext(
        cfg=cfg,
        learner=learner,
        policy=_policy(cfg, channels, qfi_max, learner.spec.n_params * copies),
        aggregation=aggregation,
        adversary=adversary,
        byzantine=byzantine,
        is_byzantine=is_byzantine,
        copies=copies,
        qfi_max=qfi_max,
        x_probe=learner.data.x_train[probe],
        channels=channels,
        scheme=scheme,
        replicas=replicas,
    )


def _policy(cfg: RunConfig, channels: Channels, qfi_max: np.ndarray, payload_pairs: int):
    """The scheduling policy; ``value-iteration`` gets the reduced instance of this network (live mode)."""
    name, sched = cfg.scheduling.policy, cfg.scheduling
    if name != "value-iteration":
        return make_policy(name, sched)
    problem = exact_size_error(cfg.training.nodes, cfg.network.memory.slots, sched.age_bins)
    if problem:
        raise ConfigError(problem)
    model = reduced_instance(
        sched,
        f0=channels.f0,
        t_coh_s=channels.t_coh_s,
        rate_hz=channels.rate_hz,
        slots=cfg.network.memory.slots,
        phi=(cfg.training.shots or 1) * qfi_max,
        payload_pairs=payload_pairs,
        verification_pairs=cfg.security.verification_pairs,
        f_min=cfg.network.memory.f_min,
    )
    return make_policy(name, sched, model=model, live=True)


def _network(cfg: RunConfig) -> QuantumNetwork:
    return QuantumNetwork.from_params(cfg.network, stream(cfg.run.seed, "network"))


@dataclass
class BrokerState:
    """Everything of the broker that evolves across rounds (pickled into the checkpoint)."""

    network: QuantumNetwork
    key_pools: tuple[KeyPool, ...]  # (N,) per channel; a single-hop channel's is its link's pool
    macs: dict[int, OneTimeMac]
    verifier: Verifier
    trust: Any
    phi: np.ndarray  # (N,) last verified φ
    phi_visibility: np.ndarray  # (N,) visibility φ was evaluated at
    fid_estimate: np.ndarray  # (N,) broker's fidelity estimate per link
    fid_upper: np.ndarray  # (N,) its upper confidence bound
    qfi: np.ndarray  # (N,) node QFI summaries (refreshed every model.qfi_refresh_every rounds)
    history: list[bytes] = field(
        default_factory=list
    )  # wire messages seen (a replaying adversary's source)
    totals: dict[str, float] = field(default_factory=dict)  # run-long counters, keys TOTALS
    agreement: Any = (
        None  # pairwise key pools and MACs of agreement (consensus.trusted_broker = false)
    )


def initial_state(ctx: BrokerContext) -> BrokerState:
    """The network, key pools, MACs, trust and stamp memory at round 0.

    Every link's pool and every multi-hop channel's pool starts with the pre-shared seed key.
    """
    cfg, ch = ctx.cfg, ctx.channels
    n = cfg.training.nodes
    net = _network(cfg)
    net.preshare_keys(cfg.security.seed_key_bits)
    pools = tuple(
        net.key_pool(hops[0])
        if len(hops) == 1
        else KeyPool(stream(cfg.run.seed, "channel-key", c), cfg.security.seed_key_bits)
        for c, hops in enumerate(ch.hops)
    )
    macs = {
        k: OneTimeMac(pools[k], refresh_messages=cfg.security.mac_refresh_messages, link=k)
        for k in range(n)
    }
    f0 = ch.f0.copy()
    v0 = werner_from_fidelity(f0)
    shots = cfg.training.shots or 1
    # paper stamps start from what each node's noise and link allow; predicted-MSE stamps from no prior at all (the
    # same φ for every node until it has sent a stamp)
    phi = stamp_weight(shots, ctx.qfi_max, v0) if cfg.consensus.stamp == "paper" else np.ones(n)
    return BrokerState(
        network=net,
        key_pools=pools,
        macs=macs,
        verifier=Verifier(
            macs,
            max_stamp_bytes=cfg.security.max_stamp_bytes,
            authenticate=cfg.security.authentication,
        ),
        trust=trust_from_params(cfg.consensus).reset(n),
        phi=phi,
        phi_visibility=v0.copy(),
        fid_estimate=f0.copy(),
        fid_upper=np.ones(n),
        qfi=ctx.qfi_max.copy(),
        totals=dict.fromkeys(TOTALS + (CIRCUIT_TOTALS if ctx.replicas is not None else ()), 0.0),
    )
