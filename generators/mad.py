"""MAD synthetic recall tasks (Poli et al. 2024, arXiv 2403.17844), in this project's masked-target format.

in_context_recall  L/2 key-value pairs, keys from one half of the vocabulary, values from the other, one value per
                   key within a sequence; every repeat of a key is scored: its value slot is masked and must be
                   recalled from the key's first occurrence. `noise_fraction` > 0 (noisy recall) replaces that share
                   of the pairs by pairs of tokens from a separate noise vocabulary, never scored.
fuzzy_recall       as in-context recall, but keys and values are motifs of 1..max_motif tokens: a key motif's value
                   motif is masked and scored at every repeat of the key.
memorization       a fixed key -> value map for the whole dataset (parametric memory): every value slot is masked
                   and scored.
selective_copying  `n_copy` tokens scattered in order among blanks, then a copy token: copy them in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import MAX_SEQ_LEN, MAX_VOCAB, SPLITS, Generator, Layout, check_seed, check_size, check_split
from .core.errors import ConfigError
from .core.registry import option as _f
from .core.registry import register
from .core.rng import draw_distinct, hash64, to_unit

_KEYS, _MAP, _NOISE, _POS, _TOKENS, _LENGTHS, _ORDER = 1, 2, 3, 4, 5, 6, 7
_FIXED_MAP_SALT = 0x3E3


def _check_sizes(vocab_size: int, seq_len: int) -> None:
    check_size("vocab_size", vocab_size, MAX_VOCAB, "a vocabulary")
    check_size("seq_len", seq_len, MAX_SEQ_LEN, "sequences of that many tokens")


def _line(length: int) -> np.ndarray:
    return np.stack([np.zeros(length, np.int64), np.arange(length)], 1)


@dataclass(frozen=True)
class RecallConfig:
    vocab_size: int = _f(16, "V: keys from [0, V/2), values from [V/2, V)")
    seq_len: int = _f(128, "L, even: L/2 key-value pairs")
    noise_vocab: int = _f(16, "size of the separate noise vocabulary (noisy recall)")
    noise_fraction: float = _f(0.0, "share of pairs replaced by noise pairs; 0 is plain in-context recall")

    def __post_init__(self):
        _check_sizes(self.vocab_size, self.seq_len)
        if self.vocab_size < 4 or self.vocab_size % 2:
            raise ConfigError(f"vocab_size must be even and at least 4, got {self.vocab_size}")
        if self.seq_len < 4 or self.seq_len % 2:
            raise ConfigError(f"seq_len must be even and at least 4, got {self.seq_len}")
        check_size("noise_vocab", self.noise_vocab, MAX_VOCAB, "a vocabulary")
        if not 0 <= self.noise_fraction < 1 or self.noise_vocab < 1:
            raise ConfigError("noise_fraction must be in [0, 1) and noise_vocab at least 1")


@register("in_context_recall", RecallConfig)
class InContextRecall(Generator):
    """Key-value pairs with repeated keys: recall the value of every key seen before in the sequence."""

    def layout(self) -> Layout:
        c = self.config
        vocab = tuple(f"t{i}" for i in range(c.vocab_size)) + tuple(f"n{i}" for i in range(c.noise_vocab)) + ("?",)
        return Layout(vocab, c.seq_len, _line(c.seq_len), 1, c.seq_len)

    def sample(self, split: str, seed: int, indices) -> dict[str, np.ndarray]:
        c = self.config
        split, seed = check_split(split), check_seed(seed)
        idx = np.asarray(indices, dtype=np.uint64).reshape(-1)[:, None]
        n, pairs, half, code = len(idx), c.seq_len // 2, c.vocab_size // 2, SPLITS.index(split)
        mask_token = c.vocab_size + c.noise_vocab
        value_of = half + (hash64(seed, code, _MAP, idx, np.arange(half)) % np.uint64(half)).astype(np.int64)
        keys = (hash64(seed, code, _KEYS, idx, np.arange(pairs)) % np.uint64(half)).astype(np.int64)
        values = np.take_along_axis(value_of, keys, axis=1)
        noise = to_unit(hash64(seed, code, _NOISE, idx, np.arange(pairs))) < c.noise_fraction
        noise_tokens = c.vocab_size + (hash64(seed, code, _NOISE, idx, np.arange(2 * pairs) + pairs)
                                       % np.uint64(c.noise_vocab)).astype(np.int64)
        keys = np.where(noise, noise_tokens[:, 0::2], keys)
        values = np.where(noise, noise_tokens[:, 1::2], values)
        # a pair is scored when its (non-noise) key already appeared in an earlier non-noise pair
        same = (keys[:, :, None] == keys[:, None, :]) & ~noise[:, None, :]
        seen_before = np.tril(same, k=-1).any(axis=2) & ~noise
        inputs = np.empty((n, c.seq_len), np.int64)
        inputs[:, 0::2], inputs[:, 1::2] = keys, np.where(seen_before, mask_token, values)
        targets = inputs.copy()
        targets[:, 1::2] = values
        loss_mask = np.zeros((n, c.seq_len), bool)
        loss_mask[:, 1::2] = seen_before
        no_repeat = ~loss_mask.any(axis=1) & ~noise[:, -1]  # a sequence without repeats asks for its last value
        inputs[no_repeat, -1] = mask_token
        loss_mask[no_repeat, -1] = True
        return {"inputs": inputs, "targets": targets, "loss_mask": loss_mask, "scored": loss_mask.sum(1)}


@dataclass(frozen=True)
class NoisyRecallConfig(RecallConfig):
    vocab_size: int = _f(32, "V: keys from [0, V/2), values from [V/2, V)")
    noise_fraction: float = _f(0.2, "share of pairs replaced by noise pairs from the noise vocabulary")


@register("noisy_recall", NoisyRecallConfig)
class NoisyRecall(InContextRecall):
    """In-context recall with a share of the pairs replaced by noise pairs, which are never scored."""


@dataclass(frozen=True)
class FuzzyRecallConfig:
    vocab_size: int = _f(16, "V: key tokens from [0, V/2), value tokens from [V/2, V)")
    seq_len: int = _f(128, "L: (key motif, value motif) pairs until the next one no longer fits, then padding")
    max_motif: int = _f(3, "motifs are 1..max_motif tokens long")
    n_keys: int = _f(8, "distinct key motifs per sequence (each with one value motif)")

    def __post_init__(self):
        _check_sizes(self.vocab_size, self.seq_len)
        if self.vocab_size < 4 or self.vocab_size % 2:
            raise ConfigError(f"vocab_size must be even and at least 4, got {self.vocab_size}")
        if self.max_motif < 1 or self.n_keys < 1:
            raise ConfigError("max_motif and n_keys must be at least 1")
        space = sum((self.vocab_size // 2) ** n for n in range(1, self.max_motif + 1))
        if self.n_keys > space:
            raise ConfigError(f"n_keys ({self.n_keys}) exceeds the {space} distinct key motifs")
        if self.seq_len // (2 * self.max_motif) <= self.n_keys:
            raise ConfigError(
                f"seq_len ({self.seq_len}) must hold more than n_keys ({self.n_keys}) pairs of the longest motifs "
                f"(2 * max_motif = {2 * self.max_motif} tokens each), so that some key repeats"
            )


@register("fuzzy_recall", FuzzyRecallConfig)
class FuzzyRecall(Generator):
    """Key motifs followed by value motifs (1..max_motif tokens each); recall a repeated key's value motif."""

    def layout(self) -> Layout:
        c = self.config
        vocab = tuple(f"t{i}" for i in range(c.vocab_size)) + ("_", "?")
        return Layout(vocab, c.seq_len, _line(c.seq_len), 1, c.seq_len)

    def sample(self, split: str, seed: int, indices) -> dict[str, np.ndarray]:
        c = self.config
        split, seed = check_split(split), check_seed(seed)
        idx = np.asarray(indices, dtype=np.uint64).reshape(-1)[:, None]
        n, code, half, m = len(idx), SPLITS.index(split), c.vocab_size // 2, c.max_motif
        pad, mask_token = c.vocab_size, c.vocab_size + 1
        # distinct key motifs: ids in [0, h + h^2 + ... + h^m), id -> (length, base-h digits)
        sizes = half ** np.arange(1, m + 1)
        ids = draw_distinct(to_unit(hash64(seed, code, _KEYS, idx, np.arange(sizes.sum()))), c.n_keys)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        key_len = (ids[..., None] >= starts).sum(-1)  # (n, K)
        rest = ids - starts[key_len - 1]
        key_tok = (rest[..., None] // half ** np.arange(m)) % half  # (n, K, m), digits beyond the length unused
        val_len = 1 + (hash64(seed, code, _LENGTHS, idx, np.arange(c.n_keys)) % np.uint64(m)).astype(np.int64)
        val_tok = half + (hash64(seed, code, _TOKENS, idx, np.arange(c.n_keys * m)) % np.uint64(half)).astype(
            np.int64).reshape(n, c.n_keys, m)
        # the pair sequence: a key per slot, laid end to end; pairs that do not fit entirely are dropped
        slots = c.seq_len // 2
        which = (hash64(seed, code, _ORDER, idx, np.arange(slots)) % np.uint64(c.n_keys)).astype(np.int64)
        kl, vl = np.take_along_axis(key_len, which, 1), np.take_along_axis(val_len, which, 1)
        end = np.cumsum(kl + vl, axis=1)
        fits = end <= c.seq_len
        first = np.argmax(which[:, :, None] == which[:, None, :], axis=2)  # earliest slot with the same key
        repeat = (first < np.arange(slots)) & fits
        j = np.arange(2 * m)
        is_key = j < kl[..., None]
        is_val = ~is_key & (j < (kl + vl)[..., None])
        rows = np.arange(n)[:, None, None]
        tok = np.where(is_key, key_tok[rows, which[..., None], np.minimum(j, m - 1)],
                       val_tok[rows, which[..., None], np.clip(j - kl[..., None], 0, m - 1)])
        pos = (end - kl - vl)[..., None] + j
        valid = (is_key | is_val) & fits[..., None]
        inputs = np.full((n, c.seq_len), pad, np.int64)
        targets = inputs.copy()
        loss_mask = np.zeros((n, c.seq_len), bool)
        r = np.broadcast_to(rows, valid.shape)[valid]
        targets[r, pos[valid]] = tok[valid]
        scored = is_val & repeat[..., None] & valid
        loss_mask[np.broadcast_to(rows, scored.shape)[scored], pos[scored]] = True
        inputs[:] = np.where(loss_mask, mask_token, targets)
        return {"inputs": inputs, "targets": targets, "loss_mask": loss_mask, "scored": loss_mask.sum(1)}


@dataclass(frozen=True)
class MemorizationConfig:
    vocab_size: int = _f(256, "V: keys from [0, V/2), values from [V/2, V)")
    seq_len: int = _f(32, "L, even: L/2 keys, each followed by its masked value")

    def __post_init__(self):
        _check_sizes(self.vocab_size, self.seq_len)
        if self.vocab_size < 4 or self.vocab_size % 2 or self.seq_len < 2 or self.seq_len % 2:
            raise ConfigError("vocab_size and seq_len must be even (vocab_size >= 4, seq_len >= 2)")


@register("memorization", MemorizationConfig)
class Memorization(Generator):
    """Keys whose values come from one fixed map for the whole dataset: recall them from the weights."""

    def __init__(self, config):
        super().__init__(config)
        half = config.vocab_size // 2
        self.value_of = half + (hash64(_FIXED_MAP_SALT, np.arange(half)) % np.uint64(half)).astype(np.int64)

    def layout(self) -> Layout:
        c = self.config
        return Layout(tuple(f"t{i}" for i in range(c.vocab_size)) + ("?",), c.seq_len, _line(c.seq_len), 1, c.seq_len)

    def sample(self, split: str, seed: int, indices) -> dict[str, np.ndarray]:
        c = self.config
        split, seed = check_split(split), check_seed(seed)
        idx = np.asarray(indices, dtype=np.uint64).reshape(-1)[:, None]
        half = c.vocab_size // 2
        keys = (hash64(seed, SPLITS.index(split), _KEYS, idx, np.arange(c.seq_len // 2)) % np.uint64(half))
        keys = keys.astype(np.int64)
        inputs = np.empty((len(idx), c.seq_len), np.int64)
        inputs[:, 0::2], inputs[:, 1::2] = keys, c.vocab_size
        targets = inputs.copy()
        targets[:, 1::2] = self.value_of[keys]
        loss_mask = np.zeros(inputs.shape, bool)
        loss_mask[:, 1::2] = True
        return {"inputs": inputs, "targets": targets, "loss_mask": loss_mask}


@dataclass(frozen=True)
class SelectiveCopyingConfig:
    vocab_size: int = _f(16, "data tokens 1..V-1 (0 is the blank)")
    seq_len: int = _f(256, "L: the scattered region, the copy token and the n_copy answer slots")
    n_copy: int = _f(16, "tokens to copy")

    def __post_init__(self):
        _check_sizes(self.vocab_size, self.seq_len)
        if self.vocab_size < 2 or self.n_copy < 1 or self.seq_len < 2 * self.n_copy + 1:
            raise ConfigError(
                f"need vocab_size >= 2, n_copy >= 1 and seq_len >= 2 n_copy + 1, got V = {self.vocab_size}, "
                f"n_copy = {self.n_copy}, L = {self.seq_len}"
            )


@register("selective_copying", SelectiveCopyingConfig)
class SelectiveCopying(Generator):
    """Tokens scattered among blanks, then a copy token: write the tokens out in order."""

    def layout(self) -> Layout:
        c = self.config
        vocab = ("_",) + tuple(f"t{i}" for i in range(1, c.vocab_size)) + ("copy", "?")
        return Layout(vocab, c.seq_len, _line(c.seq_len), 1, c.seq_len)

    def sample(self, split: str, seed: int, indices) -> dict[str, np.ndarray]:
        c = self.config
        split, seed = check_split(split), check_seed(seed)
        idx = np.asarray(indices, dtype=np.uint64).reshape(-1)[:, None]
        n, code, region = len(idx), SPLITS.index(split), c.seq_len - c.n_copy - 1
        positions = np.sort(draw_distinct(to_unit(hash64(seed, code, _POS, idx, np.arange(region))), c.n_copy), 1)
        tokens = 1 + (hash64(seed, code, _TOKENS, idx, np.arange(c.n_copy)) % np.uint64(c.vocab_size - 1))
        tokens = tokens.astype(np.int64)
        inputs = np.zeros((n, c.seq_len), np.int64)
        np.put_along_axis(inputs, positions, tokens, axis=1)
        inputs[:, region] = c.vocab_size  # the copy token
        inputs[:, region + 1 :] = c.vocab_size + 1  # answer slots, masked
        targets = inputs.copy()
        targets[:, region + 1 :] = tokens
        loss_mask = np.zeros(inputs.shape, bool)
        loss_mask[:, region + 1 :] = True
        return {"inputs": inputs, "targets": targets, "loss_mask": loss_mask}
