"""Key pools never re-issue material; BBM92 yield follows sifting x (1 - 2h(e)) and is zero above 11 % QBER."""

import math

import numpy as np
import pytest

from ceas.errors import ProtocolError, ValidationError
from ceas.network import KeyPool, NetworkParams, QuantumNetwork, TopologyParams
from ceas.network.qkd import bbm92
from ceas.network.werner import binary_entropy, qber, werner_bell_vector


def test_take_hands_out_the_deposited_stream_in_order_exactly_once():
    pool = KeyPool(np.random.default_rng(0))
    pool.deposit(13, rng=np.random.default_rng(1))
    pool.deposit(27, rng=np.random.default_rng(2))
    pool.deposit(100, rng=np.random.default_rng(3))
    bits = np.concatenate(
        [
            np.random.default_rng(s).integers(0, 2, size=n, dtype=np.uint8)
            for s, n in ((1, 13), (2, 27), (3, 100))
        ]
    )
    assert pool.available_bits == 140 and pool.available_bytes == 17
    taken = pool.take(5) + pool.take(12)
    assert taken == np.packbits(bits[:136]).tobytes()
    assert pool.available_bits == 4 and pool.taken_bits == 136
    with pytest.raises(ProtocolError, match="key pool holds 0 bytes"):
        pool.take(1)
    assert pool.available_bits == 4  # a refused take consumes nothing
    pool.deposit(4, rng=np.random.default_rng(4))
    last = np.concatenate(
        [bits[136:], np.random.default_rng(4).integers(0, 2, size=4, dtype=np.uint8)]
    )
    assert pool.take(1) == np.packbits(last).tobytes()


def test_preshared_seed_key_and_argument_checks():
    pool = KeyPool(np.random.default_rng(0), preshared_bits=4096)
    assert pool.available_bits == 4096 and pool.preshared_bits == 4096
    chunks = [pool.take(16) for _ in range(32)]
    assert len(set(chunks)) == 32  # 128-bit pads, all different
    with pytest.raises(ProtocolError):
        pool.take(16)
    with pytest.raises(ValidationError, match="n_bytes must be an integer in"):
        pool.take(0)
    with pytest.raises(ValidationError, match="n_bits must be an integer in"):
        pool.deposit(-3)


def test_key_bits_are_uniform():
    pool = KeyPool(np.random.default_rng(9), preshared_bits=800_000)
    bits = np.unpackbits(np.frombuffer(pool.take(100_000), dtype=np.uint8))
    assert abs(bits.mean() - 0.5) < 3 * 0.5 / math.sqrt(bits.size)


@pytest.mark.parametrize("fidelity", [0.99, 0.97, 0.93, 0.9])
def test_bbm92_yield_follows_one_minus_twice_binary_entropy(fidelity):
    n = 200_000
    e = float(qber(fidelity))
    result = bbm92(np.tile(werner_bell_vector(fidelity), (n, 1)), np.random.default_rng(31))
    # sifting 1/2 within 3 sigma; QBER within 3 sigma of 2(1 - F)/3
    assert abs(result.sifted - n / 2) < 3 * math.sqrt(n / 4)
    assert abs(result.qber - e) < 3 * math.sqrt(e * (1 - e) / result.sifted)
    r = 1 - 2 * float(binary_entropy(e))
    expected = n / 2 * r
    # delta method: var = r^2 var(sifted) + sifted^2 (2 log2((1-e)/e))^2 e(1-e)/sifted
    slope = 2 * math.log2((1 - e) / e)
    sd = math.sqrt(r**2 * n / 4 + (n / 2) * slope**2 * e * (1 - e))
    assert abs(result.secret_bits - expected) < 3 * sd
    assert result.secret_bits == math.floor(result.sifted * result.secret_fraction + 1e-9)


@pytest.mark.parametrize("fidelity", [0.82, 0.8, 0.6, 0.25])
def test_no_key_above_eleven_percent_qber(fidelity):
    assert qber(fidelity) > 0.11
    result = bbm92(np.tile(werner_bell_vector(fidelity), (50_000, 1)), np.random.default_rng(2))
    assert result.qber > 0.11 and result.secret_bits == 0 and result.secret_fraction == 0.0


def test_bbm92_with_bell_diagonal_pairs_uses_each_basis_error_rate():
    # pure bit flips (psi+): errors in Z only; pure phase flips (phi-): errors in X only
    lam = np.array([0.9, 0.0, 0.1, 0.0])
    result = bbm92(np.tile(lam, (100_000, 1)), np.random.default_rng(3))
    assert abs(result.qber - 0.05) < 3 * math.sqrt(0.05 * 0.95 / result.sifted)


def test_nothing_sifted_gives_no_key():
    r = bbm92(np.zeros((0, 4)), np.random.default_rng(0))
    assert r.sifted == 0 and r.secret_bits == 0 and math.isnan(r.qber)


def test_network_distillation_feeds_the_pool_over_time():
    net = QuantumNetwork.from_params(
        NetworkParams(topology=TopologyParams(n_nodes=2, length_min_km=5, length_max_km=5)),
        np.random.default_rng(4),
    )
    total = 0
    for _ in range(200):
        net.advance(0.01)
        n = int(net.view().held[0])
        if n:
            total += net.distill_key(0, n, order="freshest").secret_bits
    assert total > 0 and net.key_pool(0).available_bits == total
    assert net.key_pool(0).taken_bits == 0
