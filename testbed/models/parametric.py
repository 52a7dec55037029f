"""Memories in the weights, for facts (generators/facts.py): the query's tokens, embedded and concatenated, are mapped
to the value's logits by

    mlp_memory   a hidden layer: the feed-forward layer as a key-value memory (Geva et al. 2021)
    pkm_memory   a product-key memory layer (Lample et al. 2019, arXiv 1907.05242): the query split in two halves,
                 each scored against sqrt(N) sub-keys; the k x k sums of the two top-k lists hold the top k of all
                 N = n_keys^2 keys, whose value rows are read with softmax weights. Only k rows per head are read
                 (and updated) per query.
    hash_memory  a hash layer (Roller et al. 2021, arXiv 2106.04426): E expert MLPs, each query sent to the one
                 fixed by a hash of its entity's name, no learned router
    pkm_transformer  the transformer with one block's feed-forward layer replaced by (or summed with) a product-key
                 memory read at every position (Lample et al.; "Memory Layers at Scale", Berges et al. 2024)

and each says which parameters count as memory (`memory_params`) and how many a query reads (`active_params`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from generators.core import ConfigError
from generators.core.registry import option as _f

from .base import SequenceModel, register_model
from .transformer import Transformer, TransformerConfig

READOUTS = ("vocab", "answers")


class QueryMemory(SequenceModel):
    """Embeddings of every position concatenated, a memory, a read-out; the logits repeated at every position
    (only the target's are scored)."""

    def __init__(self, config, layout, d_out: int):
        super().__init__(config, layout)
        if len(layout.answer_positions) > 1:
            raise ConfigError(f"a query memory answers with one token; an answer of {len(layout.answer_positions)} "
                              "tokens (value_tokens) needs a sequence model: transformer or pkm_transformer")
        if config.readout == "answers" and not layout.answer_tokens:
            raise ConfigError("readout = answers needs a task whose layout names its answer tokens (facts does)")
        answers = layout.answer_tokens if config.readout == "answers" else range(len(layout.vocab))
        self.register_buffer("answers", torch.as_tensor(list(answers), dtype=torch.long), persistent=False)
        index = torch.full((len(layout.vocab),), -1, dtype=torch.long)  # token -> its read-out row
        self.register_buffer("answer_index", index.index_copy(0, self.answers, torch.arange(len(answers))),
                             persistent=False)
        self.vocab_size = len(layout.vocab)
        self.tok_emb = nn.Embedding(len(layout.vocab), config.d_model)
        self.head = nn.Linear(d_out, len(answers))

    def memory(self, x: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def memory_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())

    def describe(self) -> dict:
        return {"n_layer": 1, "d_model": self.config.d_model, "loops": None}

    def active_params(self) -> int:
        """A query reads its own seq_len embedding rows, not the table; the families subtract what else they hold
        unread."""
        return self.num_params() - self.tok_emb.weight.numel() + self.seq_len * self.config.d_model

    def scores(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, answers) logits of the read-out rows, one per query."""
        self.check_length(inputs)
        return self.head(self.memory(self.tok_emb(inputs).flatten(1), inputs))

    def training_loss(self, batch):
        """The masked cross-entropy over the read-out rows alone: equal to the one over the vocabulary, where
        every other token's logit is -inf, without building (and differentiating) the vocabulary-wide logits."""
        rows, _ = batch["loss_mask"].nonzero(as_tuple=True)
        targets = self.answer_index[batch["targets"][batch["loss_mask"]]]
        return F.cross_entropy(self.scores(batch["inputs"])[rows].float(), targets), {}

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        scores = self.scores(inputs)
        if len(self.answers) < self.vocab_size:  # the other tokens can never be the answer
            scores = scores.new_full((len(inputs), self.vocab_size), float("-inf")).index_copy(1, self.answers, scores)
        return scores.unsqueeze(1).expand(-1, inputs.shape[1], -1)


def _positive(config, *names) -> None:
    """The sizes named at least 1, and a known read-out (every query memory's config has one)."""
    for name in names:
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1, got {getattr(config, name)}")
    if config.readout not in READOUTS:
        raise ConfigError(f"unknown readout {config.readout!r}; valid: {', '.join(READOUTS)}")


@dataclass(frozen=True)
class QueryMemoryConfig:
    """What every query memory's config has: the embedding width and the read-out."""

    d_model: int = _f(32, "embedding width per token")
    readout: str = _f("vocab", "read-out over: vocab (every token) | answers (only the tokens an answer can be, as "
                      "the task's layout names them: no parameters spent on rows no query asks)", hash="if_set")


@dataclass(frozen=True)
class MLPMemoryConfig(QueryMemoryConfig):
    hidden: int = _f(256, "hidden units: the keys (first matrix) and values (second) of the memory")

    def __post_init__(self):
        _positive(self, "d_model", "hidden")


@register_model("mlp_memory", MLPMemoryConfig)
class MLPMemory(QueryMemory):
    def __init__(self, config: MLPMemoryConfig, layout):
        super().__init__(config, layout, config.hidden)
        self.keys = nn.Linear(layout.seq_len * config.d_model, config.hidden)

    def memory(self, x, inputs):
        return F.relu(self.keys(x))

    def memory_parameters(self):
        return [*self.keys.parameters(), self.head.weight]


@dataclass(frozen=True)
class PKMConfig(QueryMemoryConfig):
    n_keys: int = _f(32, "sub-keys per half: n_keys^2 memory slots")
    topk: int = _f(8, "slots read per head (and candidates kept per half)")
    heads: int = _f(1, "query heads sharing the value table")
    d_key: int = _f(32, "query width per head (two halves of d_key / 2)")
    d_value: int = _f(32, "width of a value row")

    def __post_init__(self):
        _positive(self, "d_model", "n_keys", "topk", "heads", "d_key", "d_value")
        if self.d_key % 2:
            raise ConfigError(f"d_key must be even (two halves), got {self.d_key}")
        if self.topk > self.n_keys:
            raise ConfigError(f"topk ({self.topk}) must not exceed the sub-keys per half, n_keys ({self.n_keys})")


class ProductKeyMemory(nn.Module):
    def __init__(self, d_in: int, c: PKMConfig):
        super().__init__()
        self.c = c
        self.query = nn.Sequential(nn.Linear(d_in, c.heads * c.d_key), nn.BatchNorm1d(c.heads * c.d_key))  # as
        # Lample et al.: normalised queries keep spreading over the keys instead of collapsing onto a few
        self.subkeys = nn.Parameter(torch.randn(c.heads, 2, c.n_keys, c.d_key // 2) / (c.d_key // 2) ** 0.5)
        self.values = nn.Embedding(c.n_keys**2, c.d_value)
        nn.init.normal_(self.values.weight, std=c.d_value**-0.5)

    def select(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores, slot indices), each (B, heads, topk): the top k of all n_keys^2 keys for queries (B, heads,
        d_key), found from the top k of each half (the best pair sums of two sorted lists lie in their heads)."""
        c = self.c
        halves = q.view(*q.shape[:-1], 2, c.d_key // 2)  # (B, H, 2, d/2)
        scores = torch.einsum("bhsd,hskd->bhsk", halves, self.subkeys)  # (B, H, 2, n_keys)
        top, idx = scores.topk(c.topk, dim=-1)  # (B, H, 2, k)
        pairs = top[:, :, 0, :, None] + top[:, :, 1, None, :]  # (B, H, k, k)
        best, flat = pairs.flatten(2).topk(c.topk, dim=-1)
        i, j = idx[:, :, 0].gather(-1, flat // c.topk), idx[:, :, 1].gather(-1, flat % c.topk)
        return best, i * c.n_keys + j

    def read(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores, slots), each (B, heads, topk), of the rows queries x read."""
        return self.select(self.query(x).view(len(x), self.c.heads, self.c.d_key))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores, slots = self.read(x)
        weights = scores.softmax(-1)  # (B, H, k)
        return (weights.unsqueeze(-1) * self.values(slots)).sum((1, 2))  # the heads' reads summed


@register_model("pkm_memory", PKMConfig)
class PKMMemory(QueryMemory):
    def __init__(self, config: PKMConfig, layout):
        super().__init__(config, layout, config.d_value)
        self.pkm = ProductKeyMemory(layout.seq_len * config.d_model, config)

    def memory(self, x, inputs):
        return self.pkm(x)

    def memory_parameters(self):
        return [self.pkm.values.weight, self.pkm.subkeys]

    def memory_slots(self, inputs):
        self.check_length(inputs)
        return self.pkm.values.weight, self.pkm.read(self.tok_emb(inputs).flatten(1))[1].flatten(1)

    def active_params(self) -> int:
        c = self.config  # per query: k value rows per head of the table, every sub-key scored
        return super().active_params() - self.pkm.values.weight.numel() + c.heads * c.topk * c.d_value


@dataclass(frozen=True)
class HashMemoryConfig(QueryMemoryConfig):
    hidden: int = _f(64, "hidden units of each expert")
    experts: int = _f(16, "expert MLPs; a query goes to the one its entity's name (its first token where the "
                       "task names none) hashes to")

    def __post_init__(self):
        _positive(self, "d_model", "hidden", "experts")


def expert_of(tokens: torch.Tensor, experts: int, vocab: int = 0) -> torch.Tensor:
    """The fixed route: a multiplicative hash (Knuth's constant), modulo the experts, of the token id, or of the
    number a (B, T) row of tokens writes in base `vocab` (a name of several tokens: one key per name)."""
    key = tokens.long() if tokens.dim() == 1 else (tokens.long() * vocab ** torch.arange(
        tokens.shape[1] - 1, -1, -1, device=tokens.device)).sum(1)
    return (key * 2654435761 % 2**32) % experts


@register_model("hash_memory", HashMemoryConfig)
class HashMemory(QueryMemory):
    def __init__(self, config: HashMemoryConfig, layout):
        super().__init__(config, layout, config.hidden)
        d_in, e, h = layout.seq_len * config.d_model, config.experts, config.hidden
        self.w = nn.Parameter(torch.randn(e, d_in, h) / d_in**0.5)
        self.b = nn.Parameter(torch.zeros(e, h))
        self.key_positions = list(layout.key_positions) or [0]  # what the query is about: its entity's name

    def memory(self, x, inputs):
        e = expert_of(inputs[:, self.key_positions], self.config.experts, self.vocab_size)
        return F.relu(torch.bmm(x.unsqueeze(1), self.w[e]).squeeze(1) + self.b[e])

    def memory_parameters(self):
        return [self.w, self.b]

    def active_params(self) -> int:
        return super().active_params() - (self.config.experts - 1) * (self.w[0].numel() + self.b[0].numel())


@dataclass(frozen=True)
class PKMTransformerConfig(TransformerConfig):
    n_keys: int = _f(32, "memory: sub-keys per half (n_keys^2 slots, each a d_model-wide value row)")
    topk: int = _f(8, "memory: slots read per head and position")
    pkm_heads: int = _f(1, "memory: query heads sharing the value table")
    d_key: int = _f(32, "memory: query width per head (two halves)")
    pkm_layer: int = _f(-1, "the block whose feed-forward layer the memory takes (-1: the middle one, as Lample et "
                        "al.)")
    beside: bool = _f(False, "keep that block's feed-forward layer and add the memory's read to it")

    def __post_init__(self):
        super().__post_init__()
        self.memory_config()  # its own checks (topk against n_keys, an even d_key)
        if not -self.n_layer <= self.pkm_layer < self.n_layer:
            raise ConfigError(f"pkm_layer must name one of the {self.n_layer} blocks (or -1), got {self.pkm_layer}")

    def memory_config(self) -> PKMConfig:
        return PKMConfig(d_model=self.d_model, n_keys=self.n_keys, topk=self.topk, heads=self.pkm_heads,
                         d_key=self.d_key, d_value=self.d_model)

    @property
    def memory_block(self) -> int:
        return self.n_layer // 2 if self.pkm_layer == -1 else self.pkm_layer % self.n_layer


class PositionwiseMemory(nn.Module):
    """A product-key memory read at every position (in place of a block's feed-forward layer), or beside it."""

    def __init__(self, c: PKMTransformerConfig, mlp: nn.Module | None):
        super().__init__()
        self.pkm, self.mlp = ProductKeyMemory(c.d_model, c.memory_config()), mlp

    def read(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores, slots) of every position of x (B, L, d), each (B * L, heads, topk)."""
        return self.pkm.read(x.reshape(-1, x.shape[-1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pkm(x.reshape(-1, x.shape[-1])).view(x.shape)
        return out if self.mlp is None else out + self.mlp(x)


@register_model("pkm_transformer", PKMTransformerConfig)
class PKMTransformer(Transformer):
    """The transformer with one block's feed-forward layer replaced by (or summed with) a product-key memory
    (Lample et al. 2019; Berges et al. 2024): a large table of which each position reads topk rows."""

    def __init__(self, config: PKMTransformerConfig, layout):
        super().__init__(config, layout)
        block = self.blocks[config.memory_block]
        block.mlp = PositionwiseMemory(config, block.mlp if config.beside else None)  # its own initialisation

    @property
    def memory_layer(self) -> ProductKeyMemory:
        return self.blocks[self.config.memory_block].mlp.pkm

    def memory_parameters(self):
        return [self.memory_layer.values.weight, self.memory_layer.subkeys]

    def active_params(self) -> int:
        c = self.config  # per position: the value rows read, not the whole table
        return self.num_params() - self.memory_layer.values.weight.numel() + c.pkm_heads * c.topk * c.d_model

    def memory_slots(self, inputs):
        self.check_length(inputs)
        x, rotary = self.embed(inputs)
        for i, block in enumerate(self.blocks):
            if i == self.config.memory_block:  # the memory reads the normalised stream after this block's attention
                x = x + block.attn(block.norm1(x), rotary)
                slots = block.mlp.read(block.norm2(x))[1]
                return self.memory_layer.values.weight, slots.reshape(len(inputs), -1)
            x = block(x, rotary)
