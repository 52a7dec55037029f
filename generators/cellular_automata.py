"""1-D cellular automata: random Boolean rules of radius r, infer the rule from an orbit, predict k steps ahead.

A rule of radius r is a truth table of 2^(2r+1) bits: the next value of cell i is table[v], where v reads the
neighbourhood x[i-r] .. x[i+r] as a binary number with the leftmost cell most significant. The rule number is
sum_v table[v] 2^v, which for r = 1 is Wolfram's numbering. Boundaries are periodic.

Rule-disjoint splits: a rule's split (train / val / test) is decided by a fixed hash of its truth table alone, so
the three rule sets are disjoint for every seed and dataset size. For r = 1, where only 256 rules exist, the rules
are ranked by that hash and cut at the configured fractions (an explicit list: `testbed list rules --radius 1`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Generator, Layout, check_seed, check_split
from .errors import ConfigError
from .registry import option as _f
from .registry import register
from .rng import hash64, pack_bits, to_unit, unpack_bits

TASKS = ("O-S", "O-O", "O-SR", "RO-S", "RO-O")
MULTI_STATE = ("O-O", "RO-O")  # tasks that predict the next m states
RULE_GIVEN = ("RO-S", "RO-O")
K_MAX = 16
# Token ids. k-tokens (mixed-k tasks) follow: id K0 + k - 1 means "predict k steps ahead".
ZERO, ONE, SEP, MASK, RULE = 0, 1, 2, 3, 4
K0 = 5
VOCAB = ("0", "1", "|", "?", "R") + tuple(f"k{k}" for k in range(1, K_MAX + 1))

_SPLIT_SALT = 0x5EED_CA11  # fixed: changing it would move rules between splits and break shared benchmarks
_STREAM_RULE, _STREAM_INIT, _STREAM_K, _STREAM_CHOICE = 1, 2, 3, 4
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}



@dataclass(frozen=True)
class CAConfig:
    radius: int = _f(2, "neighbourhood radius r (1..4); a rule is a truth table of 2^(2r+1) bits")
    width: int = _f(20, "cells per state W (periodic boundary), at least 2r+1")
    steps: int = _f(20, "orbit length T in states, the initial state included")
    init: str = _f("random", "initial state: random | single (one live cell at W // 2) | density=P")
    rule: tuple[int, ...] = _f((), "rule numbers; example i uses rule[i % len], in every split; empty: random rules")
    split_fractions: tuple[float, ...] = _f((0.8, 0.1, 0.1), "share of rule space for train, val, test")
    task: str = _f("O-S", "O-S (state k ahead) | O-O (next m states) | O-SR (state k ahead + rule) | RO-S, RO-O "
                   "(rule given: O-S, O-O with the rule table before the orbit)")
    n_input: int = _f(10, "number of given states s_0 .. s_{n-1}")
    k: int = _f(1, "steps ahead to predict (O-S, O-SR, RO-S); the largest k when mixed_k")
    mixed_k: bool = _f(False, "draw k uniformly from 1..k per example; a k-token at the start says which")
    m: int = _f(4, "number of future states predicted by O-O")

    def __post_init__(self):
        r, w = self.radius, self.width
        if not 1 <= r <= 4:
            raise ConfigError(f"radius must be in 1..4, got {r}")
        if w < 2 * r + 1:
            raise ConfigError(f"width must be at least 2r+1 = {2 * r + 1} for radius {r}, got {w}")
        if self.steps < 2:
            raise ConfigError(f"steps (orbit length T) must be at least 2, got {self.steps}")
        _parse_init(self.init)
        limit = 1 << (1 << (2 * r + 1))
        for n in self.rule:
            if not 0 <= n < limit:
                raise ConfigError(f"rule number {n} out of range for radius {r}: must be in 0..2^{1 << (2 * r + 1)}-1")
        fr = self.split_fractions
        if len(fr) != 3 or any(not 0 < f < 1 for f in fr) or abs(sum(fr) - 1) > 1e-9:
            raise ConfigError(f"split_fractions must be three numbers in (0, 1) summing to 1, got {list(fr)}")
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}; valid: {', '.join(TASKS)}")
        if self.n_input < 1:
            raise ConfigError(f"n_input must be at least 1, got {self.n_input}")
        if not 1 <= self.k <= K_MAX:
            raise ConfigError(f"k must be in 1..{K_MAX}, got {self.k}")
        if self.m < 1:
            raise ConfigError(f"m must be at least 1, got {self.m}")

    def check_task(self) -> None:
        """What formatting examples of the task needs beyond the orbit fields (plain orbits, `testbed gen ca`, do
        not depend on it)."""
        if self.mixed_k and self.task in MULTI_STATE:
            raise ConfigError(f"mixed_k does not apply to task {self.task}, which predicts the next m states")
        if self.states_needed > self.steps:
            ahead = f"m ({self.m})" if self.task in MULTI_STATE else f"k ({self.k})"
            raise ConfigError(
                f"n_input ({self.n_input}) + {ahead} = {self.states_needed} states do not fit in steps = "
                f"{self.steps}; lower n_input/k/m or raise steps"
            )

    @property
    def table_size(self) -> int:
        return 1 << (2 * self.radius + 1)

    @property
    def states_needed(self) -> int:
        return self.n_input + (self.m if self.task in MULTI_STATE else self.k)


def _parse_init(init: str) -> float | None:
    """None for 'single', the live-cell probability otherwise."""
    if init == "random":
        return 0.5
    if init == "single":
        return None
    if init.startswith("density="):
        try:
            p = float(init.split("=", 1)[1])
        except ValueError:
            p = -1.0
        if 0.0 <= p <= 1.0:
            return p
        raise ConfigError(f"init density must be a number in [0, 1], got {init!r}")
    raise ConfigError(f"unknown init {init!r}; valid: random | single | density=P (0 <= P <= 1)")


# ----------------------------------------------------------------------------------------------------------------
# rules, numbers and splits


def rule_table(number: int, radius: int) -> np.ndarray:
    """Truth table (2^(2r+1),) uint8 of a rule number: table[v] = bit v of the number."""
    size = 1 << (2 * radius + 1)
    return np.array([(number >> v) & 1 for v in range(size)], np.uint8)


def rule_number(table: np.ndarray) -> int:
    return sum(int(b) << v for v, b in enumerate(np.asarray(table).tolist()))


def _table_hash(words: np.ndarray) -> np.ndarray:
    """Fixed hash of truth tables packed as (..., n_words) uint64; independent of every seed."""
    h = hash64(_SPLIT_SALT, words[..., 0])
    for j in range(1, words.shape[-1]):
        h = hash64(h, words[..., j])
    return h


def _split_of_hash(h: np.ndarray, fractions) -> np.ndarray:
    u = to_unit(h)
    return (u >= fractions[0]).astype(np.int8) + (u >= fractions[0] + fractions[1])


def radius1_split(fractions=(0.8, 0.1, 0.1)) -> dict[str, np.ndarray]:
    """The explicit r = 1 split: the 256 Wolfram rules ranked by the table hash and cut at the fractions."""
    order = np.argsort(_table_hash(np.arange(256, dtype=np.uint64)[:, None]), kind="stable")
    n_train = int(round(fractions[0] * 256))
    n_val = int(round(fractions[1] * 256))
    parts = order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]
    return {s: np.sort(p) for s, p in zip(("train", "val", "test"), parts)}


def split_of_rule(number: int, radius: int, fractions=(0.8, 0.1, 0.1)) -> str:
    if radius == 1:
        return next(s for s, pool in radius1_split(fractions).items() if number in pool)
    words = pack_bits(rule_table(number, radius)[None])
    return ("train", "val", "test")[int(_split_of_hash(_table_hash(words), fractions)[0])]


# ----------------------------------------------------------------------------------------------------------------
# evolution


def evolve(init: np.ndarray, tables: np.ndarray, steps: int) -> np.ndarray:
    """Orbits (n, steps, W) uint8 from initial states (n, W) and one truth table per example (n, 2^(2r+1)).

    Vectorised over examples and cells; the only loop is over time. Each state is stored with r wrapped cells on
    both sides so neighbourhoods are plain slices (no np.roll copies), and the rule lookup is one flat gather.
    """
    n, w = init.shape
    size = tables.shape[1]
    r = (size.bit_length() - 2) // 2
    out = np.empty((n, steps, w + 2 * r), np.uint8)
    out[:, 0, r : r + w] = init
    flat = np.ascontiguousarray(tables, dtype=np.uint8).reshape(-1)
    offsets = (np.arange(n, dtype=np.intp) * size)[:, None]
    v = np.empty((n, w), np.uint16 if size > 256 else np.uint8)
    index = np.empty((n, w), np.intp)
    for t in range(steps):
        row = out[:, t]
        row[:, :r] = row[:, w : w + r]  # periodic boundary
        row[:, w + r :] = row[:, r : 2 * r]
        if t == steps - 1:
            break
        np.copyto(v, row[:, :w])
        for j in range(1, 2 * r + 1):  # leftmost neighbour ends up most significant
            v <<= 1
            v |= row[:, j : j + w]
        np.add(offsets, v, out=index)
        np.take(flat, index, out=out[:, t + 1, r : r + w])
    return out[:, :, r : r + w]


# ----------------------------------------------------------------------------------------------------------------
# the generator


@register("ca", CAConfig)
class CellularAutomata(Generator):
    """Orbits of random radius-r rules, formatted as one of the tasks O-S, O-O, O-SR, RO-S, RO-O."""

    version = 1

    def __init__(self, config: CAConfig):
        super().__init__(config)
        self._plan_cache: dict | None = None
        c = config
        self._fixed = np.stack([rule_table(n, c.radius) for n in c.rule]) if c.rule else None
        if c.radius == 1 and not c.rule:
            pools = radius1_split(c.split_fractions)
            self._pools = {s: np.stack([rule_table(int(n), 1) for n in p]) for s, p in pools.items()}

    # --- raw orbits -------------------------------------------------------------------------------------------

    def rules(self, split: str, seed: int, indices: np.ndarray) -> np.ndarray:
        """Truth tables (n, 2^(2r+1)) uint8 of examples `indices`, all from the split's rule pool."""
        c, code = self.config, _SPLIT_CODE[split]
        if self._fixed is not None:  # given rules: example i uses rule i mod len(rule), in every split
            return self._fixed[(indices % np.uint64(len(self._fixed))).astype(np.intp)]
        if c.radius == 1:
            pool = self._pools[split]
            pick = hash64(seed, code, _STREAM_CHOICE, indices) % np.uint64(len(pool))
            return pool[pick.astype(np.intp)]
        # Rejection sampling of uniform tables, vectorised over examples: the loop runs over attempts, each on the
        # examples still without a rule of the right split (expected 1 / fraction attempts).
        size = c.table_size
        n_words = -(-size // 64)
        word_ids = np.arange(n_words, dtype=np.uint64)
        words = np.empty((len(indices), n_words), np.uint64)
        pending = np.arange(len(indices))
        for attempt in range(100_000):
            w = hash64(seed, code, _STREAM_RULE, indices[pending, None], attempt, word_ids)
            if size < 64:
                w &= np.uint64((1 << size) - 1)
            ok = _split_of_hash(_table_hash(w), c.split_fractions) == code
            words[pending[ok]] = w[ok]
            pending = pending[~ok]
            if not len(pending):
                return unpack_bits(words, size)
        raise RuntimeError("rule rejection sampling did not terminate")  # probability < 1e-4000

    def initial_states(self, split: str, seed: int, indices: np.ndarray) -> np.ndarray:
        c, code = self.config, _SPLIT_CODE[split]
        density = _parse_init(c.init)
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
        return (_table_hash(pack_bits(tables)) >> np.uint64(1)).astype(np.int64)

    # --- tasks ------------------------------------------------------------------------------------------------

    def draw_k(self, split: str, seed: int, indices: np.ndarray) -> np.ndarray:
        c = self.config
        if not c.mixed_k:
            return np.full(len(indices), c.k, np.int64)
        h = hash64(seed, _SPLIT_CODE[split], _STREAM_K, np.asarray(indices, np.uint64))
        return (h % np.uint64(c.k)).astype(np.int64) + 1

    def sample(self, split: str, seed: int, indices) -> dict[str, np.ndarray]:
        split, seed = check_split(split), check_seed(seed)
        indices = np.asarray(indices, dtype=np.uint64).reshape(-1)
        states, tables = self.orbits(split, seed, indices, steps=self.config.states_needed)
        return self.format(states, tables, self.draw_k(split, seed, indices))

    def check_depth(self, k: int) -> None:
        c = self.config
        if c.task in MULTI_STATE or not 1 <= k <= (c.k if c.mixed_k else K_MAX) or c.n_input + k > c.steps:
            raise ConfigError(
                f"cannot evaluate k = {k} on this task ({c.task}, k = {c.k}, mixed_k = {c.mixed_k}, "
                f"steps = {c.steps}): valid k are 1..{c.k if c.mixed_k else min(K_MAX, c.steps - c.n_input)}"
                + (f" ({c.task} predicts the next m states; read its per-step rows)" if c.task in MULTI_STATE else "")
            )

    def sample_at_depth(self, split: str, seed: int, indices, k: int) -> dict[str, np.ndarray]:
        """Task examples whose every look-ahead is k (evaluation at one depth)."""
        split, seed = check_split(split), check_seed(seed)
        indices = np.asarray(indices, dtype=np.uint64).reshape(-1)
        self.check_depth(k)
        states, tables = self.orbits(split, seed, indices, steps=self.config.n_input + k)
        return self.format(states, tables, np.full(len(indices), k, np.int64))

    def examples_from_file(self, arrays: dict[str, np.ndarray], ks=None) -> list[tuple[int | None, dict]]:
        """The file's orbits formatted with this task's settings: one example set per k (the task's own k by
        default), or one set of next-m-states examples for O-O and RO-O."""
        from .io import check_orbits

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
        `exact` (steps, n), the cells per state and the rule ids. A non-bit prediction counts as wrong and is fed
        back as 0."""
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
        return {"correct": correct, "exact": exact, "cells": c.width, "rule_id": self.rule_ids(tables)}

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
            future = states[:, c.n_input : c.n_input + c.m].reshape(n, -1)
            targets[:, plan["target"]] = future
            step[:, plan["target"]] = np.repeat(np.arange(1, c.m + 1), w)
        else:
            targets[:, plan["target"]] = states[rows, c.n_input - 1 + k]
            step[:, plan["target"]] = k[:, None]
        if c.task == "O-SR":
            targets[:, plan["rule_out"]] = tables
            step[:, plan["rule_out"]] = 0
        return {
            "inputs": inputs,
            "targets": targets,
            "loss_mask": step >= 0,
            "step": step,
            "k": np.full(n, c.m, np.int64) if c.task in MULTI_STATE else k.copy(),
            "rule_id": self.rule_ids(tables),
        }

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

            extra_row = c.n_input + n_target_rows  # row of rule bits and special tokens
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
        return Layout(VOCAB, int(p["seq_len"]), p["coords"], int(p["n_rows"]), int(p["n_cols"]), self.config.width)

    # --- interchange and display ------------------------------------------------------------------------------

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
