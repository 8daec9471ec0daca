"""The verifier of the ablation "CEAS without authentication" (security.authentication = false)."""

from __future__ import annotations

import numpy as np
from security_helpers import StubKeyPool


def test_verifier_without_authentication_checks_headers_only():
    from ceas.security.attacks import ChannelView, Forgery, Impersonation, Replay
    from ceas.security.mac import OneTimeMac
    from ceas.security.messages import Reason, Signer, Verifier

    macs = {k: OneTimeMac(StubKeyPool(4096, seed=k)) for k in range(4)}
    verifier = Verifier(macs, authenticate=False)
    wires = tuple(Signer(k, macs[k]).sign(0, b"s", np.full(2, float(k))) for k in range(4))
    assert all(v.accepted for v in verifier.verify_many(wires, round=0))
    view = ChannelView(0, wires, (), (0, 1, 2), (3,))
    rng = np.random.default_rng(0)
    # a guessed tag passes, the header checks still hold: a verbatim replay reuses an accepted nonce
    assert all(v.accepted for v in verifier.verify_many(Forgery(1).inject(view, rng), round=0))
    # a re-addressed message keeps its nonce: accepted unless the victim already used that nonce (every link's
    # first nonce is 0 here, so a header check, not a tag, turns it away)
    got = verifier.verify_many(Impersonation(3).inject(view, rng), round=0)
    assert {v.reason for v in got} <= {Reason.ACCEPTED, Reason.REPLAY}
    fresh = Signer(3, macs[3]).sign(
        0, b"s", np.zeros(2)
    )  # nonce 1 of node 3, re-addressed to node 0
    fake = Impersonation(1).inject(ChannelView(0, (fresh,), (), (0,), (3,)), rng)
    assert verifier.verify(fake[0], round=0).accepted
    assert {v.reason for v in verifier.verify_many(Replay(3).inject(view, rng), round=0)} == {
        Reason.REPLAY
    }
    assert verifier.verify(wires[0], round=1).reason is Reason.STALE_ROUND
