"""Transformer baseline, readable top to bottom.

Two sequence formats from the papers share this one model: a causal decoder (P1, `causal = true`) and a
bidirectional encoder (P2, `causal = false`). In both, target positions carry a mask token in the input and the
whole target is read out of one forward pass at those positions.

Positional encodings (`pos`):
  learned  learned absolute position embeddings (P2)
  rope     rotary embeddings over the sequence index on `rope_fraction` of each head's dims (P1: 0.25)
  grid     rotary embeddings over the (time, cell) coordinates of the orbit: half of the rotated pairs turn with
           the time index, half with the cell index at harmonics of 2π/W, so that cells 0 and W-1 are neighbours as
           in the periodic CA and "the cell above-left" is the same relative rotation everywhere. Plus learned
           absolute embeddings so that tokens off the grid (separators, rule bits) stay distinguishable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from generators.core import ConfigError
from generators.core.registry import option as _f

from .base import SequenceModel, check_layers, register_model

POSITIONS = ("learned", "rope", "grid")



@dataclass(frozen=True)
class TransformerConfig:
    n_layer: int = _f(4, "number of transformer blocks")
    n_head: int = _f(4, "attention heads per block")
    d_model: int = _f(128, "residual stream width")
    d_ff: int = _f(0, "hidden width of the MLP; 0 means 4 * d_model")
    dropout: float = _f(0.0, "dropout on attention weights and residual branches")
    causal: bool = _f(False, "causal decoder (P1) instead of a bidirectional encoder (P2)")
    pos: str = _f("grid", "positional encoding: learned | rope | grid (2-D time x cell rotary)")
    rope_fraction: float = _f(1.0, "fraction of each head's dims that rotary encodings rotate")
    bias: bool = _f(True, "biases in the linear layers (a query/key bias lets a head attend by position alone)")
    init_std: float = _f(0.02, "std of the normal initialisation of weights (residual projections / sqrt(2 n_layer))")
    rope_base: float = _f(10000.0, "rotary base of the sequence-index angles (pos = rope)")
    init: str = _f("gpt2", "weights: gpt2 (normal(0, init_std), residual projections scaled) | torch (PyTorch's "
                   "layer defaults: N(0, 1) embeddings, uniform linear layers; recall tasks learn much sooner)",
                   hash="if_set")

    def __post_init__(self):
        check_layers(self.n_layer)
        for name in ("n_head", "d_model"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.d_model % self.n_head:
            raise ConfigError(f"d_model ({self.d_model}) must be divisible by n_head ({self.n_head})")
        if self.pos not in POSITIONS:
            raise ConfigError(f"unknown pos {self.pos!r}; valid: {', '.join(POSITIONS)}")
        if not 0 < self.rope_fraction <= 1:
            raise ConfigError(f"rope_fraction must be in (0, 1], got {self.rope_fraction}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.init not in ("gpt2", "torch"):
            raise ConfigError(f"init must be gpt2 or torch, got {self.init!r}")
        if self.init_std <= 0:
            raise ConfigError(f"init_std must be positive, got {self.init_std}")
        if self.d_ff < 0:
            raise ConfigError(f"d_ff must be >= 0, got {self.d_ff}")


def rotary_angles(config: TransformerConfig, layout) -> torch.Tensor:
    """(L, rot_dim // 2) rotation angles of every position; rot_dim is even and at most the head dim."""
    head_dim = config.d_model // config.n_head
    pairs = max(1, int(head_dim * config.rope_fraction) // 2)
    if config.pos == "rope":
        inv_freq = config.rope_base ** (-torch.arange(pairs) / pairs)
        return torch.arange(layout.seq_len)[:, None] * inv_freq[None, :]
    # grid: a quarter of the pairs turn with the time index, the rest with the cell index. Both use harmonics
    # (multiples of a base angle) so a head can focus sharply on one (time offset, cell offset): time at multiples
    # of pi / n_rows (no wrap-around within the sequence), cells at multiples of 2 pi / W (wrap-around like the
    # periodic automaton, so offsets -1 and W-1 coincide).
    coords = torch.as_tensor(layout.coords, dtype=torch.float32)
    row_pairs = max(1, pairs // 4)
    col_pairs = pairs - row_pairs
    row_freq = math.pi * (torch.arange(row_pairs) + 1) / max(1, layout.n_rows)
    period = layout.col_period or 2 * layout.n_cols
    col_freq = 2 * math.pi * (torch.arange(col_pairs) % max(1, period // 2) + 1) / period
    return torch.cat([coords[:, :1] * row_freq, coords[:, 1:] * col_freq], dim=1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first 2 * cos.shape[-1] dims of x (..., D) in pairs (x_i, x_{i + half}); cos and sin broadcast
    against x's leading dims (e.g. (L, pairs) for x of (B, H, L, D))."""
    half = cos.shape[-1]
    # split, not slicing: its backward concatenates the gradients, where a slice's fills a zero tensor per piece
    x1, x2, rest = x.split([half, half, x.shape[-1] - 2 * half], dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos, rest], dim=-1)


def rotary_with_slots(rotary, a: int, b: int, before: int = 0, after: int = 0):
    """The rotary tables of positions [a, b) with `before` and `after` extra slots (memory tokens) at angle 0, i.e.
    not rotated; None stays None."""
    if rotary is None:
        return None
    cos, sin = rotary
    pairs = cos.shape[1]
    return (torch.cat([cos.new_ones(before, pairs), cos[a:b], cos.new_ones(after, pairs)]),
            torch.cat([sin.new_zeros(before, pairs), sin[a:b], sin.new_zeros(after, pairs)]))


class SelfAttention(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.n_head, self.causal, self.dropout = config.n_head, config.causal, config.dropout
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=config.bias)

    def forward(self, x, rotary=None):
        b, t, d = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.n_head, d // self.n_head)
        qk, v = qkv.split([2, 1], dim=2)  # (split for the same reason as in apply_rotary)
        v = v.squeeze(2).transpose(1, 2)
        if rotary is not None:  # queries and keys together, before the heads move forward: fewer, denser ops
            cos, sin = rotary
            qk = apply_rotary(qk, cos[:, None, None], sin[:, None, None])
        q, k = qk.permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=self.causal, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, d_model: int, hidden: int, bias: bool = True):
        super().__init__()
        self.up = nn.Linear(d_model, hidden, bias=bias)
        self.proj = nn.Linear(hidden, d_model, bias=bias)

    def forward(self, x):
        return self.proj(F.gelu(self.up(x)))


class Block(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(config.d_model), SelfAttention(config)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.mlp = MLP(config.d_model, config.d_ff or 4 * config.d_model, config.bias)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x, rotary=None):
        x = x + self.drop(self.attn(self.norm1(x), rotary))
        return x + self.drop(self.mlp(self.norm2(x)))


class Embedder(nn.Module):
    """Token embeddings plus the positional encoding of `config.pos`; returns (x, rotary) where rotary is the
    (cos, sin) pair each attention layer applies to queries and keys, or None. Shared by every transformer family."""

    def __init__(self, config: TransformerConfig, layout):
        super().__init__()
        self.tok_emb = nn.Embedding(len(layout.vocab), config.d_model)
        self.pos_emb = nn.Embedding(layout.seq_len, config.d_model) if config.pos != "rope" else None
        self.rotary = config.pos in ("rope", "grid")
        if self.rotary:
            angles = rotary_angles(config, layout)
            self.register_buffer("rot_cos", angles.cos(), persistent=False)
            self.register_buffer("rot_sin", angles.sin(), persistent=False)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, inputs: torch.Tensor):
        x = self.tok_emb(inputs)
        if self.pos_emb is not None:
            x = x + self.pos_emb.weight[: inputs.shape[1]]
        return self.drop(x), ((self.rot_cos, self.rot_sin) if self.rotary else None)


def init_weights(model: nn.Module, scheme: str, std: float, depth: float) -> None:
    """GPT-2 initialisation: normal(0, std) matrices, residual output projections scaled by 1/sqrt(2 depth), zero
    biases. `depth` is the effective number of layers a residual stream passes through. The scheme "torch" keeps
    the layers' own defaults: on MQAR their O(1) embeddings and random biases let the induction circuit form
    in hundreds of steps where GPT-2's small init sits on the 1/D plateau for thousands."""
    if scheme == "torch":
        return
    for name, p in model.named_parameters():
        if p.dim() == 2:
            nn.init.normal_(p, mean=0.0, std=std / (math.sqrt(2 * depth) if name.endswith("proj.weight") else 1))
        elif name.endswith(".bias") and "norm" not in name:
            nn.init.zeros_(p)


@register_model("transformer", TransformerConfig)
class Transformer(SequenceModel):
    """Token + position embeddings, n_layer pre-norm blocks, a final norm and a linear read-out per position."""

    def __init__(self, config: TransformerConfig, layout):
        super().__init__(config, layout)
        self.embed = Embedder(config, layout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, len(layout.vocab), bias=False)
        init_weights(self, config.init, config.init_std, config.n_layer)

    def state_size(self) -> int:
        return 2 * self.config.n_layer * self.seq_len * self.config.d_model  # keys and values of every position

    def hidden_states(self, inputs: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        self.check_length(inputs)
        x, rotary = self.embed(inputs)
        out = [("embedding", x)]
        for i, block in enumerate(self.blocks):
            x = block(x, rotary)
            out.append((f"layer {i + 1}", x))
        return out

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.hidden_states(inputs)[-1][1]))


@dataclass(frozen=True)
class TorchEncoderConfig:
    n_layer: int = _f(2, "number of encoder layers")
    n_head: int = _f(4, "attention heads")
    d_model: int = _f(64, "model width")
    d_ff: int = _f(0, "feed-forward width; 0 means 4 * d_model")
    dropout: float = _f(0.0, "dropout")

    def __post_init__(self):
        if self.d_model % self.n_head:
            raise ConfigError(f"d_model ({self.d_model}) must be divisible by n_head ({self.n_head})")
        if min(self.n_layer, self.n_head, self.d_model) < 1:
            raise ConfigError("n_layer, n_head and d_model must be positive")


@register_model("torch_encoder", TorchEncoderConfig)
class TorchEncoder(SequenceModel):
    """Reference baseline: torch's stock nn.TransformerEncoder (post-norm, ReLU) with learned absolute positions."""

    def __init__(self, config: TorchEncoderConfig, layout):
        super().__init__(config, layout)
        self.tok_emb = nn.Embedding(len(layout.vocab), config.d_model)
        self.pos_emb = nn.Embedding(layout.seq_len, config.d_model)
        layer = nn.TransformerEncoderLayer(
            config.d_model, config.n_head, config.d_ff or 4 * config.d_model, config.dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, config.n_layer, enable_nested_tensor=False)
        self.head = nn.Linear(config.d_model, len(layout.vocab))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.check_length(inputs)
        return self.head(self.encoder(self.tok_emb(inputs) + self.pos_emb.weight))
