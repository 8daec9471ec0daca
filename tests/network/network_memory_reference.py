"""A plain event-by-event simulation of link memories: the reference for ``ceas.network.memory``.

It processes one arrival at a time, exactly as the memory rules read: at each arrival, stored pairs whose expiry
has come leave (expired); a newcomer whose own expiry has come never enters; if all slots are taken the policy's
victim among the stored pairs and the newcomer is evicted (under ``block``, always the newcomer). At the end of the window, pairs whose expiry has come
expire. Slow and obviously right; the vectorised policies must agree with it exactly.
"""

from __future__ import annotations

import numpy as np


def reference_resolve(window, policy: str):
    L, M = window.occupied.shape
    start_evicted = np.zeros((L, M), bool)
    start_expired = np.zeros((L, M), bool)
    n = window.time_s.size
    arrival_evicted = np.zeros(n, bool)
    arrival_expired = np.zeros(n, bool)

    def key(item):
        created, expiry, pid = item[2], item[3], item[4]
        if policy == "oldest":
            return (created, pid)
        return (expiry, created, pid)

    for link in range(L):
        held = []  # (kind, index, created, expiry, id)
        for slot in range(M):
            if window.occupied[link, slot]:
                held.append(
                    (
                        "s",
                        slot,
                        float(window.created_s[link, slot]),
                        float(window.expiry_s[link, slot]),
                        int(window.pair_id[link, slot]),
                    )
                )
        for g in range(window.offsets[link], window.offsets[link + 1]):
            t = float(window.time_s[g])
            e = float(window.arrival_expiry_s[g])
            keep = []
            for item in held:
                if item[3] <= t:
                    _mark(item, start_expired, arrival_expired, link)
                else:
                    keep.append(item)
            held = keep
            new = ("a", g, t, e, 10**12 + g)
            if e <= t:
                arrival_expired[g] = True
                continue
            if len(held) == M:
                victim = new if policy == "block" else min(held + [new], key=key)
                _mark(victim, start_evicted, arrival_evicted, link)
                if victim is new:
                    continue
                held.remove(victim)
            held.append(new)
        for item in held:
            if item[3] <= window.t_end_s:
                _mark(item, start_expired, arrival_expired, link)
    return start_evicted, start_expired, arrival_evicted, arrival_expired


def _mark(item, start_arr, arrival_arr, link):
    if item[0] == "s":
        start_arr[link, item[1]] = True
    else:
        arrival_arr[item[1]] = True
