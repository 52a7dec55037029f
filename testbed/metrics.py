"""Scoring: predictions against targets, one outcome per unit (an example within a slice), and rates from outcomes.

A slice groups the scored positions of an example (for CA: how many steps ahead a target cell lies, k; for MQAR:
the number of pairs); the `all` slice groups every scored position of the example. Each unit records its example
index, its cluster (the unit of generalisation intervals are taken over: the rule's symmetry class, for CA; the
example elsewhere), its member (the rule, for CA; -1 where a task has none), whether it is trivial (its target is a
given state: a rule-free predictor gets it), whether it is fresh (its target is no state the orbit showed before it;
tasks with a depth axis only), the correct and scored cells, exact match (every cell right) and the compute steps
an adaptive model spent on it. Rates are taken from the outcomes at the end, so units from many batches, processes
or seeds add up exactly, and intervals can resample them (intervals.py).
"""

from __future__ import annotations

import numpy as np

from generators.core import ConfigError

MODEL = "model"  # the source of a model's outcomes; a baseline's is "baseline:NAME"
UNIT_FIELDS = ("slice", "value", "index", "cluster", "trivial", "exact", "correct", "cells", "steps")
OPTIONAL_FIELDS = ("member", "fresh")  # absent from outcomes recorded before they existed (store.read_outcomes)


def slice_groups(arrays: dict, by: str | None = None) -> tuple[str, np.ndarray]:
    """(slice name, (n, L) group value per scored position, -1 elsewhere); `by` names a per-example key to slice by
    instead (e.g. rule_id)."""
    mask = np.asarray(arrays["loss_mask"])
    per_example = [k for k, v in arrays.items() if k not in ("inputs", "targets", "loss_mask") and np.ndim(v) == 1]
    if by is not None:
        if by not in per_example:
            keys = ", ".join(per_example) or "none"
            raise ConfigError(f"cannot slice by {by!r}: this task's per-example keys are {keys}")
        return by, np.where(mask, np.asarray(arrays[by], np.int64)[:, None], -1)
    if "step" in arrays and np.shape(arrays["step"]) == mask.shape:
        return "k", np.where(mask, np.asarray(arrays["step"], np.int64), -1)
    if per_example:
        return per_example[0], np.where(mask, np.asarray(arrays[per_example[0]], np.int64)[:, None], -1)
    return "all", np.where(mask, 0, -1)


def _units(right, groups, trivial, fresh, steps, slice_name: str, cluster, member, index) -> dict[str, np.ndarray]:
    """One unit per (example, group value) with at least one scored position."""
    scored = groups >= 0
    row_value = np.where(scored, groups, -1).max(axis=1)
    if ((groups == row_value[:, None]) | ~scored).all():  # one value per example (a fixed-k set, n_pairs, rule_id)
        values, masks = [None], [scored]
    else:  # several values per example (O-O: one per predicted state)
        values = np.unique(groups[scored]).tolist()
        masks = [groups == g for g in values]
    parts = []
    for g, mask in zip(values, masks):
        has = mask.any(axis=1)
        if not has.any():
            continue
        m = mask[has]
        parts.append({
            "slice": np.full(int(has.sum()), slice_name, dtype="<U16"),
            "value": row_value[has] if g is None else np.full(int(has.sum()), g, np.int64),
            "index": index[has],
            "cluster": cluster[has],
            "member": member[has],
            "trivial": (trivial[has] & m).any(axis=1) if trivial is not None else np.zeros(int(has.sum()), bool),
            **({"fresh": (fresh[has] | ~m).all(axis=1)} if fresh is not None else {}),
            "exact": (right[has] | ~m).all(axis=1),
            "correct": (right[has] & m).sum(axis=1).astype(np.int32),
            "cells": m.sum(axis=1).astype(np.int32),
            "steps": (np.where(m, steps[has], 0).sum(axis=1) if steps is not None
                      else np.full(int(has.sum()), np.nan)).astype(np.float32),
        })
    return concat(parts)


def outcomes(pred: np.ndarray, arrays: dict, cluster_key: str | None = None, by: str | None = None,
             index: np.ndarray | None = None, steps: np.ndarray | None = None,
             member_key: str | None = None) -> dict[str, np.ndarray]:
    """Units of a batch of predictions (n, L): those of the `all` slice and those of the task's own slices (or of
    the per-example key `by`). `cluster_key` and `member_key` name the per-example keys of the cluster and its
    members (CA: class_id and rule_id); `index` numbers the examples (default 0..n-1); `steps` (n, L): compute
    steps per position of an adaptive model."""
    targets, mask = np.asarray(arrays["targets"]), np.asarray(arrays["loss_mask"])
    n = len(targets)
    index = np.arange(n) if index is None else np.asarray(index)
    cluster = np.asarray(arrays[cluster_key], np.int64) if cluster_key else index.astype(np.int64)
    member = np.asarray(arrays[member_key], np.int64) if member_key else np.full(n, -1, np.int64)
    trivial = np.asarray(arrays["trivial"]).astype(bool) if "trivial" in arrays else None
    fresh = np.asarray(arrays["fresh"]).astype(bool) if "fresh" in arrays else None
    right = np.asarray(pred) == targets
    name, groups = slice_groups(arrays, by)
    every = _units(right, np.where(mask, 0, -1), trivial, fresh, steps, "all", cluster, member, index)
    every["value"] = np.full(len(every["value"]), -1, np.int64)
    return concat([every, _units(right, groups, trivial, fresh, steps, name, cluster, member, index)]
                  if name != "all" else [every])


def concat(parts: list[dict]) -> dict[str, np.ndarray]:
    parts = [p for p in parts if p]
    if not parts:
        return {}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def rate_row(units: dict[str, np.ndarray]) -> dict:
    """cell_accuracy, exact_match, n and their non-trivial versions (the units a rule-free predictor misses)."""
    nt = ~units["trivial"]
    row = {
        "cell_accuracy": float(units["correct"].sum() / max(units["cells"].sum(), 1)),
        "exact_match": float(units["exact"].mean()) if len(units["exact"]) else 0.0,
        "n": int(len(units["exact"])),
        "cell_accuracy_nontrivial": float(units["correct"][nt].sum() / units["cells"][nt].sum()) if nt.any() else None,
        "exact_match_nontrivial": float(units["exact"][nt].mean()) if nt.any() else None,
        "n_nontrivial": int(nt.sum()),
    }
    if "fresh" in units:  # a task with a depth axis: targets no state the orbit showed before them
        fr = units["fresh"]
        row["exact_match_fresh"] = float(units["exact"][fr].mean()) if fr.any() else None
        row["n_fresh"] = int(fr.sum())
    if np.isfinite(units["steps"]).any():  # an adaptive model: mean compute steps per scored cell
        row["mean_steps"] = float(np.nansum(units["steps"]) / units["cells"].sum())
    return row


def select(units: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[keep] for k, v in units.items()}


def rates(units: dict[str, np.ndarray], split: str) -> list[dict]:
    """Rows {split, slice, value, cell_accuracy, exact_match, n, *_nontrivial, ...}: the `all` row first, then one
    row per value of the slice."""
    if not units:
        return []
    rows = []
    for name in dict.fromkeys(units["slice"].tolist()):  # in order of appearance: "all" first
        of_slice = units["slice"] == name
        for value in sorted(set(units["value"][of_slice].tolist())):
            keep = of_slice & (units["value"] == value)
            rows.append({"split": split, "slice": name, "value": None if name == "all" else value,
                         **rate_row(select(units, keep))})
    return rows


def is_curve(name: str, metric: str) -> bool:
    """Whether a logged name is the metric itself or one of its per-k curves (`metric@k=j`)."""
    return name == metric or name.startswith(metric + "@k=")


def tagged(units: dict, source: str, iterations: int = 0, set_k: int = 0) -> dict:
    """Units tagged with their source, the iteration count they were read at (0: the model's own) and the look-ahead
    of their example set (0: the task's own mix)."""
    n = len(units.get("exact", ()))
    return {**units, "source": np.full(n, source, dtype="<U32"), "iterations": np.full(n, iterations, np.int16),
            "set_k": np.full(n, set_k, np.int8)} if n else {}
