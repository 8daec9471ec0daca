"""Monte Carlo: the expired and evicted fractions with no demand equal their analytic values within 3 sigma.

With identical links and no consumption, a pair heralded at t expires iff fewer than M further pairs are heralded
before its cutoff age a (otherwise the M-th of them evicts it, first-in-first-out). Those are the successes among
the K = ceil(a/tau) - 1 attempts strictly inside (t, t + a), so

    P(expire) = P(Binomial(K, p) <= M - 1).

After the first a seconds the memory state depends only on the last a seconds of arrivals, so it is stationary and
fates resolved in a later interval estimate this probability without censoring at either end. The 50 links are
independent; the standard error comes from their spread.
"""

import math

import numpy as np
import pytest
from scipy import stats

from ceas.network import LinkParams, MemoryParams, QuantumNetwork, TopologyParams
from ceas.network.topology import assign_coherence, star_topology


def _identical_star(n_links, length_km, t_coh_s, rng):
    params = TopologyParams(n_nodes=n_links, length_min_km=length_km, length_max_km=length_km)
    G = star_topology(params, rng)
    return assign_coherence(G, MemoryParams(coherence_min_s=t_coh_s, coherence_max_s=t_coh_s), rng)


@pytest.mark.parametrize(
    ("t_coh_s", "slots", "eviction"),
    [(0.26, 20, "oldest"), (0.26, 20, "lowest_fidelity"), (0.1, 5, "oldest"), (0.4, 20, "oldest")],
)
def test_expired_fraction_matches_binomial_law(t_coh_s, slots, eviction):
    rng = np.random.default_rng(2024)
    G = _identical_star(50, 20.0, t_coh_s, rng)
    memory = MemoryParams(slots=slots, eviction=eviction)
    net = QuantumNetwork(G, LinkParams(), memory, rng)
    a = float(net.table.cutoff_s[0])
    tau = float(net.table.attempt_s[0])
    p = float(net.table.p_success[0])
    assert abs(a / tau - round(a / tau)) > 1e-6  # no attempt exactly at the cutoff age
    K = math.ceil(a / tau) - 1
    p_expire = stats.binom.cdf(slots - 1, K, p)

    net.advance(a + 0.05)  # burn-in: the state is stationary from t = a on
    before = net.counters()
    pairs_per_link = 2000
    net.advance(pairs_per_link / net.table.rate_hz[0])
    after = net.counters()
    expired = after.expired - before.expired
    evicted = after.evicted - before.evicted
    assert (expired + evicted).sum() >= 95_000  # ~10^5 pairs resolved
    frac = expired / (expired + evicted)
    se = frac.std(ddof=1) / math.sqrt(frac.size)
    assert se < 0.01  # the test has power
    assert abs(frac.mean() - p_expire) < 3 * se, (frac.mean(), p_expire, se)


def test_without_cutoff_every_pair_is_evicted_or_held():
    rng = np.random.default_rng(7)
    G = _identical_star(10, 10.0, 0.3, rng)
    net = QuantumNetwork(G, LinkParams(), MemoryParams(f_min=0.25), rng)
    assert np.all(np.isinf(net.table.cutoff_s))
    net.advance(2.0)
    c = net.counters()
    assert c.expired.sum() == 0
    assert np.all(c.held == net.capacity)
    assert np.all(c.evicted == c.generated - net.capacity)


def test_pairs_below_f_min_at_birth_expire_at_once():
    rng = np.random.default_rng(8)
    G = _identical_star(5, 10.0, 0.3, rng)
    net = QuantumNetwork(G, LinkParams(theta=0.25), MemoryParams(f_min=0.8), rng)  # F0 = 0.75 < 0.8
    net.advance(1.0)
    c = net.counters()
    assert c.generated.min() > 0
    assert np.array_equal(c.expired, c.generated) and c.held.sum() == 0 and c.evicted.sum() == 0
