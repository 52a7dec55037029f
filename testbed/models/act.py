"""Adaptive computation: each position decides how many times a layer (or the whole block) is applied.

ACT (Graves 2016). After each application n the halting unit gives h_n = sigmoid(w . s_n + b); a position halts at
the first N where h_1 + ... + h_N reaches `threshold` (or at max_steps). Its output is the weighted mean
sum_n p_n s_n with p_n = h_n before N and the remainder R = 1 - sum_{n<N} h_n at N, so the weights sum to 1.
Halted positions keep their state. The ponder cost penalty * mean(N + R) joins the loss. P1 wraps every layer
(`mode = "layer"`, up to 4 repeats, threshold 0.9, penalty 3e-4); `mode = "block"` wraps the whole stack (a looped
block with a learned loop count).

PonderNet (Banino et al. 2021, `halting = "pondernet"`, block mode): lambda_n = sigmoid(w . s_n + b),
p_n = lambda_n prod_{j<n} (1 - lambda_j) (the last step takes the rest); loss = sum_n p_n L(y, y_n) +
beta KL(p || truncated Geometric(prior)). Evaluation halts each position at the step where its cumulative halting
probability first passes 1/2 (the median: deterministic, unlike sampling).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from generators.core import ConfigError
from generators.core.registry import option as _f

from .base import SequenceModel, check_iterations, masked_loss, register_model
from .transformer import Block, Embedder, TransformerConfig, init_weights


@dataclass(frozen=True)
class ACTConfig(TransformerConfig):
    mode: str = _f("layer", "layer: every layer halts on its own (P1) | block: the whole stack is repeated")
    halting: str = _f("act", "act (Graves) | pondernet (block mode)")
    max_steps: int = _f(4, "most applications of a layer (or of the block)")
    threshold: float = _f(0.9, "ACT: halt once the summed halting probabilities reach this, in (0, 1)")
    penalty: float = _f(3e-4, "ACT: weight of the ponder cost N + R in the loss")
    halt_bias: float = _f(-2.0, "initial bias of the halting unit (negative: early halting unlikely)")
    prior: float = _f(0.25, "PonderNet: halting probability per step of the geometric prior")
    beta: float = _f(0.01, "PonderNet: weight of the KL to the prior")

    def __post_init__(self):
        super().__post_init__()
        if self.mode not in ("layer", "block"):
            raise ConfigError(f"unknown mode {self.mode!r}; valid: layer, block")
        if self.halting not in ("act", "pondernet"):
            raise ConfigError(f"unknown halting {self.halting!r}; valid: act, pondernet")
        if self.halting == "pondernet" and self.mode != "block":
            raise ConfigError("halting = pondernet needs mode = block (it reads out the output after every step)")
        check_iterations(self.max_steps, "max_steps")
        if not 0 < self.threshold < 1:
            raise ConfigError(f"ACT threshold must be in (0, 1), got {self.threshold}")
        if not 0 < self.prior < 1:
            raise ConfigError(f"PonderNet prior must be in (0, 1), got {self.prior}")
        if self.penalty < 0 or self.beta < 0:
            raise ConfigError("penalty and beta must be >= 0")


def act_halting(step, x: torch.Tensor, halt: nn.Linear, max_steps: int, threshold: float):
    """Run `step` up to max_steps times per position with ACT halting.
    Returns (weighted output, ponder cost N + R per position, steps N per position, halting weights per step)."""
    b, t, _ = x.shape
    cum = x.new_zeros(b, t)
    running = torch.ones(b, t, dtype=torch.bool, device=x.device)
    remainder, steps = x.new_zeros(b, t), x.new_zeros(b, t)
    out, weights = torch.zeros_like(x), []
    for n in range(max_steps):
        x = torch.where(running[..., None], step(x), x)  # halted positions keep their state
        h = torch.sigmoid(halt(x)).squeeze(-1)
        stop = running & ((cum + h >= threshold) | (n == max_steps - 1))
        p = torch.where(stop, 1 - cum, torch.where(running, h, torch.zeros_like(h)))
        out = out + p[..., None] * x
        remainder = torch.where(stop, 1 - cum, remainder)
        steps = steps + running
        cum = cum + p
        running = running & ~stop
        weights.append(p)
        if not running.any():
            break
    return out, steps + remainder, steps, torch.stack(weights)


@register_model("act", ACTConfig)
class AdaptiveTransformer(SequenceModel):
    def __init__(self, config: ACTConfig, layout):
        super().__init__(config, layout)
        self.embed = Embedder(config, layout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        n_halt = config.n_layer if config.mode == "layer" else 1
        self.halt = nn.ModuleList(nn.Linear(config.d_model, 1) for _ in range(n_halt))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, len(layout.vocab), bias=False)
        init_weights(self, config.init, config.init_std, config.n_layer * config.max_steps)
        for h in self.halt:
            nn.init.constant_(h.bias, config.halt_bias)
        self.halting_weights: list[torch.Tensor] = []  # of the last forward, per halting unit: (steps, B, L)

    def stack(self, x, rotary):
        for block in self.blocks:
            x = block(x, rotary)
        return x

    def act(self, inputs):
        """(output state, ponder cost per position, steps per position averaged over halting units)."""
        c = self.config
        x, rotary = self.embed(inputs)
        ponder, steps, self.halting_weights = 0.0, 0.0, []
        if c.mode == "layer":
            for block, halt in zip(self.blocks, self.halt):
                x, cost, n, w = act_halting(lambda y, blk=block: blk(y, rotary), x, halt, c.max_steps, c.threshold)
                ponder, steps = ponder + cost, steps + n
                self.halting_weights.append(w)
            return x, ponder / c.n_layer, steps / c.n_layer
        x, ponder, steps, w = act_halting(lambda y: self.stack(y, rotary), x, self.halt[0], c.max_steps, c.threshold)
        self.halting_weights.append(w)
        return x, ponder, steps

    def ponder_steps(self, inputs):
        """PonderNet: (logits after every step, halting distribution p (steps, B, L))."""
        c = self.config
        x, rotary = self.embed(inputs)
        logits, lambdas = [], []
        for n in range(c.max_steps):
            x = self.stack(x, rotary)
            logits.append(self.head(self.norm(x)))
            lam = torch.sigmoid(self.halt[0](x)).squeeze(-1)
            lambdas.append(torch.ones_like(lam) if n == c.max_steps - 1 else lam)
        lam = torch.stack(lambdas)
        survive = torch.cumprod(torch.cat([torch.ones_like(lam[:1]), 1 - lam[:-1]]), dim=0)
        return logits, lam * survive

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.check_length(inputs)
        if self.config.halting == "pondernet":
            logits, p = self.ponder_steps(inputs)
            self.halting_weights = [p]
            halt_at = (p.cumsum(0) < 0.5).sum(0).clamp(max=len(logits) - 1)  # median halting step (0-based)
            self.steps_used = (halt_at + 1).float()
            stacked = torch.stack(logits)
            return stacked.gather(0, halt_at[None, ..., None].expand(1, *stacked.shape[1:])).squeeze(0)
        x, _, steps = self.act(inputs)
        self.steps_used = steps.detach()
        return self.head(self.norm(x))

    def training_loss(self, batch):
        c = self.config
        self.check_length(batch["inputs"])
        if c.halting == "pondernet":
            logits, p = self.ponder_steps(batch["inputs"])
            mask = batch["loss_mask"]
            losses = torch.stack([F.cross_entropy(lg[mask].float(), batch["targets"][mask], reduction="none")
                                  for lg in logits])
            task = (p[:, mask] * losses).sum(0).mean()
            n = torch.arange(c.max_steps, device=p.device, dtype=p.dtype)
            prior = c.prior * (1 - c.prior) ** n
            prior = prior / prior.sum()
            kl = (p * (torch.log(p.clamp_min(1e-10)) - torch.log(prior)[:, None, None])).sum(0).mean()
            return task + c.beta * kl, {"kl": kl.detach()}
        x, ponder, steps = self.act(batch["inputs"])
        loss = masked_loss(self.head(self.norm(x)), batch)
        return loss + c.penalty * ponder.mean(), {"ponder": ponder.mean().detach(), "steps": steps.mean().detach()}
