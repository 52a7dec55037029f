"""ARMT-style associative recurrent memory transformer (Rodkin, Kuratov, Bulatov, Burtsev 2024, arXiv 2407.04841).

The sequence is processed segment by segment (as `rmt`, each segment with the previous one as context by default),
but the state carried between segments is one associative matrix A (d_phi x d_model) and normaliser z (d_phi) per
layer, reset for every sequence. In layer l, for segment s:

    read   every token:  h <- h + (phi(W_q h) A) / (phi(W_q h) . z + eps)          (zero while A is empty)
    layer  h <- Block(h), with n_memory learned memory tokens appended to the segment
    write  from the memory tokens' outputs m:  k = phi(W_k m), v = W_v m, beta = sigmoid(W_b m)
           v_bar = (k A) / (k . z + eps);   A <- A + sum beta (v - v_bar) k^T      (delta rule)
           gamma = clip(1 - (k . z) / |k|^2, 0, 1) (no gradient);   z <- z + sum gamma k

phi is DPFP-nu over d_mem dims (d_phi = 2 nu d_mem). W_v starts at zero, so training starts from the plain
transformer. `bptt` detaches the carried (A, z) where the state is really carried (the reference code's helper
detached a local copy only).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from generators.core import ConfigError
from generators.core.registry import option as _f

from .base import SequenceModel, register_model
from .fast_weights import feature_map
from .memory import segment_bounds
from .transformer import Block, Embedder, TransformerConfig, init_weights, rotary_with_slots

EPS = 1e-5


@dataclass(frozen=True)
class ARMTConfig(TransformerConfig):
    n_memory: int = _f(4, "memory tokens appended to each segment (they write to the associative matrices)")
    d_mem: int = _f(32, "key width of the associative memory before the DPFP feature map")
    nu: int = _f(3, "DPFP order: d_phi = 2 nu d_mem")
    segment_len: int = _f(0, "tokens per segment; 0: one orbit row (state + separator) per segment")
    overlap: bool = _f(True, "each segment also reads the previous one (one transition per segment, as P1)")
    bptt: int = _f(0, "backpropagate through the carried memory across the last this many segments; 0: all")

    def __post_init__(self):
        super().__post_init__()
        if self.n_memory < 1 or self.d_mem < 1 or self.nu < 1:
            raise ConfigError("n_memory, d_mem and nu must be at least 1")
        if self.segment_len < 0 or self.bptt < 0:
            raise ConfigError("segment_len and bptt must be >= 0")


def memory_read(q: torch.Tensor, A: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """(q A) / (q . z + eps) for feature-mapped queries q (B, T, d_phi)."""
    return torch.einsum("btp,bpd->btd", q, A) / (torch.einsum("btp,bp->bt", q, z)[..., None] + EPS)


def memory_write(k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, A: torch.Tensor, z: torch.Tensor):
    """Delta-rule write of feature-mapped keys k (B, M, d_phi), values v (B, M, d), strengths beta (B, M, 1), with
    the gamma-corrected normaliser. Returns the new (A, z)."""
    v_bar = memory_read(k, A, z)
    A = A + torch.einsum("bmd,bmp->bpd", beta * (v - v_bar), k)
    with torch.no_grad():
        gamma = (1 - torch.einsum("bmp,bp->bm", k, z) / (k.pow(2).sum(-1) + EPS)).clamp(0, 1)
    return A, z + (gamma[..., None] * k).sum(1)


class AssociativeMemory(nn.Module):
    """One layer's associative matrix: read into every token, written from the memory tokens (delta rule)."""

    def __init__(self, config: ARMTConfig):
        super().__init__()
        d, self.nu = config.d_model, config.nu
        self.query = nn.Linear(d, config.d_mem, bias=False)
        self.key = nn.Linear(d, config.d_mem, bias=False)
        self.value = nn.Linear(d, d, bias=False)
        self.beta = nn.Linear(d, 1)

    def phi(self, x):
        return feature_map(x, "dpfp", self.nu)

    def read(self, h, A, z):
        return h + memory_read(self.phi(self.query(h)), A, z)

    def write(self, m, A, z):
        return memory_write(self.phi(self.key(m)), self.value(m), torch.sigmoid(self.beta(m)), A, z)


@register_model("armt", ARMTConfig)
class ARMT(SequenceModel):
    def __init__(self, config: ARMTConfig, layout):
        super().__init__(config, layout)
        self.segments = segment_bounds(layout, config.segment_len)
        self.embed = Embedder(config, layout)
        self.memory_tokens = nn.Parameter(torch.zeros(config.n_memory, config.d_model))
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.memories = nn.ModuleList(AssociativeMemory(config) for _ in range(config.n_layer))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, len(layout.vocab), bias=False)
        init_weights(self, config.init, config.init_std, config.n_layer)
        nn.init.normal_(self.memory_tokens, std=config.init_std)
        for mem in self.memories:
            nn.init.zeros_(mem.value.weight)  # the memory starts silent: training begins from the plain model

    def state_size(self) -> int:
        d_phi = 2 * self.config.nu * self.config.d_mem
        return self.config.n_layer * d_phi * (self.config.d_model + 1)  # A and z per layer

    def initial_state(self, batch: int, device):
        d_phi = 2 * self.config.nu * self.config.d_mem
        d = self.config.d_model
        return [(torch.zeros(batch, d_phi, d, device=device), torch.zeros(batch, d_phi, device=device))
                for _ in self.blocks]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.check_length(inputs)
        x, rotary = self.embed(inputs)
        b, m = inputs.shape[0], self.config.n_memory
        state = self.initial_state(b, inputs.device)
        window, n = self.config.bptt or len(self.segments), len(self.segments)
        outputs = []
        for i, (a, e) in enumerate(self.segments):
            if i and (n - i) % window == 0:  # the start of a backprop window: cut the carried state
                state = [(A.detach(), z.detach()) for A, z in state]
            c = self.segments[i - 1][0] if self.config.overlap and i else a  # the previous segment as context
            h = torch.cat([x[:, c:e], self.memory_tokens.expand(b, -1, -1)], dim=1)
            rot = rotary_with_slots(rotary, c, e, after=m)  # memory tokens are not rotated
            new_state = []
            for block, mem, (A, z) in zip(self.blocks, self.memories, state):
                h = block(mem.read(h, A, z), rot)
                new_state.append(mem.write(h[:, -m:], A, z))
            state = new_state
            outputs.append(h[:, a - c : e - c])
        return self.head(self.norm(torch.cat(outputs, dim=1)))
