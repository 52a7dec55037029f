"""Baseline predictors of cellular-automata targets, and the triviality of each target: what a depth curve must be
read against. All vectorised over examples, numpy only.

    copy_last         the last given state
    period            if the last given state repeats an earlier one, s_{n-1} = s_{n-1-p}, the orbit is periodic from
                      there on (the dynamics are deterministic) and is continued; otherwise copy_last
    step_then_period  rule given (RO-S, RO-O): apply the rule once, then `period` on the extended orbit
    rule_lookup       rule inferred (O-S, O-O, O-SR): the truth-table entries seen in the given transitions, unseen
                      entries set to the majority of the seen outputs, applied k times: all the rule the orbit shows,
                      used with perfect depth (a ceiling for inference, not a floor)

A target state is trivial when it equals one of the given states: a rule-free predictor (copy_last, or period,
whose continuation is always a given state) can get it right. Depth curves are read on the non-trivial stratum. A
target is fresh when it equals no state of its orbit before it, given or passed through on the way (s_0 .. s_{t-1}
for the target s_t): on a small periodic grid orbits fall into cycles, and a far target that repeats a nearer one
measures the period, not the depth. Fresh targets are non-trivial.
"""

from __future__ import annotations

import numpy as np

from .ca_rules import evolve, neighbourhoods, radius_of
from .core.rng import pack_bits

RULE_FREE = ("copy_last", "period")


def copy_last(given: np.ndarray, k: np.ndarray) -> np.ndarray:
    """given (n, T, W), k (n, R) look-aheads -> predicted states (n, R, W)."""
    return np.repeat(given[:, -1:, :], k.shape[1], axis=1)


def period(given: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The orbit continued with the shortest period p such that s_{T-1} = s_{T-1-p}, else copy_last.

    From index a = T-1-p on the orbit repeats with period p, so s_{T-1+k} = s_{a + (k mod p)}."""
    n, t_len, _ = given.shape
    found = np.zeros(n, np.int64)  # 0: no period
    for p in range(t_len - 1, 0, -1):  # the shortest wins: it is written last
        found = np.where((given[:, -1] == given[:, -1 - p]).all(-1), p, found)
    p = np.maximum(found, 1)[:, None]
    index = np.where(found[:, None] > 0, t_len - 1 - p + k % p, t_len - 1)
    return np.take_along_axis(given, index[..., None], axis=1)


def step_then_period(given: np.ndarray, k: np.ndarray, tables: np.ndarray) -> np.ndarray:
    """Apply the given rule once to the last state, then `period` on the orbit extended by that state."""
    nxt = evolve(given[:, -1], tables, 2)[:, 1]
    return period(np.concatenate([given, nxt[:, None]], axis=1), k - 1)


def inferred_tables(given: np.ndarray, size: int) -> np.ndarray:
    """The truth table an orbit shows: entries seen in its transitions s_t -> s_t+1, the others the majority of the
    seen outputs (0 on a tie, or when no transition is given)."""
    n, t_len, w = given.shape
    r = radius_of(size)
    seen = np.zeros((n, size), bool)
    table = np.zeros((n, size), np.uint8)
    rows = np.broadcast_to(np.arange(n)[:, None], (n, w))
    for t in range(t_len - 1):
        v = neighbourhoods(given[:, t], r)
        seen[rows, v] = True
        table[rows, v] = given[:, t + 1]
    ones, counts = (table * seen).sum(1), seen.sum(1)
    majority = (2 * ones > counts).astype(np.uint8)
    return np.where(seen, table, majority[:, None]).astype(np.uint8)


def rule_lookup(given: np.ndarray, k: np.ndarray, size: int) -> np.ndarray:
    """The inferred table applied k times from the last given state."""
    orbit = evolve(given[:, -1], inferred_tables(given, size), int(k.max()) + 1)  # (n, kmax + 1, W)
    return np.take_along_axis(orbit, k[..., None], axis=1)


def predict(name: str, given: np.ndarray, k: np.ndarray, tables: np.ndarray | None, size: int) -> np.ndarray:
    """Predicted target states (n, R, W) of baseline `name`; `tables` is the given rule (RO tasks) or None."""
    if name == "copy_last":
        return copy_last(given, k)
    if name == "period":
        return period(given, k)
    if name == "step_then_period":
        return step_then_period(given, k, tables)
    if name == "rule_lookup":
        return rule_lookup(given, k, size)
    raise ValueError(f"unknown baseline {name!r}")


def trivial(given: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(n, R) bool: target state r of example i equals one of its given states."""
    return (given[:, None, :, :] == targets[:, :, None, :]).all(-1).any(-1)


def fresh(states: np.ndarray, target_index: np.ndarray) -> np.ndarray:
    """(n, R) bool: target r of example i, the state states[i, target_index[i, r]], equals none of the states before
    it in the orbit. States are compared as packed words (64 cells a word), not cell by cell."""
    words = pack_bits(np.ascontiguousarray(states, np.uint8))  # (n, T, n_words)
    targets = np.take_along_axis(words, target_index[..., None], axis=1)  # (n, R, n_words)
    same = (words[:, None, :, :] == targets[:, :, None, :]).all(-1)  # (n, R, T)
    before = np.arange(words.shape[1])[None, None, :] < target_index[..., None]
    return ~(same & before).any(-1)
