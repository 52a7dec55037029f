"""Facts to store in the weights (Allen-Zhu & Li, "Physics of Language Models 3.3", arXiv 2404.05405): N entities,
each with A attributes whose values are drawn once, from V values uniformly or by a Zipf law. A query is the
sequence (entity, attribute, ?) and its target the value at the '?'. Memorisation is the task: every split asks the
same facts (the world is fixed by `world`, not by the split or seed); the split seed only orders them, and the
training stream visits every fact once per N A examples, so `exposures` = steps x batch / (N A).

The information the world holds is sum over facts of the entropy of its value: N A log2 V bits for uniform values
(`info_bits`), which the capacity figures count against the parameters that store it.

`templates` > 1 phrases each query in one of several ways (a template token between the attribute and the '?'),
drawn per example; with `held_out_template` validation and test ask in the last one, which training never uses, so
that recall through a new phrasing (lookup) is measured apart from recall as stored (Allen-Zhu & Li 3.1's point:
facts stored in one form are not necessarily extractable in another).

`subset` picks the facts a run asks, for writing new facts over stored ones (the forgetting figure): `stored` is the
first half of the entities, `new` the second half, `rewritten` the first attribute of the stored entities with its
values drawn again (a world of its own), `kept` the stored facts a rewrite leaves (the other attributes). The
vocabulary is the whole world's in every subset, so a model trained on one can be fine-tuned on another.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .base import MAX_VOCAB, SPLITS, Generator, Layout, check_seed, check_size, check_split
from .core.errors import ConfigError
from .core.registry import option as _f
from .core.registry import register
from .core.rng import hash64, to_unit

_VALUE, _ORDER, _REWRITE, _TEMPLATE = 1, 2, 3, 4


def recalled_bits(accuracy: float, n_facts: int, n_values: int) -> float:
    """Bits a memory holds of n_facts uniform values it recalls with this accuracy: the mutual information between
    the value and the answer when errors fall uniformly on the other values (Allen-Zhu & Li count beyond chance),
    n_facts (log2 V - h(p) - (1 - p) log2(V - 1)), 0 at chance."""
    p = min(max(accuracy, 0.0), 1.0)
    if p <= 1 / n_values:  # at or below chance: nothing recalled (below, the formula would reward wrong answers)
        return 0.0
    h = 0.0 if p in (0.0, 1.0) else -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return float(n_facts * max(0.0, np.log2(n_values) - h - (1 - p) * np.log2(n_values - 1)))
LAWS = ("uniform", "zipf")
SUBSETS = ("all", "stored", "new", "rewritten", "kept")


@dataclass(frozen=True)
class FactsConfig:
    n_entities: int = _f(1000, "N entities")
    n_attributes: int = _f(4, "A attributes per entity")
    n_values: int = _f(16, "V values an attribute can take")
    law: str = _f("uniform", "how values are drawn: uniform | zipf")
    zipf_alpha: float = _f(1.0, "exponent of the Zipf law over the V values (law = zipf)")
    world: int = _f(0, "the seed of the facts themselves, the same in every split")
    name_tokens: int = _f(1, "tokens an entity's name is written with, as base-b digits (b^T >= N) shared by every "
                          "name, as Allen-Zhu & Li's names are (1: a token of its own per entity, whose embedding "
                          "grows with N and holds facts of its own)", hash="if_set")
    value_tokens: int = _f(1, "tokens a value is written with, as base-b digits (b^T >= V): the answer spans T "
                           "positions and exact match needs them all (for sequence models)", hash="if_set")
    templates: int = _f(1, "ways a query is phrased: a template token after the attribute (1: none)",
                        hash="if_set")
    held_out_template: bool = _f(False, "validation and test ask every fact in the last template, which training "
                                 "never shows: recall through a phrasing the facts were not stored with (lookup, "
                                 "not storage); needs templates >= 2", hash="if_set")
    subset: str = _f("all", "the facts asked: all | stored (first half of the entities) | new (second half) | "
                     "rewritten (the stored entities' first attribute, values redrawn) | kept (their other attributes)",
                     hash="if_set")

    def __post_init__(self):
        for name in ("n_entities", "n_attributes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.n_values < 2:
            raise ConfigError(f"n_values must be at least 2 (one value holds no information), got {self.n_values}")
        for name in ("name_tokens", "value_tokens"):
            if not 1 <= getattr(self, name) <= 8:
                raise ConfigError(f"{name} must be in 1..8, got {getattr(self, name)}")
        if self.templates < 1 or (self.held_out_template and self.templates < 2):
            raise ConfigError(f"templates must be at least 1 (2 with held_out_template: one to train, one held "
                              f"out), got {self.templates}")
        names = digits_base(self.n_entities, self.name_tokens)
        check_size("the name tokens + n_attributes + n_values + templates",
                   names + self.n_attributes + self.n_values + self.templates + 1, MAX_VOCAB, "a vocabulary")
        if self.law not in LAWS:
            raise ConfigError(f"unknown law {self.law!r}; valid: {', '.join(LAWS)}")
        if not (np.isfinite(self.zipf_alpha) and self.zipf_alpha > 0):
            raise ConfigError(f"zipf_alpha must be a positive number, got {self.zipf_alpha}")
        check_seed(self.world)
        if self.subset not in SUBSETS:
            raise ConfigError(f"unknown subset {self.subset!r}; valid: {', '.join(SUBSETS)}")
        if self.subset != "all" and self.n_entities < 2:
            raise ConfigError(f"subset {self.subset} halves the entities: n_entities must be at least 2")
        if self.subset == "kept" and self.n_attributes < 2:
            raise ConfigError("subset kept is the attributes a rewrite of the first leaves: n_attributes must be >= 2")


def digits_base(n: int, tokens: int) -> int:
    """The base of numbers below n written with `tokens` digits: the smallest b >= 2 with b^T >= n (n itself for
    one token)."""
    if tokens == 1:
        return n
    b = max(2, int(np.ceil(n ** (1 / tokens))))
    while b**tokens < n:  # floating point may round the root down
        b += 1
    return b


def digits(x: np.ndarray, base: int, tokens: int) -> np.ndarray:
    """(n, tokens) base-`base` digits of x, most significant first."""
    return (np.asarray(x)[:, None] // base ** np.arange(tokens - 1, -1, -1)) % base


@register("facts", FactsConfig)
class Facts(Generator):
    """(entity, attribute, ?) -> the attribute's value for that entity."""

    # token ids: 0 is the query mark, then entities (or the digits of their names), attributes, values
    def __init__(self, config: FactsConfig):
        super().__init__(config)
        c = config
        self.name_base = digits_base(c.n_entities, c.name_tokens)
        self.entity0, self.attribute0 = 1, 1 + self.name_base
        self.value0 = self.attribute0 + c.n_attributes
        weights = (np.ones(c.n_values) if c.law == "uniform" else
                   1.0 / np.arange(1, c.n_values + 1) ** c.zipf_alpha)
        self.probs = weights / weights.sum()
        self._orders: dict = {}  # (split, seed, pass) -> that pass's order of the facts, the last few kept

    @functools.cached_property
    def asked(self) -> np.ndarray:
        """The fact numbers e A + a the examples ask (built on first use: the size checks read n_facts first)."""
        c = self.config
        entity, attribute = np.divmod(np.arange(c.n_entities * c.n_attributes), c.n_attributes)
        stored = entity < c.n_entities // 2
        asked = {"all": np.ones_like(stored), "stored": stored, "new": ~stored,
                 "rewritten": stored & (attribute == 0), "kept": stored & (attribute > 0)}
        return np.flatnonzero(asked[c.subset])

    @property
    def n_facts(self) -> int:
        """The facts this subset asks (every fact of the world for subset = all), counted without building them."""
        c = self.config
        half = c.n_entities // 2
        return {"all": c.n_entities * c.n_attributes, "stored": half * c.n_attributes,
                "new": (c.n_entities - half) * c.n_attributes, "rewritten": half,
                "kept": half * (c.n_attributes - 1)}[c.subset]

    def world_bytes(self) -> int:
        """The facts asked, their hashes and a pass's order (argsort's work space), and the few orders kept."""
        return 64 * self.n_facts

    def exposures(self, examples: int) -> float:
        """The stream visits every fact asked once per n_facts examples."""
        return examples / self.n_facts

    def recall_bits(self, exact_match: float) -> float | None:
        """The facts asked, recalled at this exact match (uniform values; a Zipf law's errors are not uniform, and
        the count would not hold)."""
        if self.config.law != "uniform" or not np.isfinite(exact_match):
            return None
        return recalled_bits(exact_match, self.n_facts, self.config.n_values)

    @property
    def needs_start(self) -> bool:
        """A rewrite overwrites facts a model has stored: it only means something fine-tuned from such a model."""
        return self.config.subset == "rewritten"

    @property
    def info_bits(self) -> float:
        """The world's information: n_facts times the entropy of one value, in bits."""
        p = self.probs
        return float(self.n_facts * -(p * np.log2(p)).sum())

    def values(self, facts: np.ndarray) -> np.ndarray:
        """(n,) value index of facts numbered e A + a: drawn once from the law, by the world seed alone (a rewrite's
        from a stream of its own)."""
        tag = _REWRITE if self.config.subset == "rewritten" else _VALUE
        u = to_unit(hash64(self.config.world, tag, np.asarray(facts, np.uint64)))
        return np.minimum(np.searchsorted(np.cumsum(self.probs), u, side="right"), self.config.n_values - 1)

    @property
    def base(self) -> int:
        """Digits of a value written with value_tokens tokens: the smallest b with b^T >= V (V itself for T = 1)."""
        return digits_base(self.config.n_values, self.config.value_tokens)

    @property
    def template0(self) -> int:
        return self.value0 + self.base

    def value_digits(self, values: np.ndarray) -> np.ndarray:
        """(n, T) token ids of the values, most significant digit first."""
        return self.value0 + digits(values, self.base, self.config.value_tokens)

    def name_digits(self, entities: np.ndarray) -> np.ndarray:
        """(n, T) token ids of the entities' names, most significant digit first."""
        return self.entity0 + digits(entities, self.name_base, self.config.name_tokens)

    def layout(self) -> Layout:
        c = self.config
        digits = (f"v{i}" for i in range(c.n_values)) if c.value_tokens == 1 else (f"d{i}" for i in range(self.base))
        names = (f"e{i}" for i in range(c.n_entities)) if c.name_tokens == 1 else (f"n{i}" for i in range(
            self.name_base))
        vocab = ("?", *names, *(f"a{i}" for i in range(c.n_attributes)),
                 *digits, *(f"t{i}" for i in range(c.templates * (c.templates > 1))))
        n = c.name_tokens + 1 + (c.templates > 1) + c.value_tokens
        return Layout(vocab, n, np.stack([np.zeros(n, np.int64), np.arange(n)], 1), 1, n,
                      answer_positions=tuple(range(n - c.value_tokens, n)),
                      answer_tokens=tuple(range(self.value0, self.value0 + self.base)),
                      key_positions=tuple(range(c.name_tokens)))

    def template_of(self, split: str, seed: int, idx: np.ndarray) -> np.ndarray:
        """Each example's phrasing: drawn per example among the templates training may use, or the held-out one."""
        c = self.config
        if c.held_out_template and split != "train":
            return np.full(len(idx), c.templates - 1, np.int64)
        shown = c.templates - 1 if c.held_out_template else c.templates
        h = hash64(seed, SPLITS.index(split), _TEMPLATE, np.asarray(idx, np.uint64))
        return (h % np.uint64(shown)).astype(np.int64)

    def facts_of(self, split: str, seed: int, indices) -> np.ndarray:
        """The fact each example asks: example i of pass p is the (i mod N A)-th of that pass's seeded order."""
        split, seed = check_split(split), check_seed(seed)
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        passes, pos = np.divmod(idx, self.n_facts)
        out = np.empty(len(idx), np.int64)
        for p in np.unique(passes):  # a batch meets at most two passes
            sel = passes == p
            out[sel] = self._order(split, seed, int(p))[pos[sel]]
        return self.asked[out]

    def _order(self, split: str, seed: int, p: int) -> np.ndarray:
        key = (split, seed, p)
        if key not in self._orders:
            if len(self._orders) > 4:
                self._orders.clear()
            h = hash64(seed, SPLITS.index(split), _ORDER, p, np.arange(self.n_facts, dtype=np.uint64))
            self._orders[key] = np.argsort(h, kind="stable")
        return self._orders[key]

    def sample(self, split: str, seed: int, indices) -> dict[str, np.ndarray]:
        c = self.config
        facts = self.facts_of(split, seed, indices)
        entity, attribute = np.divmod(facts, c.n_attributes)
        n = len(facts)
        columns = [*self.name_digits(entity).T, self.attribute0 + attribute, *[np.zeros(n, np.int64)] * c.value_tokens]
        if c.templates > 1:
            idx = np.asarray(indices, dtype=np.int64).reshape(-1)
            columns.insert(c.name_tokens + 1, self.template0 + self.template_of(split, seed, idx))
        inputs = np.stack(columns, 1)
        targets = inputs.copy()
        targets[:, -c.value_tokens:] = self.value_digits(self.values(facts))
        loss_mask = np.zeros(inputs.shape, bool)
        loss_mask[:, -c.value_tokens:] = True
        return {"inputs": inputs, "targets": targets, "loss_mask": loss_mask, "attribute": attribute}

    def baselines(self, examples: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """most_frequent: the likeliest value of the law, for every query (chance for uniform values)."""
        pred = examples["inputs"].copy()
        t = self.config.value_tokens
        pred[:, -t:] = self.value_digits(np.full(len(pred), int(np.argmax(self.probs))))
        return {"most_frequent": pred}

    def show(self, arrays, count: int) -> str:
        vocab, t = self.layout().vocab, self.config.value_tokens
        return "\n".join(" ".join(vocab[x] for x in q[:-t]) + " -> " + " ".join(vocab[x] for x in v[-t:]) for q, v in
                          zip(arrays["inputs"][:count], arrays["targets"][:count]))
