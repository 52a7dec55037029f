"""Outcomes (metrics.py) into rows of results with 95 % intervals (intervals.py): per seed (over held-out classes)
and over seeds (over seeds and classes), overall and on the non-trivial and fresh strata, and paired differences
between two configurations scored on the same seeds and examples.

A row is one configuration (or baseline) x split x iteration count x example set x slice value; its columns:

    exact_match, exact_match_lo, exact_match_hi                   every unit
    exact_match_nontrivial, exact_match_nontrivial_lo, ..._hi     units whose target is no given state (a
                                                                  rule-free predictor misses them)
    exact_match_fresh, exact_match_fresh_lo, ..._hi               units whose target is no state the orbit showed
                                                                  before it, given or passed through (tasks with a
                                                                  depth axis; empty elsewhere)
    cell_accuracy[_nontrivial | _fresh][_lo | _hi]                the same for per-cell accuracy
    n, n_nontrivial, nontrivial_fraction, n_fresh                 examples in each stratum (of one seed)
    n_classes, n_classes_nontrivial, n_classes_fresh, n_rules     held-out symmetry classes (the intervals' unit)
                                                                  and rules they rest on (tasks with rules)
    n_seeds, seeds, mean_steps

A stratum of fewer than MIN_UNITS examples or MIN_CLASSES classes is reported without an interval: the method's
coverage is checked from six classes on (tests/test_intervals.py), and two or three classes say little about the next.
"""

from __future__ import annotations

import numpy as np

from ..metrics import select
from . import intervals

METRICS = {"exact_match": ("exact", None), "cell_accuracy": ("correct", "cells")}
STRATA = {"": None, "_nontrivial": lambda u: ~u["trivial"], "_fresh": lambda u: u["fresh"]}
STRATUM_NAMES = {"all": "", "nontrivial": "_nontrivial", "fresh": "_fresh"}  # as options name them
METRIC_COLUMNS = [f"{m}{s}{b}" for m in METRICS for s in STRATA for b in ("", "_lo", "_hi")]
COUNT_COLUMNS = ["n", "n_nontrivial", "nontrivial_fraction", "n_fresh", "n_classes", "n_classes_nontrivial",
                 "n_classes_fresh", "n_rules", "n_seeds", "seeds", "mean_steps"]
MIN_UNITS, MIN_CLASSES = 20, 5  # a stratum with fewer examples or held-out classes gets no interval


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


def has_classes(units: dict) -> bool:
    """Whether the task's clusters are classes of rules (cellular automata), not its examples."""
    return "member" in units and bool((units["member"] >= 0).any())


def supported(units: dict, keep) -> bool:
    """Whether a stratum of one seed's units holds enough examples (and held-out classes) for an interval."""
    selected = keep(units) if keep is not None else np.ones(len(units["exact"]), bool)
    if int(selected.sum()) < MIN_UNITS:
        return False
    return not has_classes(units) or np.unique(units["cluster"][selected]).size >= MIN_CLASSES


def stats(units_by_seed: list[dict]) -> dict:
    """The metric and count columns of one row from every seed's units of it, over seeds and held-out classes."""
    row = {}
    first = units_by_seed[0]
    classes = has_classes(first)
    for stratum, keep in STRATA.items():
        if stratum == "_fresh" and "fresh" not in first:  # a task without a depth axis (or outcomes from before)
            row.update({f"{m}{stratum}{b}": "" for m in METRICS for b in ("", "_lo", "_hi")})
            continue
        enough = stratum == "" or supported(first, keep)
        for metric, (score, count) in METRICS.items():
            est, lo, hi = intervals.ratio(units_by_seed, score, count, keep)
            row[f"{metric}{stratum}"] = est
            row[f"{metric}{stratum}_lo"], row[f"{metric}{stratum}_hi"] = (lo, hi) if enough else ("", "")
        if classes:
            selected = keep(first) if keep is not None else slice(None)
            row[f"n_classes{stratum}"] = int(np.unique(first["cluster"][selected]).size)
    nontrivial = int((~first["trivial"]).sum())
    steps = np.concatenate([u["steps"] for u in units_by_seed])
    cells = sum(int(u["cells"].sum()) for u in units_by_seed)
    n = len(first["exact"])
    row.update(n=n, n_nontrivial=nontrivial, nontrivial_fraction=nontrivial / max(n, 1),
               n_fresh=int(first["fresh"].sum()) if "fresh" in first else "",
               n_rules=int(np.unique(first["member"]).size) if classes else "", n_seeds=len(units_by_seed),
               mean_steps=float(np.nansum(steps) / cells) if np.isfinite(steps).any() else "")
    for stratum in STRATA:
        row.setdefault(f"n_classes{stratum}", "")
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
                      stratum: str = "_nontrivial") -> dict:
    """Configuration a minus configuration b, seed by seed on the same examples (common random numbers):
    {difference, lo, hi, n_seeds}. `a` and `b` hold the units of the same seeds, in the same order."""
    if len(a) != len(b) or not aligned(a, b, key_a, key_b):
        raise ValueError("a paired difference needs the same seeds and test examples on both sides")
    score, count = METRICS[metric]
    keep = STRATA[stratum]

    def selected(key):
        return lambda u: of_key(u, key) & (keep(u) if keep is not None else True)

    est, lo, hi = intervals.paired(a, b, score, count, selected(key_a), selected(key_b))
    return {"difference": est, "lo": lo, "hi": hi, "n_seeds": len(a)}
