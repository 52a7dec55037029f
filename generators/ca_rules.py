"""Rules of 1-D cellular automata: truth tables and their numbers, symmetry classes, rule-disjoint splits, evolution.

A rule of radius r is a truth table of 2^(2r+1) bits: the next value of cell i is table[v], where v reads the
neighbourhood x[i-r] .. x[i+r] as a binary number with the leftmost cell most significant. The rule number is
sum_v table[v] 2^v, which for r = 1 is Wolfram's numbering. Boundaries are periodic.

Symmetries. Mirroring the neighbourhood (table'[v] = table[reverse(v)]) and complementing inputs and output
(table'[v] = 1 - table[~v]) map a rule to one with the same dynamics up to relabelling; with their composition they
form a group of four. A rule's class is its orbit under that group (for r = 1, Wolfram's 88 classes; 30's class is
{30, 86, 135, 149}), named by its canonical member, the smallest rule number in it.

Symmetry-disjoint splits: a rule's split (train / val / test) is decided by a fixed hash of its class's canonical
member, so a rule and its mirror, complement and mirror-complement always fall in the same split, the three rule
sets are disjoint for every seed and dataset size, and no held-out rule is a relabelled training rule. For r = 1
the 88 classes are ranked by that hash and cut at the configured fractions of the 256 rules (an explicit list:
`testbed list rules --radius 1`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .core.errors import ConfigError
from .core.rng import hash64, pack_bits, to_unit, unpack_bits

_SPLIT_SALT = 0x5EED_CA11  # fixed: changing it would move rules between splits and break shared benchmarks
SPLIT_CODE = {"train": 0, "val": 1, "test": 2}


def table_size(radius: int) -> int:
    return 1 << (2 * radius + 1)


def radius_of(size: int) -> int:
    return (size.bit_length() - 2) // 2


def rule_table(number: int, radius: int) -> np.ndarray:
    """Truth table (2^(2r+1),) uint8 of a rule number: table[v] = bit v of the number."""
    return np.array([(number >> v) & 1 for v in range(table_size(radius))], np.uint8)


def rule_number(table: np.ndarray) -> int:
    return sum(int(b) << v for v, b in enumerate(np.asarray(table).tolist()))


# --- symmetries ---------------------------------------------------------------------------------------------------

def reversed_neighbourhoods(size: int) -> np.ndarray:
    """perm[v] = v with its 2r+1 bits in reverse order (the same neighbourhood read right to left)."""
    n_bits = radius_of(size) * 2 + 1
    v = np.arange(size)
    return sum(((v >> j) & 1) << (n_bits - 1 - j) for j in range(n_bits))


def mirror(tables: np.ndarray) -> np.ndarray:
    """table'[v] = table[reverse(v)]: the rule seen in a mirror."""
    return tables[..., reversed_neighbourhoods(tables.shape[-1])]


def complement(tables: np.ndarray) -> np.ndarray:
    """table'[v] = 1 - table[~v]: the rule with 0 and 1 exchanged on inputs and output."""
    return 1 - tables[..., ::-1]


def images(tables: np.ndarray) -> np.ndarray:
    """(..., 4, size): the rule, its mirror, its complement and its mirror-complement."""
    return np.stack([tables, mirror(tables), complement(tables), mirror(complement(tables))], axis=-2)


def _image_indices(size: int) -> np.ndarray:
    """(4, size): table indices of the four images; the last two are complemented as well (1 - table[...])."""
    rev, top = reversed_neighbourhoods(size), size - 1
    return np.stack([np.arange(size), rev, top - np.arange(size), top - rev])


def _canonical_words(tables: np.ndarray) -> np.ndarray:
    """The canonical member of each table's class, packed (..., n_words): the lexicographically smallest of the
    four images' words, most significant word first (the smallest rule number)."""
    tables = np.asarray(tables, np.uint8)
    imgs = tables[..., _image_indices(tables.shape[-1])]  # (..., 4, size) in one gather
    imgs[..., 2:, :] ^= 1
    words = pack_bits(imgs)  # (..., 4, n_words), the most significant word last
    best = np.ones(words.shape[:-1], bool)
    for j in range(words.shape[-1] - 1, -1, -1):
        w = np.where(best, words[..., j], np.uint64(2**64 - 1))
        best &= w == w.min(axis=-1, keepdims=True)
    return np.take_along_axis(words, np.argmax(best, axis=-1)[..., None, None], axis=-2)[..., 0, :]


def canonical(tables: np.ndarray) -> np.ndarray:
    """The canonical member (smallest rule number) of each table's symmetry class, as a table (..., size)."""
    return unpack_bits(_canonical_words(tables), np.shape(tables)[-1])


def table_hash(words: np.ndarray) -> np.ndarray:
    """Fixed hash of truth tables packed as (..., n_words) uint64; independent of every seed."""
    h = hash64(_SPLIT_SALT, words[..., 0])
    for j in range(1, words.shape[-1]):
        h = hash64(h, words[..., j])
    return h


def split_of_hash(h: np.ndarray, fractions) -> np.ndarray:
    u = to_unit(h)
    return (u >= fractions[0]).astype(np.int8) + (u >= fractions[0] + fractions[1])


def class_hash(tables: np.ndarray) -> np.ndarray:
    """The hash that decides a rule's split: that of its class's canonical member."""
    return table_hash(_canonical_words(tables))


# --- splits -------------------------------------------------------------------------------------------------------

def radius1_classes() -> list[tuple[int, list[int]]]:
    """The 88 symmetry classes of the 256 radius-1 rules: (canonical number, sorted members)."""
    tables = np.stack([rule_table(n, 1) for n in range(256)])
    canon = canonical(tables).astype(np.int64) @ (1 << np.arange(8))
    return [(int(c), np.flatnonzero(canon == c).tolist()) for c in np.unique(canon)]


def radius1_split(fractions=(0.8, 0.1, 0.1)) -> dict[str, np.ndarray]:
    """The explicit r = 1 split: the 88 classes ranked by their canonical member's hash, then cut where the rules of
    the classes so far reach each fraction of the 256 (whole classes only)."""
    classes = radius1_classes()
    keys = table_hash(np.array([[c] for c, _ in classes], np.uint64))
    order = np.argsort(keys, kind="stable")
    cuts, parts, taken = np.cumsum(fractions)[:2] * 256, {"train": [], "val": [], "test": []}, 0
    for i in order:
        members = classes[i][1]
        split = "train" if taken < round(cuts[0]) else "val" if taken < round(cuts[1]) else "test"
        parts[split] += members
        taken += len(members)
    return {s: np.array(sorted(p), np.int64) for s, p in parts.items()}


@lru_cache(maxsize=64)
def radius1_split_classes(fractions: tuple) -> dict[str, int]:
    """{split: how many of the 88 radius-1 classes it holds} under these split fractions."""
    class_of = {int(m): c for c, members in radius1_classes() for m in members}
    return {s: len({class_of[int(r)] for r in pool}) for s, pool in radius1_split(fractions).items()}


MIN_SPLIT_CLASSES = 5  # per split at radius 1: fewer held-out classes give no interval over classes (aggregate.py)
MIN_SPLIT_FRACTION = 0.01  # at radius >= 2: a split's rules are drawn by rejection, 1 / fraction tries each


def check_split_fractions(fractions, radius: int) -> None:
    """Every split keeps enough of the rule space: at radius 1 at least MIN_SPLIT_CLASSES whole symmetry classes,
    above it at least MIN_SPLIT_FRACTION of the rules."""
    names = ("train", "val", "test")
    if radius >= 2:
        small = [n for n, f in zip(names, fractions) if f < MIN_SPLIT_FRACTION]
        if small:
            raise ConfigError(f"split_fractions {list(fractions)} give the {small[0]} split less than "
                              f"{MIN_SPLIT_FRACTION} of the rules; raise its share")
        return
    counts = radius1_split_classes(tuple(fractions))
    thin = [(n, counts[n]) for n in names if counts[n] < MIN_SPLIT_CLASSES]
    if thin:
        name, count = thin[0]
        raise ConfigError(f"split_fractions {list(fractions)} leave the {name} split {count} of the 88 radius-1 "
                          f"symmetry classes (at least {MIN_SPLIT_CLASSES}: intervals are over classes); raise its "
                          f"share")


def split_of_rule(number: int, radius: int, fractions=(0.8, 0.1, 0.1)) -> str:
    if radius == 1:
        return next(s for s, pool in radius1_split(fractions).items() if number in pool)
    code = int(split_of_hash(class_hash(rule_table(number, radius)[None]), fractions)[0])
    return ("train", "val", "test")[code]


def sample_rules(split: str, seed: int, indices: np.ndarray, radius: int, fractions, stream: int) -> np.ndarray:
    """Uniform truth tables (n, size) of rules of the split (radius >= 2), example i a function of (seed, split, i).

    Rejection sampling vectorised over examples: the loop runs over attempts, each on the examples still without a
    rule of the right split (expected 1 / fraction attempts)."""
    code, size = SPLIT_CODE[split], table_size(radius)
    n_words = -(-size // 64)
    word_ids = np.arange(n_words, dtype=np.uint64)
    tables = np.empty((len(indices), size), np.uint8)
    pending = np.arange(len(indices))
    for attempt in range(100_000):
        w = hash64(seed, code, stream, indices[pending, None], attempt, word_ids)
        if size < 64:
            w &= np.uint64((1 << size) - 1)
        candidates = unpack_bits(w, size)
        ok = split_of_hash(class_hash(candidates), fractions) == code
        tables[pending[ok]] = candidates[ok]
        pending = pending[~ok]
        if not len(pending):
            return tables
    raise RuntimeError("rule rejection sampling did not terminate")  # probability < 1e-4000


# --- evolution ----------------------------------------------------------------------------------------------------

def evolve(init: np.ndarray, tables: np.ndarray, steps: int) -> np.ndarray:
    """Orbits (n, steps, W) uint8 from initial states (n, W) and one truth table per example (n, 2^(2r+1)).

    Bit-sliced for r <= 3: 64 examples share a uint64 word per cell, and each example's rule is applied as a
    multiplexer tree over its truth-table bits, one neighbour bit per level (2^(2r+1) - 1 word-wide selections
    per cell and step, each serving 64 examples). Radius 4's 511-way tree costs more than a gather: evolve_gather.
    """
    if radius_of(tables.shape[1]) > 3:
        return evolve_gather(init, tables, steps)
    n, w = init.shape
    r = radius_of(tables.shape[1])
    padded = n + (-n) % 64

    def by_example_bits(a: np.ndarray) -> np.ndarray:  # (n, m) 0/1 -> (m, padded // 64) words, bit e = example e
        cols = np.zeros((a.shape[1], padded), np.uint8)
        cols[:, :n] = a.T
        return np.packbits(cols, axis=1, bitorder="little").view(np.uint64)

    rule_bits = by_example_bits(np.asarray(tables, np.uint8))[:, None, :]  # (size, 1, words): bit e = table_e[v]
    states = np.empty((steps, w, padded // 64), np.uint64)
    states[0] = by_example_bits(np.asarray(init, np.uint8))
    for t in range(1, steps):
        level = rule_bits
        for j in range(2 * r, -1, -1):  # the rightmost neighbour is v's least significant bit: the first level
            neighbour = np.roll(states[t - 1], r - j, axis=0)  # cell c's neighbour c + j - r, periodic
            low, high = level[0::2], level[1::2]  # entries whose index has this bit 0 / 1
            level = low ^ ((low ^ high) & neighbour)
        states[t] = level[0]
    cells = np.unpackbits(states.view(np.uint8), axis=-1, bitorder="little")[:, :, :n]  # (steps, W, n)
    return np.ascontiguousarray(cells.transpose(2, 0, 1))


def evolve_gather(init: np.ndarray, tables: np.ndarray, steps: int) -> np.ndarray:
    """evolve by table lookup: vectorised over examples and cells, the only loop over time. Each state is stored
    with r wrapped cells on both sides so neighbourhoods are plain slices, and the lookup is one flat gather."""
    n, w = init.shape
    size = tables.shape[1]
    r = radius_of(size)
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


def neighbourhoods(states: np.ndarray, radius: int) -> np.ndarray:
    """(..., W) states -> (..., W) neighbourhood values v of every cell (periodic boundary)."""
    v = np.zeros(states.shape, np.int64)
    for j in range(-radius, radius + 1):  # leftmost neighbour ends up most significant
        v = (v << 1) | np.roll(states, -j, axis=-1)
    return v


def listing(radius: int, rule: int | None = None) -> list[str]:
    """`testbed list rules`: one rule's split and class, the explicit radius-1 split, or how larger radii split."""
    if not 1 <= radius <= 4:
        from .core.errors import ConfigError

        raise ConfigError(f"radius must be in 1..4, got {radius}")
    if rule is not None:
        from .ca_config import CAConfig

        CAConfig(radius=radius, rule=(rule,), n_input=1, width=2 * radius + 1)  # checks the number's range
        members = sorted({rule_number(t) for t in images(rule_table(rule, radius))})
        return [f"rule {rule} (radius {radius}): {split_of_rule(rule, radius)}; its class (mirror, complement, "
                f"both): {' '.join(map(str, members))}"]
    if radius == 1:
        split = {int(n): s for s, pool in radius1_split().items() for n in pool}
        out = []
        for name in ("train", "val", "test"):
            mine = [members for _, members in radius1_classes() if split[members[0]] == name]
            out.append(f"{name} ({len(mine)} classes, {sum(map(len, mine))} rules): "
                       + " ".join("{" + " ".join(map(str, m)) + "}" for m in mine))
        return out
    return [f"radius {radius}: 2^{1 << (2 * radius + 1)} rules; a rule's split is fixed by a hash of its symmetry "
            "class (the rule, its mirror, its complement and both: the smallest of their numbers; by default "
            "train, val and test take 0.8, 0.1 and 0.1 of rule space, data.split_fractions). Ask for one with "
            "--rule N."]
