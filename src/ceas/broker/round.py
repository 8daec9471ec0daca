"""The cross-layer broker (SPEC §2, Fig. 2–3): one training round runs the layers in order.

configure
    1. The learning layer states its demand: per node, payload pairs P·S_p, verification pairs k and the key bits
       its tagged reply will cost (Byzantine nodes may inflate their demand: pair hoarding).
    2. The scheduling policy (Definition 3) sees the inventory and the nodes (trust, last verified φ) and decides:
       participants, which stored pairs serve which purpose, fresh pairs per link and purpose, generation on/off.
    3. The network executes it: stored pairs chosen by the policy are consumed at the start of the round; the
       round's τ seconds are then simulated in one network step in which each link serves its fresh requests in
       priority order (key, payload, verification), every pair the moment it is heralded. A link generates all round
       where the decision says so, elsewhere only until its requests are served.
aggregate
    4. Participants compute gradients on their minibatches (shots, own depolarising noise); the coordinated
       adversary replaces the Byzantine participants' updates and stamps; every reply is tagged with a one-time
       Wegman–Carter MAC paid from its link's key pool (a dry pool means the reply is not sent).
    5. Gradients travel as quantum payloads through the pairs delivered (variance ∝ 1/v²); the broker rescales by
       the ledger visibility of those pairs. A payload that did not fully arrive within the round is dropped.
    6. Stamps are verified against the broker's verification-test estimate and the node's noise bound; the verified
       φ weight a robust rule; trust scores move towards agreement with the aggregate and feed the next decision.

Every random draw of round t comes from ``stream(seed, "round", t)``; the network and key pools carry their own
generators, saved with the checkpoint, so a resumed run is identical to an uninterrupted one.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ceas.broker.payload import encode, payload_scale
from ceas.config import RunConfig
from ceas.consensus.params import aggregation_from_params, trust_from_params
from ceas.consensus.stamps import (
    FidelityStamp,
    qfi_noise_bound,
    tighten_claims,
    verify_stamps,
)
from ceas.errors import ConfigError
from ceas.experiment.trainer import DataLevelTrainer, RoundResult
from ceas.network import QuantumNetwork
from ceas.network.network import StreamDemand
from ceas.network.qkd import bbm92
from ceas.rng import stream
from ceas.scheduling.registry import make_policy
from ceas.scheduling.views import PURPOSES, InventoryView, NodeView
from ceas.security.attacks import ChannelView, StampClaims, choose_byzantine, make_adversary
from ceas.security.mac import KeyExhaustedError, OneTimeMac
from ceas.security.messages import Reason, Signer, Verifier
from ceas.security.verification import estimate_fidelity, sample_honest_test

TAG_BITS = 128  # SPEC §6: one fresh 128-bit pad per message
_PRIORITY = ("key", "payload", "verification")  # order in which a link serves fresh requests
_INCOMPLETE, _KEY_DRY = "payload incomplete", "key pool dry"
# replies lost to the network, not rejected for what they said
_NETWORK_MISSES = (_INCOMPLETE, _KEY_DRY)


def _fidelity(w: np.ndarray) -> np.ndarray:
    return (3.0 * np.asarray(w) + 1.0) / 4.0


def _is_star(graph, n: int) -> bool:
    """Every QPU 0..n-1 joined to the one broker by one link, and nothing else."""
    from ceas.network.topology import broker_node

    hub = broker_node(graph)
    return graph.number_of_edges() == n and all(graph.has_edge(k, hub) for k in range(n))


def _not_star(cfg: RunConfig) -> None:
    raise ConfigError(
        f"network.topology.kind: {cfg.network.topology.kind!r} is not allowed with broker.enabled = true; "
        "allowed: a star of the QPUs around the broker (routes over repeaters are simulated by "
        "`ceas network simulate` only so far)"
    )


@dataclass
class BrokerState:
    """Everything of the broker that evolves across rounds (pickled into the checkpoint)."""

    network: QuantumNetwork
    macs: dict[int, OneTimeMac]
    verifier: Verifier
    trust: Any
    phi: np.ndarray  # (N,) last verified φ
    phi_visibility: np.ndarray  # (N,) visibility φ was evaluated at
    fid_estimate: np.ndarray  # (N,) broker's fidelity estimate per link
    fid_upper: np.ndarray  # (N,) its upper confidence bound
    qfi: np.ndarray  # (N,) node QFI summaries (refreshed every model.qfi_refresh_every rounds)
    history: list[bytes] = field(default_factory=list)
    totals: dict[str, float] = field(default_factory=dict)


class BrokerTrainer(DataLevelTrainer):
    """Data-level training through the network, the scheduler, authentication and robust consensus."""

    def __init__(self, cfg: RunConfig):
        super().__init__(cfg)
        if cfg.network.topology.kind in ("grid", "waxman", "random_geometric"):
            _not_star(cfg)
        seed = cfg.run.seed
        n = cfg.training.nodes
        self.policy = make_policy(cfg.scheduling.policy, cfg.scheduling)
        self.aggregation = aggregation_from_params(cfg.consensus, cfg.security.byzantine_fraction)
        self.byzantine = choose_byzantine(
            n, cfg.security.byzantine_fraction, stream(seed, "byzantine")
        )
        self.is_byzantine = np.zeros(n, bool)
        self.is_byzantine[self.byzantine] = True
        self.adversary = make_adversary(
            cfg.security.attacks, cfg.security.attack_params, aggregator=self.aggregation.as_rule()
        )
        # label-flip and other data attacks poison the Byzantine nodes' shards once, at the start
        poison_rng = stream(seed, "poison")
        self.y_train = self.data.y_train.copy()
        for k in self.byzantine:
            idx = self.shards[k]
            self.y_train[idx] = self.adversary.poison_labels(
                self.y_train[idx], self.data.n_classes, poison_rng
            )
        self.copies = cfg.scheduling.payload_copies if cfg.broker.payload == "quantum" else 0
        self.qfi_max = qfi_noise_bound(self.depolarizing, cfg.model.n_layers, cfg.model.n_qubits)
        probe_rng = stream(seed, "qfi-probe")
        probe = probe_rng.choice(
            self.data.x_train.shape[0], size=cfg.model.qfi_probe_samples, replace=False
        )
        self.x_probe = self.data.x_train[probe]
        self.state: BrokerState | None = None

    # -- state -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Build the network, key pools, MACs and trust for round 0."""
        cfg = self.cfg
        n = cfg.training.nodes
        net = QuantumNetwork.from_params(cfg.network, stream(cfg.run.seed, "network"))
        if not _is_star(net.graph, n):  # a GraphML file or a plugin topology may be a star too
            _not_star(cfg)
        net.preshare_keys(cfg.security.seed_key_bits)
        macs = {
            k: OneTimeMac(
                net.key_pool(k), refresh_messages=cfg.security.mac_refresh_messages, link=k
            )
            for k in range(n)
        }
        trust = trust_from_params(cfg.consensus).reset(n)
        f0 = net.table.f0[:n]
        v0 = (4.0 * f0 - 1.0) / 3.0
        shots = cfg.training.shots or 1
        self.state = BrokerState(
            network=net,
            macs=macs,
            verifier=Verifier(macs, max_stamp_bytes=cfg.security.max_stamp_bytes),
            trust=trust,
            phi=shots * self.qfi_max * v0**2,
            phi_visibility=v0.copy(),
            fid_estimate=f0.copy(),
            fid_upper=np.ones(n),
            qfi=np.asarray(self.qfi_max, float).copy(),
            totals={
                k: 0.0
                for k in ("generated", "expired", "evicted", "used", "key_bits_in", "key_bits_out")
            },
        )

    def extra_state(self) -> bytes:
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)

    def load_extra_state(self, blob: bytes) -> None:
        self.state = pickle.loads(blob)

    # -- configure -------------------------------------------------------------------------------------------
    def _views(self, t: int) -> tuple[InventoryView, NodeView]:
        st, cfg = self.state, self.cfg
        net = st.network
        n = cfg.training.nodes
        v = net.view()
        occ = v.occupied
        link_of_pair = np.nonzero(occ)[0]
        table = net.table
        inventory = InventoryView(
            link_node=np.array([min(a, b) for a, b in table.edges], dtype=np.int64),
            f0=table.f0,
            t_coh_s=table.t_coh_s,
            cutoff_s=table.cutoff_s,
            rate_hz=table.rate_hz,
            slots=np.full(net.n_links, net.capacity),
            key_bits=np.array([pool.available_bits for pool in net.key_pools], float),
            pair_id=v.pair_id[occ],
            pair_link=link_of_pair,
            pair_age_s=v.age_s[occ],
            pair_fidelity=np.clip(v.fidelity[occ], 0.25, 1.0),
            time_s=net.now,
        )
        payload = np.full(n, self.spec.n_params * self.copies, dtype=np.int64)
        payload[self.byzantine] = self.adversary.demand(payload[self.byzantine])
        nodes = NodeView(
            ready=np.ones(n, bool),
            trust=np.clip(st.trust.snapshot(t).scores, 0.0, 1.0),
            phi=st.phi,
            phi_visibility=np.clip(st.phi_visibility, 1e-6, 1.0),
            payload_pairs=payload,
            verification_pairs=np.full(n, cfg.security.verification_pairs, dtype=np.int64),
            tag_bits=np.full(n, float(TAG_BITS)),
            round=t,
        )
        return inventory, nodes

    def _execute(self, decision, rng) -> dict[str, Any]:
        """Run the network for one round under ``decision``; return the pairs delivered per purpose and link."""
        st, cfg = self.state, self.cfg
        net = st.network
        L = net.n_links
        got: dict[str, list[list[np.ndarray]]] = {
            p: [[] for _ in range(L)] for p in ("payload", "verification")
        }
        arrival = np.zeros(L)
        key_pairs = 0
        key_bits = 0
        # stored pairs chosen by the policy, used at the start of the round
        for purpose, ids in (
            ("payload", decision.payload),
            ("verification", decision.verification),
        ):
            if ids.size:
                links = self._link_of(ids)
                for link in np.unique(links):
                    d = net.consume(int(link), ids[links == link], purpose=purpose)
                    got[purpose][link].append(d.werner)
        for ids in (decision.key, decision.convert):
            if ids.size:
                links = self._link_of(ids)
                for link in np.unique(links):
                    y = net.distill_key(int(link), ids[links == link], rng=rng)
                    key_bits += y.secret_bits
                    key_pairs += int(y.pairs)
        # The round's tau seconds in one network step. Each link serves its fresh requests in priority order --
        # key, payload, verification -- with stored pairs first and then every pair the moment it is heralded (a
        # verification test or a BBM92 measurement needs no storage either), so no requested pair waits in memory.
        # Key goes first: a reply whose tag cannot be paid is never sent, which wastes its payload pairs, while key
        # bits distilled for a reply that then misses the round stay in the pool for the next one.
        # A link generates for the whole round where the decision says so; elsewhere only until its requests are
        # served (a link stops attempting at its last needed herald).
        need = decision.requests
        on = decision.generate | (need.sum(axis=1) > 0)
        if on.any():
            net.set_generation(on, True)
        if (~on).any():
            net.set_generation(~on, False)
        start = net.now
        rep = net.advance(
            cfg.scheduling.round_s,
            [StreamDemand(pairs=need[:, PURPOSES.index(p)].copy(), purpose=p) for p in _PRIORITY],
            stop_when_served=~decision.generate,
        )
        key, payload, verification = rep.deliveries
        for purpose, d in (("payload", payload), ("verification", verification)):
            for link in np.unique(d.link):
                got[purpose][link].append(d.werner[d.link == link])
        if payload.n:
            np.maximum.at(arrival, payload.link, payload.time_s - start)
        for link in np.unique(key.link):
            y = bbm92(key.bell[key.link == link], rng)
            net.key_pool(int(link)).deposit(y.secret_bits)
            key_bits += y.secret_bits
            key_pairs += int(y.pairs)
        gen, exp, ev = rep.generated, rep.expired, rep.evicted
        return {
            "pairs": {p: [np.concatenate(x) if x else np.zeros(0) for x in got[p]] for p in got},
            "arrival_s": arrival,
            "generated": int(gen.sum()),
            "expired": int(exp.sum()),
            "evicted": int(ev.sum()),
            "key_pairs": key_pairs,
            "key_bits": int(key_bits),
        }

    def _link_of(self, ids: np.ndarray) -> np.ndarray:
        v = self.state.network.view()
        lookup = dict(zip(v.pair_id[v.occupied].tolist(), np.nonzero(v.occupied)[0].tolist()))
        return np.array([lookup[int(i)] for i in ids], dtype=np.int64)

    # -- one round -------------------------------------------------------------------------------------------
    def run_round(self, t: int, theta: np.ndarray, optimizer) -> RoundResult:
        if self.state is None:
            self.start()
        st, cfg = self.state, self.cfg
        rng = stream(cfg.run.seed, "round", t)
        # the adversary draws from its own stream, so an attack never shifts the honest randomness of a round
        adversary_rng = stream(cfg.run.seed, "adversary", t)
        inventory, nodes = self._views(t)
        decision = self.policy(inventory, nodes, rng)
        out = self._execute(decision, rng)
        participants = np.sort(decision.participants)
        m = participants.size

        # learning layer: local gradients on minibatches (Byzantine shards may be poisoned)
        tr = cfg.training
        batches = self.minibatches(participants, rng)
        losses = np.zeros(0)
        grads = np.zeros((0, self.spec.n_params))
        if m:
            losses, grads = self.local_gradients(theta, participants, batches, rng)
            if t % cfg.model.qfi_refresh_every == 0:
                thetas = np.broadcast_to(theta, (m, theta.size))
                st.qfi[participants] = self.model.qfi_summary(
                    thetas, self.x_probe, noise=self.node_noise(participants)
                )
        byz = self.is_byzantine[participants]
        updates = grads.copy()
        if byz.any() and (~byz).any():
            bad = self.adversary.updates(grads[~byz], int(byz.sum()), adversary_rng)
            if bad is not None:
                updates[byz] = bad

        # payload pairs, fidelity at use, verification tests
        pairs = out["pairs"]
        n_need = self.spec.n_params * self.copies
        w_pay = [pairs["payload"][k] for k in participants]
        complete = (
            np.array([w.size >= n_need for w in w_pay], bool) if self.copies else np.ones(m, bool)
        )
        vis = np.array([w.mean() if w.size else 0.0 for w in w_pay]) if self.copies else np.ones(m)
        tested, errors, sizes = [], [], []
        for k in participants:
            wv = pairs["verification"][k]
            if wv.size:
                rec = sample_honest_test(float(wv.mean()), int(wv.size), rng)
                tested.append(k)
                errors.append(int(np.sum(rec.errors)))
                sizes.append(int(wv.size))
        if tested:  # one vectorised interval computation for every tested link
            est = estimate_fidelity(
                np.array(errors),
                np.array(sizes),
                confidence=cfg.security.verification_confidence,
                bound=cfg.security.verification_bound,
            )
            st.fid_estimate[tested] = est.estimate
            st.fid_upper[tested] = est.upper

        # stamps (Byzantine claims inflated by stamp attacks), tagged replies, channel attacks
        shots = tr.shots or 1
        claim_fid = np.clip(_fidelity(np.clip(vis, 0, 1)), 0.25, 1.0)
        # what an honest node claims: the ledger fidelity of its payload pairs
        claim_fid_ledger = claim_fid.copy()
        claim_qfi = st.qfi[participants].copy()
        if byz.any():
            c = self.adversary.claims(StampClaims(fidelity=claim_fid[byz], qfi=claim_qfi[byz]))
            claim_fid[byz], claim_qfi[byz] = c.fidelity, c.qfi
        stamps = [
            FidelityStamp(
                node=int(k),
                round=t,
                phi=float(shots * claim_qfi[i] * ((4 * claim_fid[i] - 1) / 3) ** 2),
                qfi=float(claim_qfi[i]),
                fidelity=float(claim_fid[i]),
                shots=int(shots),
                nonce=int(st.macs[int(k)].next_seq).to_bytes(8, "big"),
            )
            for i, k in enumerate(participants)
        ]
        accepted = complete.copy()
        reasons: dict[int, str] = {i: _INCOMPLETE for i in np.flatnonzero(~complete)}
        observed = []
        for i, k in enumerate(participants):
            if not complete[i]:
                continue
            try:
                wire = Signer(int(k), st.macs[int(k)]).sign(t, stamps[i].to_bytes(), updates[i])
            except KeyExhaustedError as err:
                st.verifier.record_unsent(int(k), t, err)
                accepted[i] = False
                reasons[i] = _KEY_DRY
                continue
            observed.append(wire)
            verdict = st.verifier.verify(wire, round=t, payload=updates[i])
            if verdict.reason is not Reason.ACCEPTED:
                accepted[i] = False
                reasons[i] = verdict.reason.value
        honest_nodes = tuple(int(k) for k in range(tr.nodes) if not self.is_byzantine[k])
        injected = self.adversary.inject(
            ChannelView(
                round=t,
                observed=tuple(observed),
                history=tuple(st.history[-200:]),
                honest_nodes=honest_nodes,
                byzantine_nodes=tuple(int(b) for b in self.byzantine),
            ),
            adversary_rng,
        )
        injected_accepted = sum(
            st.verifier.verify(w, round=t).reason is Reason.ACCEPTED for w in injected
        )
        st.history.extend(observed)

        # quantum payload delivery: teleport, measure, rescale by the ledger visibility
        received = updates.copy()
        G = cfg.broker.clip
        if self.copies:
            # each payload's scale s (<= G) travels in its authenticated envelope (see ceas.broker.payload)
            scale = payload_scale(updates, G, cfg.broker.payload_scale) if m else np.zeros(0)
            for i in np.flatnonzero(accepted):
                w = w_pay[i][:n_need]
                comp = np.arange(n_need) % self.spec.n_params
                z = encode(updates[i], G, scale[i])[comp]
                plus = rng.random(n_need) < 0.5 * (1.0 + w * z)
                sums = np.bincount(comp, weights=2.0 * plus - 1.0, minlength=self.spec.n_params)
                received[i] = scale[i] * sums / self.copies / max(vis[i], 1e-9)

        # stamp verification and robust fidelity-weighted aggregation
        update = None
        weights = np.zeros(m)
        if m:
            measured = st.fid_estimate[participants]
            bound = np.maximum(st.fid_upper[participants], measured)
            qfi_cap = np.asarray(self.qfi_max, float)[participants]
            if cfg.broker.tight_claims:
                measured, bound, qfi_cap = tighten_claims(
                    measured,
                    bound,
                    qfi_cap,
                    np.array([s.qfi for s in stamps]),
                    ledger_fidelity=claim_fid_ledger if self.copies else None,
                )
            ver = verify_stamps(
                stamps,
                measured,
                bound,
                qfi_cap,
                assigned_shots=shots,
                current_round=t,
            )
            phi = np.where(ver.accepted, ver.phi, 0.0)
            accepted &= ver.accepted
            result = self.aggregation.aggregate(received, phi, accepted=accepted, reasons=reasons)
            update, weights = result.update, result.weights
            ok = result.accepted
            st.phi[participants] = np.where(phi > 0, phi, st.phi[participants])
            st.phi_visibility[participants] = np.where(
                vis > 0, np.clip(vis, 1e-6, 1), st.phi_visibility[participants]
            )
            if update is not None and ok.any():
                st.trust.update(participants[ok], received[ok], update)
            # a reply the network failed to carry (payload short, no key for its tag) says nothing about the node's
            # honesty: only replies rejected by authentication, stamp verification or the rule cost trust
            missed = np.array([reasons.get(i) in _NETWORK_MISSES for i in range(m)], bool)
            if (~ok & ~missed).any():
                st.trust.penalize(participants[~ok & ~missed])
        new_theta = theta if update is None else optimizer.update(theta, update)

        # accounting (SPEC §5): utilisation = pairs whose work was used / pairs generated
        pay_used = (
            int(sum(min(w_pay[i].size, n_need) for i in np.flatnonzero(accepted)))
            if self.copies
            else 0
        )
        pay_all = int(sum(w.size for w in w_pay))
        ver_used = int(sum(pairs["verification"][k].size for k in participants))
        tot = st.totals
        tot["generated"] += out["generated"]
        tot["expired"] += out["expired"]
        tot["evicted"] += out["evicted"]
        tot["key_bits_in"] += out["key_bits"]
        tot["key_bits_out"] += TAG_BITS * len(observed)
        key_share = (
            min(1.0, tot["key_bits_out"] / tot["key_bits_in"]) if tot["key_bits_in"] else 0.0
        )
        tot["used"] += pay_used + ver_used
        tot["key_pairs"] = tot.get("key_pairs", 0.0) + out["key_pairs"]
        utilisation = (
            (tot["used"] + key_share * tot["key_pairs"]) / tot["generated"]
            if tot["generated"]
            else 0.0
        )
        honest_mask = ~self.is_byzantine[participants]
        # gradient variance (SPEC §8): squared distance of the aggregate from the honest full-batch gradient
        _, g_full = self.model.loss_and_grad(
            theta[None, :],
            self.data.x_train[None],
            self.data.y_train[None],
            noise=None,
            shots=None,
            rng=None,
        )
        agg_err = float(np.mean((update - g_full[0]) ** 2)) if update is not None else math.nan
        row: dict[str, Any] = {
            "round": t,
            "train_loss": float(np.mean(losses[honest_mask]))
            if honest_mask.any()
            else float("nan"),
            "grad_norm": float(np.linalg.norm(update)) if update is not None else 0.0,
            "aggregate_mse": agg_err,
            "participants": int(m),
            "byzantine_participants": int(byz.sum()),
            "accepted": int(accepted.sum()),
            "byzantine_weight": float(weights[byz].sum()) if m else 0.0,
            "rejected_injected": int(len(injected) - injected_accepted),
            "pairs_generated": out["generated"],
            "pairs_expired": out["expired"],
            "pairs_evicted": out["evicted"],
            "payload_pairs": pay_all,
            "verification_pairs": ver_used,
            "key_pairs": out["key_pairs"],
            "key_bits": out["key_bits"],
            "fidelity_at_use": float(np.mean(_fidelity(np.concatenate(w_pay))))
            if pay_all
            else float("nan"),
            "latency_s": float(np.mean(out["arrival_s"][participants])) if m else 0.0,
            "utilisation": float(utilisation),
            "pairs_held": int(st.network.view().held.sum()),
        }
        if (t + 1) % cfg.training.eval_every == 0 or t + 1 == cfg.run.rounds:
            row.update(self.evaluate(new_theta))
        else:
            row.update({"test_accuracy": math.nan, "test_loss": math.nan})
        return RoundResult(theta=new_theta, metrics=row)
