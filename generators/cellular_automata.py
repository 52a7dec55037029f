"""1-D cellular automata: random Boolean rules of radius r, infer the rule from an orbit, predict k steps ahead.

The task's fields, their checks and its vocabulary are in ca_config.py; rules, their symmetry classes and the
symmetry-disjoint train / val / test split in ca_rules.py; the baseline predictors every depth curve is read against,
and the triviality and freshness of each target, in ca_baselines.py. Every example carries `trivial` (per position:
1 on the cells of a target state that equals a given state), `fresh` (per position: 1 on the cells of a target state
that equals no earlier state of its orbit), `rule_id` and `class_id` (its symmetry class's canonical member: the
unit intervals are taken over, since a rule and its mirror, complement and mirror-complement move together).
"""

from __future__ import annotations

import numpy as np

from . import ca_baselines
from .base import Generator, Layout, check_seed, check_split
from .ca_config import (  # noqa: F401  (re-exported)
    BASELINES,
    K0,
    K_MAX,
    MASK,
    MULTI_STATE,
    RULE,
    RULE_GIVEN,
    SEP,
    TASKS,
    VOCAB,
    CAConfig,
    parse_init,
)
from .ca_rules import (  # noqa: F401  (re-exported: the module's public face)
    SPLIT_CODE,
    canonical,
    check_split_fractions,
    evolve,
    radius1_split,
    rule_number,
    rule_table,
    sample_rules,
    split_of_rule,
    table_hash,
)
from .core.errors import ConfigError
from .core.registry import register
from .core.rng import hash64, pack_bits, to_unit, unpack_bits

_STREAM_RULE, _STREAM_INIT, _STREAM_K, _STREAM_CHOICE = 1, 2, 3, 4


# ----------------------------------------------------------------------------------------------------------------
# the generator


@register("ca", CAConfig)
class CellularAutomata(Generator):
    """Orbits of random radius-r rules, formatted as one of the tasks O-S, O-O, O-SR, RO-S, RO-O."""

    version = 2  # 2: symmetry-disjoint splits and the `trivial` metadata
    cluster_key = "class_id"  # the unit of generalisation: a rule's symmetry class
    member_key = "rule_id"

    def __init__(self, config: CAConfig):
        super().__init__(config)
        self._plan_cache: dict | None = None
        c = config
        self._fixed = np.stack([rule_table(n, c.radius) for n in c.rule]) if c.rule else None
        if not c.rule:
            check_split_fractions(c.split_fractions, c.radius)
        if c.radius == 1 and not c.rule:
            pools = radius1_split(c.split_fractions)
            self._pools = {s: np.stack([rule_table(int(n), 1) for n in p]) for s, p in pools.items()}

    # --- raw orbits -------------------------------------------------------------------------------------------

    def rules(self, split: str, seed: int, indices: np.ndarray) -> np.ndarray:
        """Truth tables (n, 2^(2r+1)) uint8 of examples `indices`, all from the split's rule pool."""
        c, code = self.config, SPLIT_CODE[split]
        if self._fixed is not None:  # given rules: example i uses rule i mod len(rule), in every split
            return self._fixed[(indices % np.uint64(len(self._fixed))).astype(np.intp)]
        if c.radius == 1:
            pool = self._pools[split]
            pick = hash64(seed, code, _STREAM_CHOICE, indices) % np.uint64(len(pool))
            return pool[pick.astype(np.intp)]
        return sample_rules(split, seed, indices, c.radius, c.split_fractions, _STREAM_RULE)

    def initial_states(self, split: str, seed: int, indices: np.ndarray) -> np.ndarray:
        c, code = self.config, SPLIT_CODE[split]
        density = parse_init(c.init)
        if density is None:
            x = np.zeros((len(indices), c.width), np.uint8)
            x[:, c.width // 2] = 1
            return x
        cells = np.arange(c.width, dtype=np.uint64)
        if density == 0.5:  # one hash word gives 64 uniform bits
            words = hash64(seed, code, _STREAM_INIT, indices[:, None], np.arange(-(-c.width // 64), dtype=np.uint64))
            return unpack_bits(words, c.width)
        u = to_unit(hash64(seed, code, _STREAM_INIT, indices[:, None], cells))
        return (u < density).astype(np.uint8)

    def orbits(self, split: str, seed: int, indices, steps: int | None = None):
        """(states (n, T, W) uint8, tables (n, 2^(2r+1)) uint8): example i depends only on (config, split, seed, i)."""
        split, seed = check_split(split), check_seed(seed)
        indices = np.asarray(indices, dtype=np.uint64).reshape(-1)
        tables = self.rules(split, seed, indices)
        init = self.initial_states(split, seed, indices)
        return evolve(init, tables, steps or self.config.steps), tables

    def rule_ids(self, tables: np.ndarray) -> np.ndarray:
        """Rule numbers (int64) for r <= 2; for r >= 3, whose numbers exceed 64 bits, a 63-bit table fingerprint."""
        if tables.shape[1] <= 32:
            return (tables.astype(np.int64) << np.arange(tables.shape[1], dtype=np.int64)).sum(1)
        return (table_hash(pack_bits(tables)) >> np.uint64(1)).astype(np.int64)

    def class_ids(self, tables: np.ndarray) -> np.ndarray:
        """The rule id of each table's class's canonical member (the smallest rule number in the class)."""
        return self.rule_ids(canonical(tables))

    def clusters_of_members(self, rule_ids: np.ndarray) -> np.ndarray:
        """Class ids of rule ids (outcomes recorded when rules were the clusters); rule ids of radius >= 3 are
        fingerprints, each taken as its own class (a drawn rule almost surely is)."""
        rule_ids = np.asarray(rule_ids, np.int64)
        if self.config.table_size > 32:
            return rule_ids
        tables = ((rule_ids[:, None] >> np.arange(self.config.table_size)) & 1).astype(np.uint8)
        return self.class_ids(tables)

    # --- tasks ------------------------------------------------------------------------------------------------

    def draw_k(self, split: str, seed: int, indices: np.ndarray, k_max: int | None = None) -> np.ndarray:
        """Each example's look-ahead: the task's k, or (mixed_k) uniform in 1..k_max (default: the task's k)."""
        c = self.config
        if not c.mixed_k:
            return np.full(len(indices), c.k, np.int64)
        h = hash64(seed, SPLIT_CODE[split], _STREAM_K, np.asarray(indices, np.uint64))
        return (h % np.uint64(k_max or c.k)).astype(np.int64) + 1

    def curriculum_k(self) -> int:
        c = self.config
        if c.task in MULTI_STATE:
            return c.m
        if not c.mixed_k:
            super().curriculum_k()
        return c.k

    def sample(self, split: str, seed: int, indices, k_max: int | None = None) -> dict[str, np.ndarray]:
        """Examples of the split; `k_max` (a curriculum's stage) draws k from 1..k_max alone (mixed_k), or scores
        only the first k_max predicted states (O-O, RO-O: the later rows leave the loss mask)."""
        split, seed = check_split(split), check_seed(seed)
        if k_max is not None and not 1 <= k_max <= self.curriculum_k():
            raise ConfigError(f"k_max must be in 1..{self.curriculum_k()}, got {k_max}")
        indices = np.asarray(indices, dtype=np.uint64).reshape(-1)
        states, tables = self.orbits(split, seed, indices, steps=self.config.states_needed)
        examples = self.format(states, tables, self.draw_k(split, seed, indices, k_max))
        if k_max is not None and self.config.task in MULTI_STATE:
            examples["loss_mask"] &= examples["step"] <= k_max
        if self.config.path:
            examples["path_targets"] = self.path_targets(examples, states)
        return examples

    def path_targets(self, examples: dict[str, np.ndarray], states: np.ndarray) -> np.ndarray:
        """(n, k, L) targets whose j-th row scores the state j + 1 steps ahead at the target positions: what the
        read-out after loop j + 1 of a step-supervised weight-tied model is trained on."""
        c, target = self.config, self._plan()["target"]
        out = np.repeat(examples["targets"][:, None], c.k, axis=1)
        out[:, :, target] = states[:, c.n_input : c.n_input + c.k]
        return out

    def check_depth(self, k: int) -> None:
        c = self.config
        # a mixed-k task names k with a k-token: only the k it was trained on; otherwise any k its orbits reach
        if c.task in MULTI_STATE or not 1 <= k <= (c.k if c.mixed_k else c.steps - c.n_input):
            raise ConfigError(
                f"cannot evaluate k = {k} on this task ({c.task}, k = {c.k}, mixed_k = {c.mixed_k}, "
                f"steps = {c.steps}): valid k are 1..{c.k if c.mixed_k else c.steps - c.n_input}"
                + (f" ({c.task} predicts the next m states; read its per-step rows)" if c.task in MULTI_STATE else "")
            )

    def sample_at_depth(self, split: str, seed: int, indices, k: int) -> dict[str, np.ndarray]:
        """Task examples whose every look-ahead is k (evaluation at one depth)."""
        split, seed = check_split(split), check_seed(seed)
        indices = np.asarray(indices, dtype=np.uint64).reshape(-1)
        self.check_depth(k)
        states, tables = self.orbits(split, seed, indices, steps=self.config.n_input + k)
        return self.format(states, tables, np.full(len(indices), k, np.int64))

    def probe_states(self, split: str, seed: int, indices, k: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        c = self.config
        if c.task == "O-SR":
            raise ConfigError("probes read the target states of O-S, RO-S, O-O or RO-O, not task O-SR")
        if c.task in MULTI_STATE:  # the task's own examples: their target rows are the states 1..m in order
            if not 1 <= k <= c.m:
                raise ConfigError(f"task {c.task} predicts the next m = {c.m} states: probe k in 1..{c.m}, got {k}")
            examples = self.sample(split, seed, np.asarray(indices))
        else:
            examples = self.sample_at_depth(split, seed, indices, k)
        states, _ = self.orbits(split, seed, indices, steps=c.n_input + k)
        return examples, states[:, c.n_input : c.n_input + k]

    def examples_from_file(self, arrays: dict[str, np.ndarray], ks=None) -> list[tuple[int | None, dict]]:
        """The file's orbits formatted with this task's settings: one example set per k (the task's own k by
        default), or one set of next-m-states examples for O-O and RO-O."""
        from .core.io import check_orbits

        states, tables = check_orbits(arrays)
        c = self.config
        if c.task in MULTI_STATE:
            if ks:
                self.check_depth(ks[0])  # raises: the task predicts the next m states
            return [(None, self.format(states, tables))]
        ks = ks or ([c.k] if not c.mixed_k else list(range(1, c.k + 1)))
        return [(k, self.format(states, tables, np.full(len(states), k, np.int64))) for k in ks]

    def rollout(self, predict, split: str, seed: int, n: int, steps: int, batch_size: int) -> dict[str, np.ndarray]:
        """P2's autoregressive rollout: a model trained to predict the next state is fed its own predictions, the
        oldest given state dropped each time. Returns per rollout step j and example: `correct` cells (steps, n),
        `exact` (steps, n), `trivial` (steps, n: the true state equals a given one), `fresh` (steps, n: it equals no
        earlier state of its orbit), the cells per state, the rule and class ids, and `baselines` {name: {correct,
        exact}}: each baseline predicting j steps ahead of the given states. A non-bit prediction counts as wrong and
        is fed back as 0."""
        c = self.config
        if steps < 1:
            raise ConfigError(f"--rollout must be at least 1, got {steps}")
        ahead = c.m if c.task in MULTI_STATE else 1  # states after the window that format() reads as targets
        states, tables = self.orbits(split, seed, np.arange(n), steps=c.n_input + steps + ahead)
        correct, exact = np.zeros((steps, n), np.int64), np.zeros((steps, n), bool)
        for lo in range(0, n, batch_size):
            orbit, table = states[lo:lo + batch_size], tables[lo:lo + batch_size]
            window = orbit[:, : c.n_input]
            for j in range(steps):
                truth = orbit[:, c.n_input + j]
                data = self.format(np.concatenate([window, orbit[:, c.n_input + j:]], axis=1), table, 1)
                cells = np.flatnonzero(data["step"][0] == 1)  # the next state's positions (O-O: its first of m)
                pred = predict(data["inputs"])[:, cells]
                correct[j, lo:lo + batch_size] = (pred == truth).sum(1)
                exact[j, lo:lo + batch_size] = (pred == truth).all(1)
                window = np.concatenate([window[:, 1:], (pred == 1).astype(np.uint8)[:, None]], axis=1)
        given, truth = states[:, : c.n_input], states[:, c.n_input : c.n_input + steps]
        ahead = np.broadcast_to(np.arange(1, steps + 1), (n, steps))
        fresh = ca_baselines.fresh(states[:, : c.n_input + steps], c.n_input - 1 + ahead).T  # (steps, n)
        baselines = {}
        for name in BASELINES[c.task]:
            right = ca_baselines.predict(name, given, ahead, tables, c.table_size) == truth  # (n, steps, W)
            baselines[name] = {"correct": right.sum(-1).T, "exact": right.all(-1).T}
        return {"correct": correct, "exact": exact, "trivial": ca_baselines.trivial(given, truth).T, "fresh": fresh,
                "cells": c.width, "rule_id": self.rule_ids(tables), "class_id": self.class_ids(tables),
                "baselines": baselines}

    def format(self, states: np.ndarray, tables: np.ndarray, k: np.ndarray | int | None = None) -> dict:
        """Task sequences from orbits, e.g. those of an interchange file (used by `testbed eval --data`)."""
        c = self.config
        n, t_len, w = states.shape
        if w != c.width or tables.shape[1] != c.table_size:
            raise ConfigError(
                f"orbits of width {w} and radius {(tables.shape[1].bit_length() - 2) // 2} do not fit this task "
                f"(width {c.width}, radius {c.radius})"
            )
        k = np.broadcast_to(np.asarray(c.k if k is None else k, np.int64), (n,))
        need = c.states_needed if c.task in MULTI_STATE else c.n_input + int(k.max())
        if t_len < need:
            raise ConfigError(f"orbits of length {t_len} are too short for n_input {c.n_input} and k up to {k.max()}")
        plan = self._plan()
        inputs = np.full((n, plan["seq_len"]), MASK, np.int64)
        if "k_token" in plan:
            inputs[:, plan["k_token"]] = K0 + k - 1
        inputs[:, plan["sep"]] = SEP
        if "rule_marker" in plan:
            inputs[:, plan["rule_marker"]] = RULE
            inputs[:, plan["rule_in"]] = tables
        inputs[:, plan["orbit"]] = states[:, : c.n_input].reshape(n, -1)
        targets = inputs.copy()
        step = np.full(inputs.shape, -1, np.int8)
        rows = np.arange(n)
        if c.task in MULTI_STATE:
            future = states[:, c.n_input : c.n_input + c.m]
            step[:, plan["target"]] = np.repeat(np.arange(1, c.m + 1), w)
        else:
            future = states[rows, c.n_input - 1 + k][:, None]
            step[:, plan["target"]] = k[:, None]
        targets[:, plan["target"]] = future.reshape(n, -1)
        if c.task == "O-SR":
            targets[:, plan["rule_out"]] = tables
            step[:, plan["rule_out"]] = 0
        trivial = np.zeros(inputs.shape, np.int8)  # 1 on the cells of target states that equal a given state
        trivial[:, plan["target"]] = np.repeat(ca_baselines.trivial(states[:, : c.n_input], future), w, axis=1)
        if c.task in MULTI_STATE:  # where each target state lies in the orbit
            at = np.broadcast_to(np.arange(c.n_input, c.n_input + c.m), (n, c.m))
        else:
            at = (c.n_input - 1 + k)[:, None]
        fresh = np.ones(inputs.shape, np.int8)  # 1 also on O-SR's rule bits: not a state, never a repeat
        fresh[:, plan["target"]] = np.repeat(ca_baselines.fresh(states[:, : int(at.max()) + 1], at), w, axis=1)
        return {
            "inputs": inputs,
            "targets": targets,
            "loss_mask": step >= 0,
            "step": step,
            "trivial": trivial,
            "fresh": fresh,
            "k": np.full(n, c.m, np.int64) if c.task in MULTI_STATE else k.copy(),
            "rule_id": self.rule_ids(tables),
            "class_id": self.class_ids(tables),
        }

    def given(self, examples: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """(the given states (n, n_input, W) uint8, the given rule tables (n, 2^(2r+1)) uint8 or None where the task
        does not give the rule), read off the examples' own inputs."""
        c, plan = self.config, self._plan()
        n = len(examples["inputs"])
        given = examples["inputs"][:, plan["orbit"]].reshape(n, c.n_input, c.width).astype(np.uint8)
        tables = examples["inputs"][:, plan["rule_in"]].astype(np.uint8) if "rule_in" in plan else None
        return given, tables

    def baselines(self, examples: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Predicted tokens (n, L) of every baseline of the task (ca_baselines.py), read off the examples' own
        inputs: the given states, the rule where it is given, and the look-ahead of each target state."""
        c, plan = self.config, self._plan()
        n, w = len(examples["inputs"]), c.width
        given, tables = self.given(examples)
        target = plan["target"].reshape(-1, w)  # one row of positions per predicted state
        k = examples["step"][:, target[:, 0]].astype(np.int64)  # (n, states): how far ahead each state lies
        out = {}
        for name in BASELINES[c.task]:
            pred = examples["inputs"].copy()  # positions a baseline does not predict (O-SR's rule bits) stay masked
            pred[:, plan["target"]] = ca_baselines.predict(name, given, k, tables, c.table_size).reshape(n, -1)
            out[name] = pred
        return out

    def _plan(self) -> dict:
        """Token positions of each part of the sequence (computed once per config)."""
        if self._plan_cache is None:
            self.config.check_task()
            c, w, size = self.config, self.config.width, self.config.table_size
            pos, rows, cols = 0, [], []
            plan: dict = {"sep": [], "orbit": [], "target": []}
            sep_col = max(w, size)
            n_target_rows = c.m if c.task in MULTI_STATE else 1

            def take(count, row, col):
                nonlocal pos
                rows.extend([row] * count if np.isscalar(row) else row)
                cols.extend(col if not np.isscalar(col) else [col] * count)
                pos += count
                return list(range(pos - count, pos))

            # row of rule bits and special tokens; with the rule given and a k-token, the k-token and the rule marker
            # share its separator-column cell (told apart by their tokens; kept so stored checkpoints keep positions)
            extra_row = c.n_input + n_target_rows
            if c.mixed_k:
                plan["k_token"] = take(1, extra_row, sep_col)[0]
            if c.task in RULE_GIVEN:
                plan["rule_marker"] = take(1, extra_row, sep_col)[0]
                plan["rule_in"] = take(size, extra_row, list(range(size)))
            for t in range(c.n_input):
                plan["orbit"] += take(w, t, list(range(w)))
                plan["sep"] += take(1, t, sep_col)
            for j in range(n_target_rows):
                if j:
                    plan["sep"] += take(1, c.n_input + j - 1, sep_col)
                plan["target"] += take(w, c.n_input + j, list(range(w)))
            if c.task == "O-SR":
                plan["sep"] += take(1, c.n_input, sep_col)
                plan["rule_out"] = take(size, extra_row, list(range(size)))
            plan["seq_len"] = pos
            plan["coords"] = np.stack([rows, cols], 1).astype(np.int64)
            plan["n_rows"], plan["n_cols"] = extra_row + 1, sep_col + 1
            self._plan_cache = {key: np.asarray(v) if isinstance(v, list) else v for key, v in plan.items()}
        return self._plan_cache

    def layout(self) -> Layout:
        p = self._plan()
        c = self.config
        return Layout(VOCAB, int(p["seq_len"]), p["coords"], int(p["n_rows"]), int(p["n_cols"]), c.width,
                      path_steps=c.k if c.path else 0)

    # --- interchange and display ------------------------------------------------------------------------------

    def check_export(self, given: set) -> None:
        """Plain orbits do not depend on the task's fields; but a task field given that the orbits cannot hold is
        a mistake worth a word (n_input 30 with steps 20)."""
        c = self.config
        if given & {"n_input", "k", "m", "task"} and c.states_needed > c.steps:
            ahead = f"m ({c.m})" if c.task in MULTI_STATE else f"k ({c.k})"
            raise ConfigError(f"n_input ({c.n_input}) + {ahead} = {c.states_needed} states do not fit in steps = "
                              f"{c.steps}; lower n_input/k/m or raise steps")

    def export_bytes(self, n: int) -> int:
        c = self.config  # the orbits, the tables, and the evolution's padded working copy
        return n * (2 * c.steps * (c.width + 2 * c.radius) + 3 * c.table_size + 16)

    def export(self, split: str, seed: int, n: int) -> dict[str, np.ndarray]:
        states, tables = self.orbits(split, seed, np.arange(n))
        return {"states": states, "rules": tables}

    def show(self, arrays: dict[str, np.ndarray], count: int) -> str:
        return show_orbits(arrays["states"], arrays["rules"], count)


def show_orbits(states: np.ndarray, tables: np.ndarray, count: int) -> str:
    """Space-time diagrams: one line per state, time running down, '█' live and '·' dead cells."""
    out = []
    for i in range(min(count, len(states))):
        size = tables.shape[1]
        radius = (size.bit_length() - 2) // 2
        bits = "".join(map(str, tables[i][::-1]))  # most significant bit first, as the number is written
        name = f"rule {rule_number(tables[i])}" if size <= 32 else f"rule 0b{bits[:24]}…"
        out.append(f"orbit {i}: radius {radius}, {name}")
        out += ["  " + "".join("█" if x else "·" for x in row) for row in states[i]]
    return "\n".join(out)
