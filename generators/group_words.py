"""Group words, the word problem of state tracking (Liu et al. 2023, arXiv 2210.10749; Merrill, Petty & Sabharwal
2024, arXiv 2404.08819): a word g_1 g_2 ... g_n of uniformly drawn elements of a finite group, and at every position
t the prefix product p_t = g_1 g_2 ... g_t. The prefix length t is the depth axis (the `k` slice of the results):
tracking p_t needs t compositions in sequence, which fixed-depth transformers and diagonal state-space models can
only shortcut for solvable groups (Z_m, S_3, S_4, A_4); for the non-solvable A_5 and S_5 the problem is
NC^1-complete, so their depth must grow with t, while a recurrent network carries p_t in its state.

A product the walk has not been at before (nor any baseline gets) is `fresh`: a repeat could be answered by recalling
an earlier position instead of tracking.

Elements are permutations (Z_m as the rotations of m points), a product is composition, (a b)(i) = a(b(i)) (b
first), and elements are tokens: the vocabulary is the group, in a fixed order. Prefix products come from a
log-depth parallel scan over the multiplication table, vectorised across examples.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .base import MAX_SEQ_LEN, SPLITS, Generator, Layout, check_seed, check_size, check_split
from .core.errors import ConfigError
from .core.registry import option as _f
from .core.registry import register
from .core.rng import hash64

_WORDS = 1
MAX_CYCLIC = 1024  # Z_m up to m = 1024 (a 1024 x 1024 table); S_n, A_n up to n = 6 (720 elements)
GROUPS = "Z<m> (2 <= m <= 1024), S3, S4, S5, S6, A4, A5, A6"
TARGETS = ("all", "last")
ALPHABETS = ("all", "generators")


def _parity(p: tuple[int, ...]) -> int:
    seen, odd = set(), 0
    for start in range(len(p)):  # each cycle of length c contributes c - 1 transpositions
        c, j = 0, start
        while j not in seen:
            seen.add(j)
            j, c = p[j], c + 1
        odd ^= max(c - 1, 0) & 1
    return odd


@lru_cache(maxsize=16)
def elements(group: str) -> np.ndarray:
    """(|G|, n) uint8: the group's elements as permutations of n points, the identity first."""
    m = re.fullmatch(r"([ZSA])(\d+)", group)
    if not m:
        raise ConfigError(f"unknown group {group!r}; valid: {GROUPS}")
    kind, n = m.group(1), int(m.group(2))
    if kind == "Z":
        if not 2 <= n <= MAX_CYCLIC:
            raise ConfigError(f"cyclic group Z{n}: m must be in 2..{MAX_CYCLIC}")
        return ((np.arange(n)[:, None] + np.arange(n)[None, :]) % n).astype(np.uint16)
    if not (3 if kind == "S" else 4) <= n <= 6:
        raise ConfigError(f"unknown group {group!r}; valid: {GROUPS}")
    perms = [p for p in itertools.permutations(range(n)) if kind == "S" or not _parity(p)]
    return np.array(perms, np.uint16)  # lexicographic: the identity first


@lru_cache(maxsize=16)
def multiplication_table(group: str) -> np.ndarray:
    """(|G|, |G|) int64: table[a, b] is the index of a b, the composition that applies b first."""
    perms = elements(group).astype(np.int64)
    size, n = perms.shape
    if group[0] == "Z":  # rotations: a b rotates by a + b
        return (np.arange(size)[:, None] + np.arange(size)[None, :]) % size
    composed = perms[:, perms]  # composed[a, b, i] = perms[a][perms[b][i]]
    codes = n ** np.arange(n)  # a permutation of n <= 6 points as a number below 6^6
    index = np.full(n**n, -1, np.int64)
    index[perms @ codes] = np.arange(size)
    return index[composed @ codes]


def prefix_products(words: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(n, L) prefix products of (n, L) words: a Hillis-Steele scan, log2(L) vectorised steps."""
    p, shift = np.array(words, np.int64), 1
    while shift < p.shape[1]:
        p[:, shift:] = table[p[:, :-shift], p[:, shift:]]  # earlier segment on the left: products keep their order
        shift *= 2
    return p


def first_visits(products: np.ndarray, order: int) -> np.ndarray:
    """(n, L) int8: 1 where the prefix product is an element the walk has not been at before (the identity, the empty
    product, counts as visited): a repeat could be answered by recalling an earlier position rather than tracking.
    The loop runs over positions, each step vectorised over examples."""
    n, length = products.shape
    rows = np.arange(n)
    seen = np.zeros((n, order), bool)
    seen[:, 0] = True  # the identity is element 0
    out = np.zeros((n, length), np.int8)
    for t in range(length):
        out[:, t] = ~seen[rows, products[:, t]]
        seen[rows, products[:, t]] = True
    return out


def window_products(words: np.ndarray, table: np.ndarray, m: int) -> np.ndarray:
    """(n, L) products of the last m elements up to each position (the whole prefix where it is shorter)."""
    out = np.array(words, np.int64)
    for j in range(1, m):  # out[t] = g_{t-j} ... g_t, built leftwards
        out[:, j:] = table[words[:, :-j], out[:, j:]]
    return out


@lru_cache(maxsize=16)
def generating_set(group: str) -> np.ndarray:
    """Indices of a small generating set of the group and the identity, ascending: Z_m the unit rotation (the word
    problem becomes counting mod m), S_n the transpositions, A_n the 3-cycles. Words over it are the swap-only
    variant of Grazzi et al. (2024, arXiv 2411.12537): still NC^1-complete for S_5 and A_5 (a bounded number of
    generators makes any element), while a recurrent model has |G| x |alphabet| transitions to learn, not |G|^2."""
    perms = elements(group).astype(np.int64)
    if group[0] == "Z":
        return np.array([0, 1])
    moved = (perms != np.arange(perms.shape[1])).sum(1)  # points each permutation moves: 2 a swap, 3 a 3-cycle
    return np.flatnonzero((moved == 0) | (moved == (2 if group[0] == "S" else 3)))


@dataclass(frozen=True)
class GroupWordsConfig:
    group: str = _f("S5", f"the finite group: {GROUPS}")
    length: int = _f(32, "word length n: every prefix length 1..n is a depth to report")
    targets: str = _f("all", "all: the prefix product at every position is scored | last: only the full product")
    window: int = _f(2, "m of the last_m baseline: the product of the last m elements")
    alphabet: str = _f("all", "all: elements drawn uniformly from the group | generators: from a generating set and "
                              "the identity (Z_m: 0, 1; S_n: the swaps; A_n: the 3-cycles)")

    def __post_init__(self):
        elements(self.group)  # raises for an unknown group
        check_size("length", self.length, MAX_SEQ_LEN, "words of that many elements")
        if self.length < 1:
            raise ConfigError(f"length must be at least 1, got {self.length}")
        if self.targets not in TARGETS:
            raise ConfigError(f"unknown targets {self.targets!r}; valid: {', '.join(TARGETS)}")
        if not 1 <= self.window <= self.length:
            raise ConfigError(f"window must be in 1..length ({self.length}), got {self.window}")
        if self.alphabet not in ALPHABETS:
            raise ConfigError(f"unknown alphabet {self.alphabet!r}; valid: {', '.join(ALPHABETS)}")


@register("group_words", GroupWordsConfig)
class GroupWords(Generator):
    """Words over a finite group; the target at position t is the product of the first t elements."""

    def __init__(self, config: GroupWordsConfig):
        super().__init__(config)
        self.table = multiplication_table(config.group)
        self.alphabet = np.arange(self.order) if config.alphabet == "all" else generating_set(config.group)
        # the most_frequent baseline's answer per position, computed once (every sampled batch reads it)
        self.modes = self.product_modes(config.length)

    @property
    def order(self) -> int:
        return len(self.table)

    def layout(self) -> Layout:
        c, perms = self.config, elements(self.config.group)
        names = tuple(str(i) for i in range(self.order)) if c.group[0] == "Z" else tuple(
            "".join(map(str, p)) for p in perms)  # one-line notation: 10234 swaps 0 and 1
        coords = np.stack([np.zeros(c.length, np.int64), np.arange(c.length)], 1)
        return Layout(names, c.length, coords, 1, c.length)

    def words(self, split: str, seed: int, indices) -> np.ndarray:
        split, seed = check_split(split), check_seed(seed)
        idx = np.asarray(indices, dtype=np.uint64).reshape(-1)[:, None]
        h = hash64(seed, SPLITS.index(split), _WORDS, idx, np.arange(self.config.length, dtype=np.uint64))
        return self.alphabet[(h % np.uint64(len(self.alphabet))).astype(np.int64)]

    def sample(self, split: str, seed: int, indices) -> dict[str, np.ndarray]:
        return self.format(self.words(split, seed, indices))

    def format(self, words: np.ndarray) -> dict[str, np.ndarray]:
        c = self.config
        n, length = words.shape
        targets = prefix_products(words, self.table)
        loss_mask = np.zeros((n, length), bool)
        loss_mask[:, -1 if c.targets == "last" else slice(None)] = True
        step = np.broadcast_to(np.arange(1, length + 1, dtype=np.int64), (n, length)).copy()  # the prefix length
        examples = {"inputs": words, "targets": targets, "loss_mask": loss_mask, "step": step}
        right = [pred == targets for pred in self.baselines(examples).values()]
        examples["trivial"] = np.logical_or.reduce(right).astype(np.int8)  # a baseline gets it: no tracking needed
        examples["fresh"] = first_visits(targets, self.order) & ~examples["trivial"].astype(bool)
        return examples

    def baselines(self, examples: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """most_frequent: the mode of the prefix product's distribution at each position (ties at the lowest index,
        the identity first): words of uniform elements give uniform products, so chance, 1/|G|; over a generating set
        the early products concentrate. last_m: the product of the last m elements, exact on the first m positions
        and by coincidence beyond."""
        words = examples["inputs"]
        return {"most_frequent": np.broadcast_to(self.modes[: words.shape[1]], words.shape).copy(),
                "last_m": window_products(words, self.table, self.config.window)}

    def product_distribution(self, length: int) -> np.ndarray:
        """(length, |G|): the probability of each prefix product at positions 1..length (a random walk on the group
        whose steps are uniform over the alphabet)."""
        dist, walk = np.zeros((length, self.order)), np.eye(self.order)[0]  # the empty product: the identity
        for t in range(length):
            walk = dist[t] = self._walk_step(walk)
        return dist

    def product_modes(self, length: int) -> np.ndarray:
        """(length,): the most probable prefix product at each position (exact ties: the lowest index), without
        holding the whole distribution; once the walk is stationary (uniform words: from position 1) it repeats."""
        modes, walk = np.zeros(length, np.int64), np.eye(self.order)[0]
        for t in range(length):
            step = self._walk_step(walk)
            modes[t] = np.argmax(step.round(12))
            if t and np.allclose(step, walk, rtol=0.0, atol=1e-15):
                modes[t:] = modes[t]
                break
            walk = step
        return modes

    def _walk_step(self, walk: np.ndarray) -> np.ndarray:
        """The prefix product's distribution one element later: p'(a g) += p(a) / |alphabet| for each drawable g."""
        n = len(self.alphabet)
        return np.bincount(self.table[:, self.alphabet].reshape(-1), weights=np.repeat(walk, n),
                           minlength=self.order) / n

    def show(self, arrays, count: int) -> str:
        vocab = self.layout().vocab
        out = []
        for i in range(min(count, len(arrays["inputs"]))):
            pairs = [f"{vocab[g]}→{vocab[p]}" for g, p in zip(arrays["inputs"][i], arrays["targets"][i])]
            out.append(f"word {i} (element→prefix product): " + " ".join(pairs))
        return "\n".join(out)
