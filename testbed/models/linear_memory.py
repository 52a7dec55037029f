"""Optimizer-trained linear associative memory (Cabannes, Dohmatob, Bietti, ICLR 2024), for the zipf_memory task.

    logits_y(x) = u_y^T LN?(W e_x)

W (d x d) starts at zero and is learned by the training system's optimiser in one pass over T samples
(`train.train_size = T`, `max_steps = T / batch_size`): SGD, or Adam with betas (0, 0) (sign-like updates) and a
learning rate divided by d. Input embeddings e_x ~ N(0, I/d) and output embeddings u_y uniform on the unit sphere
are fixed random buffers (drawn from torch's generator, which the run's seed sets), or learned with
`learn_embeddings`. Outputs beyond the M
classes get no score (-inf), so the logits keep the task's vocabulary size. The held-out exact match estimates
1 - sum_x p(x) 1[wrong], the population error of the closed-form memories (testbed/memory/associative.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from generators.core import ConfigError
from generators.core.registry import option as _f

from .base import SequenceModel, register_model


@dataclass(frozen=True)
class LinearMemoryConfig:
    d: int = _f(100, "memory dimension d (W is d x d)")
    n_classes: int = _f(5, "number of outputs M (the generator's n_classes)")
    layernorm: bool = _f(False, "normalise W e_x before the read-out (see norm)")
    norm: str = _f("layer", "with layernorm: layer (LayerNorm, no affine: norm sqrt(d)) | l2 (x / |x|, as the "
                   "reference code)", hash="if_set")
    learn_embeddings: bool = _f(False, "learn E and U as well as W (else fixed random embeddings)")
    w_init: str = _f("zero", "W at the start: zero | random (N(0, 1/d) entries, as the reference code)",
                     hash="if_set")

    def __post_init__(self):
        if self.w_init not in ("zero", "random"):
            raise ConfigError(f"w_init must be zero or random, got {self.w_init!r}")
        if self.norm not in ("layer", "l2"):
            raise ConfigError(f"norm must be layer or l2, got {self.norm!r}")
        if self.d < 1 or self.n_classes < 1:
            raise ConfigError(f"d and n_classes must be at least 1, got d = {self.d}, n_classes = {self.n_classes}")


@register_model("linear_memory", LinearMemoryConfig)
class LinearMemory(SequenceModel):
    def __init__(self, config: LinearMemoryConfig, layout):
        super().__init__(config, layout)
        n, d, m = len(layout.vocab), config.d, config.n_classes
        if m > n:
            raise ConfigError(f"n_classes ({m}) is larger than the task's vocabulary ({n})")
        E = torch.randn(n, d) / d**0.5  # the run's seed fixes them (training seeds torch before building)
        U = F.normalize(torch.randn(m, d), dim=-1)
        if config.learn_embeddings:
            self.E, self.U = nn.Parameter(E), nn.Parameter(U)
        else:
            self.register_buffer("E", E)
            self.register_buffer("U", U)
        self.W = nn.Parameter(torch.zeros(d, d) if config.w_init == "zero" else torch.randn(d, d) / d**0.5)
        self.vocab = n

    def describe(self) -> dict:
        return {"n_layer": None, "d_model": self.config.d, "loops": None}

    def state_size(self) -> int:
        return self.config.d * self.config.d

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        h = self.E[inputs] @ self.W.T  # (B, L, d)
        if self.config.layernorm:
            h = F.layer_norm(h, h.shape[-1:]) if self.config.norm == "layer" else F.normalize(h, dim=-1, eps=1e-3)
        scores = h @ self.U.T  # (B, L, M)
        return F.pad(scores, (0, self.vocab - scores.shape[-1]), value=float("-inf"))
