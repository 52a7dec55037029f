"""Mamba (Gu & Dao 2023, arXiv 2312.00752): residual blocks of a selective state-space model, P1's third fixed-depth
family. Per block, on the normalised input:

    x, z = in_proj(u)                               width E d each (E = expand)
    x = SiLU(causal depthwise conv_w(x))
    dt = softplus(dt_proj(W_dt x) + b_dt)            input-dependent step, low rank
    B, C = W_B x, W_C x                             input-dependent, N = d_state each
    h_t = exp(dt_t A) * h_{t-1} + dt_t x_t B_t      A = -exp(A_log): (E d, N), a decaying diagonal recurrence
    y_t = C_t . h_t + D * x_t
    out = out_proj(y * SiLU(z))

The scan is plain torch, so it runs anywhere: chunks of `chunk` positions are solved in closed form (the
decays of a chunk as differences of one cumulative sum, every term an exp of a non-positive number), and the state
is carried from chunk to chunk. A fused CUDA kernel would be faster on a GPU; none is needed.
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


@dataclass(frozen=True)
class MambaConfig:
    n_layer: int = _f(4, "Mamba blocks (P1: 4)")
    d_model: int = _f(128, "residual width d (P1: 128)")
    d_state: int = _f(16, "N: state size per channel")
    expand: int = _f(2, "E: inner width E d")
    d_conv: int = _f(4, "width of the causal depthwise convolution")
    dt_rank: int = _f(0, "rank of the step projection; 0: ceil(d / 16)")
    dt_min: float = _f(0.001, "initial steps drawn log-uniformly in [dt_min, dt_max]")
    dt_max: float = _f(0.1, "see dt_min")
    chunk: int = _f(1, "positions the scan solves together in closed form (> 1: memory grows with it, Python steps "
                    "shrink); 1: the plain recurrence, read out step by step, fastest on a CPU at these sizes",
                    hash="never")

    def __post_init__(self):
        check_layers(self.n_layer)
        for name in ("d_model", "d_state", "expand", "d_conv", "chunk"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.dt_rank < 0:
            raise ConfigError(f"dt_rank must be 0 (automatic) or more, got {self.dt_rank}")
        if not 0 < self.dt_min <= self.dt_max:
            raise ConfigError(f"need 0 < dt_min <= dt_max, got {self.dt_min}, {self.dt_max}")

    @property
    def rank(self) -> int:
        return self.dt_rank or math.ceil(self.d_model / 16)


def selective_scan(x, dt, A, B, C, D, chunk: int = 1) -> torch.Tensor:
    """y (b, L, d) of h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t, y_t = C_t . h_t + D x_t, with h_0 = 0.
    x, dt: (b, L, d); A: (d, N), non-positive; B, C: (b, L, N); D: (d,)."""
    b, length, d = x.shape
    if chunk == 1:  # the recurrence itself, each state read out at once; each step builds only its own (b, d, N)
        # decay and drive, which stays in cache (2.5x faster than building them for all positions at once)
        dtx, h, ys = dt * x, x.new_zeros(b, d, A.shape[1]), []
        for t in range(length):
            h = torch.addcmul(torch.exp(dt[:, t, :, None] * A) * h, dtx[:, t, :, None], B[:, t, None, :])
            ys.append((h @ C[:, t, :, None]).squeeze(-1))
        return torch.stack(ys, 1) + x * D
    decay = dt.unsqueeze(-1) * A  # (b, L, d, N), <= 0
    drive = (dt * x).unsqueeze(-1) * B.unsqueeze(2)  # (b, L, d, N)
    h, ys = x.new_zeros(b, d, A.shape[1]), []
    for lo in range(0, length, chunk):
        a, u, c = decay[:, lo:lo + chunk], drive[:, lo:lo + chunk], C[:, lo:lo + chunk]
        t = a.shape[1]
        s = a.cumsum(1)  # s_t: log of the decay from the chunk's start through t
        later = ~torch.ones(t, t, dtype=torch.bool, device=x.device).tril()  # (t, s) with s > t: no contribution
        gap = (s.unsqueeze(2) - s.unsqueeze(1)).masked_fill(later[None, :, :, None, None], -math.inf)
        states = s.exp() * h.unsqueeze(1) + (gap.exp() * u.unsqueeze(1)).sum(2)  # (b, t, d, N)
        ys.append((states * c.unsqueeze(2)).sum(-1))
        h = states[:, -1]
    return torch.cat(ys, 1) + x * D


class MambaBlock(nn.Module):
    def __init__(self, c: MambaConfig):
        super().__init__()
        inner = c.expand * c.d_model
        self.norm = nn.LayerNorm(c.d_model)
        self.in_proj = nn.Linear(c.d_model, 2 * inner, bias=False)
        self.conv = nn.Conv1d(inner, inner, c.d_conv, groups=inner, padding=c.d_conv - 1)
        self.x_proj = nn.Linear(inner, c.rank + 2 * c.d_state, bias=False)
        self.dt_proj = nn.Linear(c.rank, inner)
        dt = torch.exp(torch.rand(inner) * (math.log(c.dt_max) - math.log(c.dt_min)) + math.log(c.dt_min))
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt): steps start in range
        self.A_log = nn.Parameter(torch.log(torch.arange(1, c.d_state + 1, dtype=torch.float)).repeat(inner, 1))
        self.D = nn.Parameter(torch.ones(inner))
        self.out_proj = nn.Linear(inner, c.d_model, bias=False)
        self.rank, self.d_state, self.chunk = c.rank, c.d_state, c.chunk

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        length = u.shape[1]
        x, z = self.in_proj(self.norm(u)).chunk(2, dim=-1)
        x = F.silu(self.conv(x.transpose(1, 2))[..., :length].transpose(1, 2))  # causal: the right padding cut
        dt, B, C = self.x_proj(x).split([self.rank, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(self.dt_proj(dt))
        y = selective_scan(x, dt, -torch.exp(self.A_log), B, C, self.D, self.chunk)
        return u + self.out_proj(y * F.silu(z))


@register_model("mamba", MambaConfig)
class Mamba(SequenceModel):
    """Token embeddings, n_layer Mamba blocks, a final norm and a linear read-out per position; causal by
    construction (a convolution padded on the left and a left-to-right scan)."""

    def __init__(self, config: MambaConfig, layout):
        super().__init__(config, layout)
        self.tok_emb = nn.Embedding(len(layout.vocab), config.d_model)
        self.blocks = nn.ModuleList(MambaBlock(config) for _ in range(config.n_layer))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, len(layout.vocab), bias=False)

    def activation_floats(self, batch: int, seq_len: int) -> int:
        c = self.config  # per block: the decays and drives (b, L, E d, N), and a chunk's pairwise decays per position
        return batch * seq_len * c.n_layer * c.expand * c.d_model * (c.d_state * (c.chunk + 4) + 16)

    def state_size(self) -> int:
        c = self.config  # per block: the scan's state and the convolution's last d_conv - 1 inputs
        return c.n_layer * c.expand * c.d_model * (c.d_state + c.d_conv - 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.check_length(inputs)
        x = self.tok_emb(inputs)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))
