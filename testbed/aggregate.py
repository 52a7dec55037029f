"""Outcomes (metrics.py) into rows of results with 95 % intervals (intervals.py): per seed (over rules) and over
seeds (over seeds and rules), overall and on the non-trivial stratum, and paired differences between two
configurations scored on the same seeds and examples.

A row is one configuration (or baseline) x split x iteration count x example set x slice value; its columns:

    exact_match, exact_match_lo, exact_match_hi                   every unit
    exact_match_nontrivial, exact_match_nontrivial_lo, ..._hi     units a rule-free predictor misses
    cell_accuracy[_nontrivial][_lo | _hi]                         the same for per-cell accuracy
    n, n_nontrivial, nontrivial_fraction, n_rules, n_seeds, seeds, mean_steps
"""

from __future__ import annotations

import numpy as np

from . import intervals
from .metrics import select

METRICS = {"exact_match": ("exact", None), "cell_accuracy": ("correct", "cells")}
STRATA = ("", "_nontrivial")
METRIC_COLUMNS = [f"{m}{s}{b}" for m in METRICS for s in STRATA for b in ("", "_lo", "_hi")]
COUNT_COLUMNS = ["n", "n_nontrivial", "nontrivial_fraction", "n_rules", "n_seeds", "seeds", "mean_steps"]


def keys(units: dict) -> list[tuple]:
    """(iterations, set_k, slice, value) of every row the units make, in order of appearance."""
    return list(dict.fromkeys(zip(units["iterations"].tolist(), units["set_k"].tolist(), units["slice"].tolist(),
                                  units["value"].tolist())))


def of_key(units: dict, key: tuple) -> np.ndarray:
    r, k, name, value = key
    return (units["iterations"] == r) & (units["set_k"] == k) & (units["slice"] == name) & (units["value"] == value)


def groups(units: dict) -> dict[tuple, np.ndarray]:
    """{key: indices of its units}, keys in order of appearance: one pass over the units (a recall task's slices
    run to hundreds of values over 10^5 units; masking once per key would cost keys x units)."""
    fields = ("iterations", "set_k", "slice", "value")
    code = np.zeros(len(units["slice"]), np.int64)
    uniques = []
    for name in fields:
        values, inverse = np.unique(units[name], return_inverse=True)
        code = code * len(values) + inverse.reshape(-1)
        uniques.append(values.tolist())
    order = np.argsort(code, kind="stable")
    starts = np.flatnonzero(np.r_[True, code[order][1:] != code[order][:-1]])
    out = {}
    for idx in sorted(np.split(order, starts[1:]), key=lambda i: i[0]) if len(order) else []:
        c = int(code[idx[0]])
        parts = []
        for values in reversed(uniques):
            c, j = divmod(c, len(values))
            parts.append(values[j])
        out[tuple(reversed(parts))] = idx
    return out


def stats(units_by_seed: list[dict]) -> dict:
    """The metric and count columns of one row from every seed's units of it, resampled over seeds and rules."""
    row = {}
    index, columns = intervals.cluster_index(units_by_seed)  # every column on the same cells: the same draws
    names, pairs = [], []
    for metric, (score, count) in METRICS.items():
        for stratum in STRATA:
            keep = (lambda u: ~u["trivial"]) if stratum else None
            names.append(f"{metric}{stratum}")
            pairs.append(intervals.sums(units_by_seed, index, columns, score, count, keep))
    for name, (est, lo, hi) in zip(names, intervals.bootstrap_many(pairs)):
        row[name], row[f"{name}_lo"], row[f"{name}_hi"] = est, lo, hi
    first = units_by_seed[0]
    nontrivial = int((~first["trivial"]).sum())
    steps = np.concatenate([u["steps"] for u in units_by_seed])
    cells = sum(int(u["cells"].sum()) for u in units_by_seed)
    n = len(first["exact"])
    row.update(n=n, n_nontrivial=nontrivial, nontrivial_fraction=nontrivial / max(n, 1),
               n_rules=int(np.unique(first["cluster"]).size), n_seeds=len(units_by_seed),
               mean_steps=float(np.nansum(steps) / cells) if np.isfinite(steps).any() else "")
    return row


def rows(units_by_seed: list[dict], split: str = "test") -> list[dict]:
    """Rows over the given seeds' units (all of one source): one per key any seed has."""
    if not units_by_seed:
        return []
    grouped = [groups(u) for u in units_by_seed]
    out = []
    for key in dict.fromkeys(k for g in grouped for k in g):
        r, k, name, value = key
        present = [select(u, g[key]) for u, g in zip(units_by_seed, grouped) if key in g]
        out.append({"split": split, "iterations": r or "", "slice": name, "value": "" if name == "all" else value,
                    "k": value if name == "k" else (k or ""), **stats(present)})
    return out


def aligned(a: list[dict], b: list[dict], key_a: tuple, key_b: tuple) -> bool:
    """Whether two configurations' units of these keys cover the same examples in every seed (pairable)."""
    for ua, ub in zip(a, b):
        sa, sb = select(ua, of_key(ua, key_a)), select(ub, of_key(ub, key_b))
        if not (np.array_equal(sa["index"], sb["index"]) and np.array_equal(sa["cluster"], sb["cluster"])):
            return False
    return True


def paired_difference(a: list[dict], b: list[dict], key_a: tuple, key_b: tuple, metric: str = "exact_match",
                      nontrivial: bool = True) -> dict:
    """Configuration a minus configuration b, seed by seed on the same examples (common random numbers):
    {difference, lo, hi, n_seeds}. `a` and `b` hold the units of the same seeds, in the same order."""
    if len(a) != len(b) or not aligned(a, b, key_a, key_b):
        raise ValueError("a paired difference needs the same seeds and test examples on both sides")
    score, count = METRICS[metric]

    def sums(units, key):
        return intervals.cell_sums(units, score, count,
                                   lambda u: of_key(u, key) & (~u["trivial"] if nontrivial else True))

    est, lo, hi = intervals.paired(sums(a, key_a), sums(b, key_b))
    return {"difference": est, "lo": lo, "hi": hi, "n_seeds": len(a)}
