"""Multi-query associative recall (Zoology, Arora et al., ICLR 2024, arXiv 2312.04927).

A sequence of length L opens with D key-value pairs k1 v1 ... kD vD (keys from [1, V/2), values from [V/2, V), all
distinct); each key is queried once later at an even offset of the remaining L - 2D positions, the slot drawn without
replacement with p(slot j) ∝ a (j+1)^(a-1), a = 0.01 (queries mostly soon after the context). The target at a query
key's position is its value; only those D positions are scored. Token 0 is filler. Unlike a next-token layout, the
value is never written after a query key, so bidirectional models cannot read the answer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .base import MAX_SEQ_LEN, MAX_VOCAB, SPLITS, Generator, Layout, check_seed, check_size, check_split
from .core.errors import ConfigError
from .core.registry import option as _f
from .core.registry import register
from .core.rng import draw_distinct, hash64, to_unit

_KEYS, _VALUES, _SLOTS, _BASELINE = 1, 2, 3, 4


def _context_pick(context: np.ndarray, length: int) -> np.ndarray:
    """(n, length) uint64 pseudo-random words per position, a function of each example's context tokens alone."""
    h = np.zeros(len(context), np.uint64)
    for j in range(context.shape[1]):
        h = hash64(h, context[:, j])
    return hash64(_BASELINE, h[:, None], np.arange(length))


@dataclass(frozen=True)
class MQARConfig:
    vocab_size: int = _f(8192, "V: keys from [1, V/2), values from [V/2, V), 0 is filler")
    seq_len: int = _f(64, "L, even")
    n_pairs: int = _f(4, "D key-value pairs, each queried once (4 D <= L)")
    power_a: float = _f(0.01, "query-slot law p(j) ∝ a (j+1)^(a-1): small a puts queries soon after the context")

    def __post_init__(self):
        check_size("vocab_size", self.vocab_size, MAX_VOCAB, "a vocabulary")
        check_size("seq_len", self.seq_len, MAX_SEQ_LEN, "sequences of that many tokens")
        v, length, d = self.vocab_size, self.seq_len, self.n_pairs
        if length < 4 or length % 2:
            raise ConfigError(f"seq_len L must be even and at least 4, got {length}")
        if v <= length:
            raise ConfigError(f"vocab_size V must exceed seq_len L (V > L), got V = {v}, L = {length}")
        if d < 1 or 4 * d > length:
            raise ConfigError(f"n_pairs D must satisfy 1 <= D and 4 D <= L, got D = {d}, L = {length}")
        if d > v // 2 - 1:
            raise ConfigError(f"n_pairs D = {d} exceeds the {v // 2 - 1} available keys of V = {v}")
        if self.power_a <= 0:
            raise ConfigError(f"power_a must be positive, got {self.power_a}")


@functools.lru_cache(maxsize=16)
def token_names(n: int) -> tuple[str, ...]:
    """t0 .. t{n-1}; built once per vocabulary size (a sweep resolves hundreds of layouts of up to 8,192 tokens)."""
    return tuple(f"t{i}" for i in range(n))


@register("mqar", MQARConfig)
class MQAR(Generator):
    """Key-value pairs, then each key queried once; the value must be recalled at the query position."""

    def layout(self) -> Layout:
        c = self.config
        coords = np.stack([np.zeros(c.seq_len, np.int64), np.arange(c.seq_len)], 1)
        return Layout(token_names(c.vocab_size), c.seq_len, coords, 1, c.seq_len)

    def sample(self, split: str, seed: int, indices) -> dict[str, np.ndarray]:
        c = self.config
        split, seed = check_split(split), check_seed(seed)
        idx = np.asarray(indices, dtype=np.uint64).reshape(-1)[:, None]
        n, d, half = len(idx), c.n_pairs, c.vocab_size // 2
        code = SPLITS.index(split)
        keys = 1 + draw_distinct(to_unit(hash64(seed, code, _KEYS, idx, np.arange(half - 1))), d)
        values = half + draw_distinct(to_unit(hash64(seed, code, _VALUES, idx, np.arange(half))), d)
        n_slots = (c.seq_len - 2 * d) // 2
        weight = (np.arange(1, n_slots + 1) ** (c.power_a - 1))[None, :]
        u = to_unit(hash64(seed, code, _SLOTS, idx, np.arange(n_slots)))
        slots = draw_distinct(np.maximum(u, 1e-300) ** (1.0 / weight), d)  # query of key i in slot slots[:, i]
        inputs = np.zeros((n, c.seq_len), np.int64)
        inputs[:, 0 : 2 * d : 2], inputs[:, 1 : 2 * d : 2] = keys, values
        rows = np.arange(n)[:, None]
        query_pos = 2 * d + 2 * slots
        inputs[rows, query_pos] = keys
        targets = inputs.copy()
        targets[rows, query_pos] = values
        loss_mask = np.zeros((n, c.seq_len), bool)
        loss_mask[rows, query_pos] = True
        return {"inputs": inputs, "targets": targets, "loss_mask": loss_mask, "n_pairs": np.full(n, d, np.int64)}

    def baselines(self, examples: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """context_value: at every query, one of the D context values at random (a pure function of the example):
        what a model that knows the layout but recalls nothing scores, 1/D."""
        d = self.config.n_pairs
        inputs = examples["inputs"]
        values = inputs[:, 1 : 2 * d : 2]
        pick = _context_pick(inputs[:, : 2 * d], inputs.shape[1]) % np.uint64(d)
        pred = inputs.copy()
        pred[examples["loss_mask"]] = np.take_along_axis(values, pick.astype(np.int64), axis=1)[examples["loss_mask"]]
        return {"context_value": pred}

    def show(self, arrays, count: int) -> str:
        out = []
        for i in range(min(count, len(arrays["inputs"]))):
            toks = [str(t) if t else "." for t in arrays["inputs"][i]]
            for j in np.flatnonzero(arrays["loss_mask"][i]):
                toks[j] = f"{toks[j]}→{arrays['targets'][i, j]}"
            out.append(f"example {i}: " + " ".join(toks))
        return "\n".join(out)
