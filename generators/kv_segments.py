"""Key-value retrieval across segments (the ARMT associative-retrieval task, Rodkin et al. 2024, arXiv 2407.04841).

Each of D segments holds one pair: a key of `key_len` symbols, then a value of `value_len` symbols; a final query
segment repeats one of the keys and leaves the value slots masked. `remember`: the D keys are distinct. `rewrite`:
keys are drawn from a pool of max(1, D // 2) keys, so they repeat, and the latest value written wins. Coordinates are
(segment, position in segment), so segment-recurrent models can split the sequence at segment boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import MAX_SEQ_LEN, MAX_VOCAB, SPLITS, Generator, Layout, check_seed, check_size, check_split
from .core.errors import ConfigError
from .core.registry import option as _f
from .core.registry import register
from .core.rng import draw_distinct, hash64, to_unit

_KEYS, _VALUES, _QUERY, _POOL, _BASELINE = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class KVSegmentsConfig:
    n_symbols: int = _f(16, "alphabet size of keys and values")
    key_len: int = _f(2, "symbols per key")
    value_len: int = _f(1, "symbols per value")
    n_pairs: int = _f(4, "D: key-value segments before the query segment")
    mode: str = _f("remember", "remember (distinct keys) | rewrite (repeated keys, the latest value wins)")

    def __post_init__(self):
        if self.n_symbols < 2 or self.key_len < 1 or self.value_len < 1 or self.n_pairs < 1:
            raise ConfigError("n_symbols must be >= 2 and key_len, value_len, n_pairs >= 1")
        check_size("n_symbols", self.n_symbols, MAX_VOCAB, "a vocabulary")
        check_size("n_symbols ** key_len", self.n_symbols ** min(self.key_len, 64), MAX_VOCAB, "a key space drawn from")
        check_size("n_pairs and the key and value lengths", (self.n_pairs + 1) * (self.key_len + self.value_len),
                   MAX_SEQ_LEN, "sequences of that many tokens")
        if self.mode not in ("remember", "rewrite"):
            raise ConfigError(f"unknown mode {self.mode!r}; valid: remember, rewrite")
        if self.n_symbols**self.key_len < self.n_pairs:
            raise ConfigError(
                f"only {self.n_symbols ** self.key_len} distinct keys of {self.key_len} symbols exist, "
                f"fewer than n_pairs = {self.n_pairs}"
            )


@register("kv_segments", KVSegmentsConfig)
class KVSegments(Generator):
    """One key-value pair per segment, then a query segment: recall the value of the queried key."""

    @property
    def segment(self) -> int:
        return self.config.key_len + self.config.value_len

    def layout(self) -> Layout:
        c, s = self.config, self.segment
        rows, cols = np.divmod(np.arange((c.n_pairs + 1) * s), s)
        vocab = tuple(str(i) for i in range(c.n_symbols)) + ("?",)
        return Layout(vocab, (c.n_pairs + 1) * s, np.stack([rows, cols], 1), c.n_pairs + 1, s)

    def sample(self, split: str, seed: int, indices) -> dict[str, np.ndarray]:
        c = self.config
        split, seed = check_split(split), check_seed(seed)
        idx = np.asarray(indices, dtype=np.uint64).reshape(-1)[:, None]
        n, d, code = len(idx), c.n_pairs, SPLITS.index(split)
        n_keys = c.n_symbols**c.key_len
        if c.mode == "remember":
            key_ids = draw_distinct(to_unit(hash64(seed, code, _KEYS, idx, np.arange(n_keys))), d)
        else:
            pool = draw_distinct(to_unit(hash64(seed, code, _POOL, idx, np.arange(n_keys))), max(1, d // 2))
            pick = hash64(seed, code, _KEYS, idx, np.arange(d)) % np.uint64(pool.shape[1])
            key_ids = np.take_along_axis(pool, pick.astype(np.int64), axis=1)
        digits = c.n_symbols ** np.arange(c.key_len - 1, -1, -1)
        keys = key_ids[:, :, None] // digits % c.n_symbols  # (n, D, key_len)
        values = (hash64(seed, code, _VALUES, idx[:, :, None], np.arange(d)[:, None], np.arange(c.value_len))
                  % np.uint64(c.n_symbols)).astype(np.int64)  # (n, D, value_len)
        asked = (hash64(seed, code, _QUERY, idx[:, 0]) % np.uint64(d)).astype(np.int64)
        rows = np.arange(n)
        same = key_ids == key_ids[rows, asked][:, None]
        latest = d - 1 - np.argmax(same[:, ::-1], axis=1)  # the last segment that wrote the asked key
        mask_token = c.n_symbols
        context = np.concatenate([keys, values], axis=2).reshape(n, -1)
        query = np.concatenate([keys[rows, asked], np.full((n, c.value_len), mask_token)], axis=1)
        inputs = np.concatenate([context, query], axis=1).astype(np.int64)
        targets = inputs.copy()
        targets[:, -c.value_len :] = values[rows, latest]
        loss_mask = np.zeros(inputs.shape, bool)
        loss_mask[:, -c.value_len :] = True
        return {"inputs": inputs, "targets": targets, "loss_mask": loss_mask,
                "n_pairs": np.full(n, d, np.int64), "writes": same.sum(axis=1).astype(np.int64)}

    def baselines(self, examples: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """context_value: the value of one of the D segments at random (a pure function of the example): a model that
        knows the layout but recalls nothing. Remember mode: about 1/D exact match."""
        c, s = self.config, self.segment
        inputs = examples["inputs"]
        n = len(inputs)
        segments = inputs[:, : c.n_pairs * s].reshape(n, c.n_pairs, s)
        h = np.zeros(n, np.uint64)
        for j in range(c.n_pairs * s):
            h = hash64(h, inputs[:, j])
        pick = (hash64(_BASELINE, h) % np.uint64(c.n_pairs)).astype(np.int64)
        pred = inputs.copy()
        pred[:, -c.value_len :] = segments[np.arange(n), pick, c.key_len :]
        return {"context_value": pred}

    def show(self, arrays, count: int) -> str:
        s, out = self.segment, []
        vocab = self.layout().vocab
        for i in range(min(count, len(arrays["inputs"]))):
            toks = [vocab[t] for t in arrays["inputs"][i]]
            segs = [" ".join(toks[j : j + s]) for j in range(0, len(toks), s)]
            answer = " ".join(vocab[t] for t in arrays["targets"][i][arrays["loss_mask"][i]])
            out.append(f"example {i}: {' | '.join(segs)}  -> {answer}")
        return "\n".join(out)
