"""Fast-weight (outer-product) memories as sequence mixers (Schlag, Irie, Schmidhuber 2021, arXiv 2102.11174).

Each head keeps a matrix W (d_v x d_phi), written and read at every position t, causally:

    sum rule    W_t = W_{t-1} + v_t phi(k_t)^T                                  (linear attention)
    delta rule  W_t = W_{t-1} + beta_t (v_t - W_{t-1} phi(k_t)) phi(k_t)^T,     beta_t = sigmoid(w_beta . x_t)
    read        y_t = W_t phi(q_t)

phi: identity, elu+1, or DPFP-nu (relu of [x, -x] times its nu rolled copies; dimension 2 nu d). The delta rule
stores up to dim(phi) keys without interference and overwrites a key's value; the sum rule only adds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from generators.core import ConfigError
from generators.core.registry import option as _f

from .base import SequenceModel, check_layers, register_model
from .transformer import MLP


def feature_map(x: torch.Tensor, kind: str, nu: int = 1) -> torch.Tensor:
    if kind == "identity":
        return x
    if kind == "elu":
        return F.elu(x) + 1
    if kind == "dpfp":
        r = torch.cat([F.relu(x), F.relu(-x)], dim=-1)
        return torch.cat([r * torch.roll(r, shifts=j, dims=-1) for j in range(1, nu + 1)], dim=-1)
    raise ConfigError(f"unknown feature map {kind!r}; valid: identity, elu, dpfp")


def fast_weight_scan(k, v, q, beta=None, chunk: int = 64):
    """Causal outer-product memory over time. k, q: (B, H, T, d_phi); v: (B, H, T, d_v); beta: (B, H, T) or None
    for the sum rule. Returns the reads (B, H, T, d_v) and the final memories (B, H, d_v, d_phi).

    Chunkwise parallel (Yang et al. 2024's form of the delta rule), the same recurrence in matrices: within a chunk
    starting from memory W_0, every write is W_t = W_0 + sum_{s<=t} u_s k_s^T with
        sum rule    u = v
        delta rule  u_t = beta_t (v_t - W_0 k_t - sum_{s<t} (k_t . k_s) u_s),
    a unit lower-triangular system (I + diag(beta) tril(K K^T, -1)) U = diag(beta) (V - K W_0^T); the reads are
    y_t = W_0 q_t + sum_{s<=t} (q_t . k_s) u_s. One solve and three matmuls per chunk instead of T Python steps."""
    b, h, t, d_phi = k.shape
    w = k.new_zeros(b, h, v.shape[-1], d_phi)
    reads = []
    for lo in range(0, t, chunk):
        kc, vc, qc = k[:, :, lo:lo + chunk], v[:, :, lo:lo + chunk], q[:, :, lo:lo + chunk]
        n = kc.shape[2]
        if beta is None:
            u = vc
        else:
            bc = beta[:, :, lo:lo + chunk, None]
            system = torch.eye(n, dtype=k.dtype, device=k.device) + (bc * kc @ kc.transpose(-1, -2)).tril(-1)
            u = torch.linalg.solve_triangular(system, bc * (vc - kc @ w.transpose(-1, -2)), upper=False,
                                              unitriangular=True)
        reads.append(qc @ w.transpose(-1, -2) + (qc @ kc.transpose(-1, -2)).tril() @ u)
        w = w + u.transpose(-1, -2) @ kc
    return torch.cat(reads, dim=2), w


@dataclass(frozen=True)
class FastWeightConfig:
    n_layer: int = _f(2, "blocks of [fast-weight mixer, MLP]")
    n_head: int = _f(4, "memory heads")
    d_model: int = _f(128, "residual stream width")
    rule: str = _f("delta", "update rule: sum | delta")
    feature: str = _f("dpfp", "key/query feature map: identity | elu | dpfp")
    nu: int = _f(1, "DPFP order (feature dimension 2 nu d_head)")
    mlp: bool = _f(True, "an MLP after each mixer (Zoology's MQAR models use none)")
    short_conv: int = _f(0, "kernel of a causal depthwise convolution over q, k, v before the memory (DeltaNet, "
                         "Based); 0: none. It binds a value to the key just before it, which a memory read by "
                         "content alone cannot do: MQAR needs it", hash="if_set")

    def __post_init__(self):
        check_layers(self.n_layer)
        if min(self.n_head, self.d_model, self.nu) < 1:
            raise ConfigError("n_layer, n_head, d_model and nu must be positive")
        if self.short_conv < 0:
            raise ConfigError(f"short_conv must be >= 0 (0: none), got {self.short_conv}")
        if self.d_model % self.n_head:
            raise ConfigError(f"d_model ({self.d_model}) must be divisible by n_head ({self.n_head})")
        if self.rule not in ("sum", "delta"):
            raise ConfigError(f"unknown rule {self.rule!r}; valid: sum, delta")
        feature_map(torch.zeros(1), self.feature)


class FastWeightMixer(nn.Module):
    def __init__(self, config: FastWeightConfig):
        super().__init__()
        self.config = config
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        d3, width = 3 * config.d_model, config.short_conv
        self.conv = nn.Conv1d(d3, d3, width, groups=d3, padding=width - 1) if width else None
        self.beta = nn.Linear(config.d_model, config.n_head) if config.rule == "delta" else None
        self.proj = nn.Linear(config.d_model, config.d_model)

    def forward(self, x):
        c = self.config
        b, t, d = x.shape
        qkv = self.qkv(x)
        if self.conv is not None:  # causal: position t sees t - width + 1 .. t (the right padding is cut off)
            qkv = self.conv(qkv.transpose(1, 2))[..., :t].transpose(1, 2)
        q, k, v = qkv.view(b, t, 3, c.n_head, d // c.n_head).permute(2, 0, 3, 1, 4)
        q, k = feature_map(q, c.feature, c.nu), feature_map(k, c.feature, c.nu)
        k = k / k.sum(-1, keepdim=True).clamp_min(1e-6) if c.feature != "identity" else F.normalize(k, dim=-1)
        q = q / q.sum(-1, keepdim=True).clamp_min(1e-6) if c.feature != "identity" else F.normalize(q, dim=-1)
        beta = torch.sigmoid(self.beta(x)).transpose(1, 2) if self.beta is not None else None
        y, _ = fast_weight_scan(k, v, q, beta)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


@register_model("fast_weights", FastWeightConfig)
class FastWeights(SequenceModel):
    """Token + learned position embeddings, n_layer pre-norm blocks of a causal fast-weight mixer (and an MLP)."""

    def __init__(self, config: FastWeightConfig, layout):
        super().__init__(config, layout)
        self.tok_emb = nn.Embedding(len(layout.vocab), config.d_model)
        self.pos_emb = nn.Embedding(layout.seq_len, config.d_model)
        self.mixers = nn.ModuleList(FastWeightMixer(config) for _ in range(config.n_layer))
        self.norms1 = nn.ModuleList(nn.LayerNorm(config.d_model) for _ in range(config.n_layer))
        mlps = (MLP(config.d_model, 4 * config.d_model) for _ in range(config.n_layer))
        self.mlps = nn.ModuleList(mlps) if config.mlp else None
        self.norms2 = nn.ModuleList(nn.LayerNorm(config.d_model) for _ in range(config.n_layer))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, len(layout.vocab))

    def state_size(self) -> int:
        c = self.config
        d_head = c.d_model // c.n_head
        d_phi = 2 * c.nu * d_head if c.feature == "dpfp" else d_head
        return c.n_layer * c.n_head * d_head * d_phi  # one d_head x d_phi matrix per head and layer

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.check_length(inputs)
        x = self.tok_emb(inputs) + self.pos_emb.weight
        for i, mixer in enumerate(self.mixers):
            x = x + mixer(self.norms1[i](x))
            if self.mlps is not None:
                x = x + self.mlps[i](self.norms2[i](x))
        return self.head(self.norm(x))
