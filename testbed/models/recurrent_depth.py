"""Recurrent-depth model (Geiping et al. 2025, arXiv 2502.05171): prelude -> recurrent core x r -> coda.

    e   = prelude(embed(x))                       n_prelude sandwich-norm blocks, run once
    s_0 ~ truncated normal, std sqrt(2 / (5 d)) (random initial state)
    s_i = core(W [s_{i-1} ; e])                   n_layer blocks, weight-tied across the r iterations
    out = head(norm(coda(s_r)))                   n_coda blocks

Training samples r per step, tau ~ LogNormal(log r_bar - sigma^2 / 2, sigma), r = Poisson(tau) + 1, and backpropagates
through the last `bptt` iterations only (truncated backprop); the loss is on the final iteration. Sampling r is what
lets the model run with more iterations at test time than it was trained with (`sample_iterations = false` gives the
fixed-r ablation, which does not extrapolate). At evaluation: any fixed count, or an adaptive exit once the KL
divergence between successive iterations' predictions falls below `exit_threshold` (the steps used are reported).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from generators.core import ConfigError
from generators.core.registry import option as _f

from .base import SequenceModel, check_iterations, masked_loss, register_model
from .transformer import MLP, Block, Embedder, SelfAttention, TransformerConfig, init_weights


@dataclass(frozen=True)
class RecurrentDepthConfig(TransformerConfig):
    # n_layer (inherited) is the number of layers of the recurrent core
    n_prelude: int = _f(2, "layers of the prelude (embedding side, run once)")
    n_coda: int = _f(2, "layers of the coda (output side, run once)")
    mean_iterations: float = _f(4.0, "mean iterations r_bar of the core in training (the default at evaluation)")
    sigma: float = _f(0.5, "log-normal spread of the sampled iteration count")
    sample_iterations: bool = _f(True, "sample r per step (log-normal Poisson); false: always r_bar (the ablation)")
    bptt: int = _f(4, "backpropagate through the last this many iterations (truncated backprop)")
    sandwich: bool = _f(True, "sandwich norms (before and after each sublayer); false: plain pre-norm blocks")
    state_scale: float = _f(1.0, "std of the random initial state (truncated normal) in units of sqrt(2 / (5 d))")
    exit_threshold: float = _f(0.0, "evaluation: stop once the KL between successive iterations is below this; 0: off")
    max_iterations: int = _f(32, "evaluation cap of iterations with the adaptive exit")

    def __post_init__(self):
        super().__post_init__()
        if self.n_prelude < 0 or self.n_coda < 0:
            raise ConfigError("n_prelude and n_coda must be >= 0")
        if self.mean_iterations < 1:
            raise ConfigError(f"mean_iterations must be at least 1, got {self.mean_iterations}")
        if self.sigma <= 0 or self.state_scale < 0:
            raise ConfigError("sigma must be positive and state_scale non-negative")
        check_iterations(self.bptt, "bptt")
        if not self.sample_iterations and self.bptt > self.mean_iterations:
            raise ConfigError(
                f"bptt ({self.bptt}) is larger than the fixed iteration count ({self.mean_iterations}); lower bptt"
            )
        if not 0 <= self.exit_threshold:
            raise ConfigError(f"exit_threshold must be >= 0, got {self.exit_threshold}")
        check_iterations(self.max_iterations, "max_iterations")


class SandwichBlock(nn.Module):
    """Norms before and after each sublayer: x + norm(attn(norm(x))), x + norm(mlp(norm(x))). Keeps long unrolls
    of a weight-tied core stable."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        d = config.d_model
        self.norm1, self.attn, self.norm2 = nn.LayerNorm(d), SelfAttention(config), nn.LayerNorm(d)
        self.norm3, self.mlp, self.norm4 = nn.LayerNorm(d), MLP(d, config.d_ff or 4 * d, config.bias), nn.LayerNorm(d)

    def forward(self, x, rotary=None):
        x = x + self.norm2(self.attn(self.norm1(x), rotary))
        return x + self.norm4(self.mlp(self.norm3(x)))


@register_model("recurrent_depth", RecurrentDepthConfig)
class RecurrentDepth(SequenceModel):
    tied = True

    def __init__(self, config: RecurrentDepthConfig, layout):
        super().__init__(config, layout)
        self.iterations: int | None = None  # evaluation override of the iteration count
        self.embed = Embedder(config, layout)
        block = SandwichBlock if config.sandwich else Block
        self.prelude = nn.ModuleList(block(config) for _ in range(config.n_prelude))
        self.adapter = nn.Linear(2 * config.d_model, config.d_model, bias=config.bias)
        self.core = nn.ModuleList(block(config) for _ in range(config.n_layer))
        self.coda = nn.ModuleList(block(config) for _ in range(config.n_coda))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, len(layout.vocab), bias=False)
        effective_depth = config.n_prelude + config.n_coda + config.n_layer * config.mean_iterations
        init_weights(self, config.init, config.init_std, effective_depth)

    def describe(self) -> dict:  # layers: those of the recurrent core
        return {**super().describe(), "loops": self.config.mean_iterations}

    def sample_iterations(self) -> int:
        c = self.config
        if not c.sample_iterations:
            return round(c.mean_iterations)
        mu = math.log(c.mean_iterations) - c.sigma**2 / 2
        tau = torch.exp(mu + c.sigma * torch.randn(()))
        return int(torch.poisson(tau).item()) + 1

    def initial_state(self, like: torch.Tensor) -> torch.Tensor:
        # random in training; a fixed draw at evaluation, so that evaluations are reproducible
        gen = None if self.training else torch.Generator(device=like.device).manual_seed(0)
        s = torch.empty_like(like)
        with torch.no_grad():
            std = self.config.state_scale * math.sqrt(2 / (5 * like.shape[-1]))
            s.copy_(torch.randn(like.shape, generator=gen, device=like.device).clamp_(-3, 3) * std)
        return s

    def encode(self, inputs: torch.Tensor):
        self.check_length(inputs)
        e, rotary = self.embed(inputs)
        for block in self.prelude:
            e = block(e, rotary)
        return e, rotary

    def core_step(self, s, e, rotary):
        s = self.adapter(torch.cat([s, e], dim=-1))
        for block in self.core:
            s = block(s, rotary)
        return s

    def decode(self, s, rotary):
        for block in self.coda:
            s = block(s, rotary)
        return self.head(self.norm(s))

    def run(self, inputs: torch.Tensor, iterations: int, bptt: int | None = None) -> torch.Tensor:
        """Logits after `iterations` core iterations; only the last `bptt` of them carry gradients."""
        e, rotary = self.encode(inputs)
        s = self.initial_state(e)
        first_grad = iterations - bptt if bptt else 0
        for i in range(iterations):
            with torch.set_grad_enabled(torch.is_grad_enabled() and i >= first_grad):
                s = self.core_step(s, e, rotary)
        return self.decode(s, rotary)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.steps_used = None
        if self.training:
            return self.run(inputs, self.sample_iterations(), self.config.bptt)
        if self.config.exit_threshold > 0 and not self.iterations:
            return self.adaptive(inputs)
        return self.run(inputs, self.iterations or round(self.config.mean_iterations))

    def training_loss(self, batch):
        r = self.sample_iterations()
        return masked_loss(self.run(batch["inputs"], r, self.config.bptt), batch), {"iterations": float(r)}

    def forward_steps(self, inputs: torch.Tensor, iterations: int) -> list[torch.Tensor]:
        e, rotary = self.encode(inputs)
        s, out = self.initial_state(e), []
        for _ in range(check_iterations(iterations)):
            s = self.core_step(s, e, rotary)
            out.append(self.decode(s, rotary))
        return out

    def adaptive(self, inputs: torch.Tensor) -> torch.Tensor:
        """Per example: stop at the first iteration whose predictions differ from the previous iteration's by less
        than exit_threshold in KL (the largest over positions); steps_used records the iterations each example ran."""
        e, rotary = self.encode(inputs)
        s = self.initial_state(e)
        b = inputs.shape[0]
        out = None
        steps = torch.full((b,), self.config.max_iterations, device=inputs.device)
        running = torch.ones(b, dtype=torch.bool, device=inputs.device)
        prev = None
        for i in range(1, self.config.max_iterations + 1):
            idx = running.nonzero().squeeze(1)  # only examples still running are computed
            s = s.clone()
            s[idx] = self.core_step(s[idx], e[idx], rotary)
            logp = F.log_softmax(self.decode(s[idx], rotary).float(), dim=-1)
            if out is None:
                out = torch.zeros(b, *logp.shape[1:], device=inputs.device)
                prev = torch.zeros_like(out)
            out[idx] = logp
            if i > 1:
                kl = (logp.exp() * (logp - prev[idx])).sum(-1).amax(-1)
                done = kl < self.config.exit_threshold
                steps[idx[done]] = i
                running[idx[done]] = False
            prev[idx] = logp
            if not running.any():
                break
        self.steps_used = steps[:, None].expand(b, inputs.shape[1]).float()
        return out
