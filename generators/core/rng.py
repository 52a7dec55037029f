"""Counter-based randomness: every random number is a hash of (seed, split, stream, example index, counter).

This makes example i of (seed, split) a pure function of those integers: the same bytes whatever the batch size,
worker count or order, with no per-example RNG objects (which would cost a Python loop). The mixer is the
splitmix64 finaliser, a bijection on 64-bit words with full avalanche.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def hash64(*parts) -> np.ndarray:
    """Hash integers or integer arrays (broadcast together) to uniformly distributed uint64 words."""
    h = np.zeros((), np.uint64)
    with np.errstate(over="ignore"):
        for p in parts:
            p = np.asarray(p).astype(np.uint64)
            h = _mix(h ^ ((p + np.uint64(1)) * _GOLDEN))
    return h


def to_unit(words: np.ndarray) -> np.ndarray:
    """Map uint64 words to floats uniform in [0, 1) (53 bits)."""
    return (words >> _S11).astype(np.float64) * (1.0 / (1 << 53))


def unpack_bits(words: np.ndarray, n_bits: int) -> np.ndarray:
    """(..., n_words) uint64 -> (..., n_bits) uint8 with bit j of word w at position 64 w + j."""
    raw = np.ascontiguousarray(words.astype("<u8")).view(np.uint8)
    return np.unpackbits(raw, axis=-1, bitorder="little")[..., :n_bits]


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Inverse of unpack_bits: (..., n_bits) 0/1 -> (..., ceil(n_bits / 64)) uint64."""
    n_bits = bits.shape[-1]
    n_words = -(-n_bits // 64)
    padded = np.zeros(bits.shape[:-1] + (64 * n_words,), np.uint8)
    padded[..., :n_bits] = bits
    return np.packbits(padded, axis=-1, bitorder="little").view("<u8").astype(np.uint64)


def draw_distinct(u: np.ndarray, count: int) -> np.ndarray:
    """Column indices of the `count` largest entries of each row, largest first: a uniform draw without replacement
    when u is uniform, a weighted one when u = U^(1/w) (Efraimidis-Spirakis)."""
    top = np.argpartition(-u, count - 1, axis=1)[:, :count]
    order = np.argsort(-np.take_along_axis(u, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)
