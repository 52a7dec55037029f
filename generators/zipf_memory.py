"""Zipf associative memory data (Cabannes et al., ICLR 2024): inputs x in 0..N-1 with p(x) ∝ (x+1)^-alpha, targets
f*(x) = x mod M (or a fixed random map). Every split draws from the same distribution and map: the task is to
memorise, and the held-out error is the population error over p."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import MAX_VOCAB, SPLITS, Generator, Layout, check_seed, check_size, check_split
from .core.errors import ConfigError
from .core.registry import option as _f
from .core.registry import register
from .core.rng import hash64, to_unit

_STREAM_X, _MAP_SALT = 1, 0x3A9


@dataclass(frozen=True)
class ZipfMemoryConfig:
    n_tokens: int = _f(1000, "number of input tokens N")
    n_classes: int = _f(5, "number of outputs M")
    alpha: float = _f(2.0, "Zipf exponent: p(x) ∝ (x+1)^-alpha")
    mapping: str = _f("mod", "f*(x): mod (x mod M, as the public code) | random (a fixed random map)")

    def __post_init__(self):
        check_size("n_tokens", self.n_tokens, MAX_VOCAB, "a vocabulary")
        if not self.alpha > 0:
            raise ConfigError(f"alpha must be positive, got {self.alpha}")
        if self.n_classes < 1 or self.n_tokens < self.n_classes:
            raise ConfigError(f"need 1 <= M <= N, got N = {self.n_tokens}, M = {self.n_classes}")
        if self.mapping not in ("mod", "random"):
            raise ConfigError(f"unknown mapping {self.mapping!r}; valid: mod, random")


@register("zipf_memory", ZipfMemoryConfig)
class ZipfMemory(Generator):
    """One Zipf-distributed input token per example; the target is its associated output token."""

    def __init__(self, config: ZipfMemoryConfig):
        super().__init__(config)
        c = config
        p = np.arange(1, c.n_tokens + 1, dtype=np.float64) ** -c.alpha
        self.probabilities = p / p.sum()
        self._cdf = np.cumsum(self.probabilities)
        x = np.arange(c.n_tokens)
        if c.mapping == "mod":
            self.mapping = x % c.n_classes
        else:  # fixed by the config alone, the same for every seed and split
            self.mapping = (hash64(_MAP_SALT, x) % np.uint64(c.n_classes)).astype(np.int64)

    def layout(self) -> Layout:
        vocab = tuple(f"x{i}" for i in range(self.config.n_tokens))
        return Layout(vocab, 1, np.zeros((1, 2), np.int64), 1, 1)

    def sample(self, split: str, seed: int, indices) -> dict[str, np.ndarray]:
        split, seed = check_split(split), check_seed(seed)
        idx = np.asarray(indices, dtype=np.uint64).reshape(-1)
        u = to_unit(hash64(seed, SPLITS.index(split), _STREAM_X, idx))
        x = np.minimum(np.searchsorted(self._cdf, u, side="right"), self.config.n_tokens - 1).astype(np.int64)
        return {
            "inputs": x[:, None],
            "targets": self.mapping[x][:, None],
            "loss_mask": np.ones((len(x), 1), bool),
            "token": x,
        }

    def show(self, arrays, count: int) -> str:
        pairs = [f"x={x} -> y={y}" for x, y in zip(arrays["inputs"][:count, 0], arrays["targets"][:count, 0])]
        return "\n".join(pairs)
