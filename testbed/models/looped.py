"""Looped transformer: one block of n_layer layers applied `loops` times with the input injected at every loop.

    add     (Yang et al. 2023)     y_0 = 0,  y_{t+1} = Block(y_t + e)                 e: the embedded input
    concat  (Geiping et al. 2025)  y_0 = 0,  y_{t+1} = Block(W [y_t ; e])

The same weights serve every loop, so the loop count is free at evaluation: `forward_steps` applies the output head
at every loop boundary and gives the per-iteration read-out (one trained model, a whole test-time-compute curve).
Training can average the loss over the last `loss_loops` loops and run the first `nograd_loops` without gradient,
or (`step_loss`) score the read-out after every loop j against the state j steps ahead: per-loop step supervision in
the spirit of DeepThinking's progressive loss (Bansal et al. 2022), so that each loop learns to be one CA step and
more loops at test time reach further than training did. `feedback` re-embeds each loop's read-out (a distribution
over tokens) as the next loop's state, so every loop starts from a mixture of token embeddings, the states training
showed, instead of a raw vector free to drift. `progressive` adds that loss's other half: a random number
of loops run first without gradient, and only the loops after them are scored, so the block is trained to continue
from the states it produces itself rather than along one fixed trajectory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from generators.core import ConfigError
from generators.core.registry import option as _f

from .base import SequenceModel, check_iterations, masked_loss, register_model
from .transformer import Block, Embedder, TransformerConfig, init_weights

INJECTIONS = ("add", "concat")


@dataclass(frozen=True)
class LoopedConfig(TransformerConfig):
    loops: int = _f(4, "times the block of n_layer layers is applied in training (override at evaluation)")
    injection: str = _f("add", "input injection: add (Yang et al.) | concat (concatenate state and input, project)")
    step_embedding: bool = _f(False, "add a sinusoidal embedding of the loop index to the state at every loop")
    loss_loops: int = _f(1, "average the loss over the read-outs of the last this many loops")
    nograd_loops: int = _f(0, "the first this many loops run without gradient")
    step_loss: bool = _f(False, "train the read-out after loop j on the state j steps ahead (data.path, loops = k): "
                         "per-loop step supervision, so more loops at test time reach further", hash="if_set")
    feedback: bool = _f(False, "each loop after the first starts from the embedding of the previous loop's read-out "
                        "(softmax(head(norm(y))) times the token embeddings) instead of its raw state: a soft chain of "
                        "thought inside one pass, so the loop state stays among the states training showed",
                        hash="if_set")
    progressive: bool = _f(False, "with step_loss: each training step runs a random n of the loops (0..loops-1) "
                           "without gradient and supervises the rest from the state they reach (DeepThinking's "
                           "progressive loss): the block learns to continue from its own states", hash="if_set")

    def __post_init__(self):
        super().__post_init__()
        check_iterations(self.loops, "loops")
        if self.injection not in INJECTIONS:
            raise ConfigError(f"unknown injection {self.injection!r}; valid: {', '.join(INJECTIONS)}")
        if not 1 <= self.loss_loops <= self.loops:
            raise ConfigError(f"loss_loops must be in 1..loops ({self.loops}), got {self.loss_loops}")
        if self.progressive and not self.step_loss:
            raise ConfigError("progressive continues the per-loop step supervision from a random loop: set "
                              "step_loss = true as well")
        if self.step_loss and (self.loss_loops != 1 or self.nograd_loops):
            raise ConfigError("step_loss scores every loop against its own step; leave loss_loops = 1 and "
                              "nograd_loops = 0")
        if not 0 <= self.nograd_loops <= self.loops - self.loss_loops:
            raise ConfigError(
                f"nograd_loops ({self.nograd_loops}) + loss_loops ({self.loss_loops}) must not exceed loops "
                f"({self.loops}): the loops read out for the loss need gradients"
            )


def step_encoding(step: int, d_model: int, device) -> torch.Tensor:
    """Sinusoidal embedding of a loop index (Universal Transformer), defined for any index."""
    half = d_model // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, device=device) / half)
    angle = (step + 1) * freq
    return torch.cat([angle.sin(), angle.cos(), torch.zeros(d_model - 2 * half, device=device)])


@register_model("looped", LoopedConfig)
class LoopedTransformer(SequenceModel):
    tied = True

    def __init__(self, config: LoopedConfig, layout):
        super().__init__(config, layout)
        self.iterations: int | None = None  # evaluation override of config.loops
        self.embed = Embedder(config, layout)
        concat = config.injection == "concat"
        self.adapter = nn.Linear(2 * config.d_model, config.d_model, bias=config.bias) if concat else None
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, len(layout.vocab), bias=False)
        init_weights(self, config.init, config.init_std, config.n_layer * config.loops)
        if config.step_loss and layout.path_steps != config.loops:
            raise ConfigError(
                f"step_loss needs the state after every one of the {config.loops} loops as a target: set "
                f"data.path = true and data.k = {config.loops} (the task gives {layout.path_steps} steps)"
            )

    def step(self, y: torch.Tensor, e: torch.Tensor, rotary, t: int) -> torch.Tensor:
        """One loop: (with feedback, re-embed the state's read-out,) inject the input, then the block."""
        if self.config.feedback and t > 0:
            y = self.readout(y).softmax(-1) @ self.embed.tok_emb.weight
        x = y + e if self.adapter is None else self.adapter(torch.cat([y, e], dim=-1))
        if self.config.step_embedding:
            x = x + step_encoding(t, x.shape[-1], x.device)
        for block in self.blocks:
            x = block(x, rotary)
        return x

    def states(self, inputs: torch.Tensor, loops: int, nograd: int = 0) -> list[torch.Tensor]:
        """The state after every loop; the first `nograd` loops run without gradient."""
        self.check_length(inputs)
        e, rotary = self.embed(inputs)
        y, out = torch.zeros_like(e), []
        for t in range(loops):
            with torch.set_grad_enabled(torch.is_grad_enabled() and t >= nograd):
                y = self.step(y, e, rotary, t)
            out.append(y)
        return out

    def describe(self) -> dict:
        return {**super().describe(), "loops": self.config.loops}

    def readout(self, y: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(y))

    def hidden_states(self, inputs: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        loops = self.iterations or self.config.loops
        return [(f"loop {j + 1}", y) for j, y in enumerate(self.states(inputs, loops))]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        loops = self.iterations if self.iterations and not self.training else self.config.loops
        return self.readout(self.states(inputs, loops)[-1])

    def forward_steps(self, inputs: torch.Tensor, iterations: int) -> list[torch.Tensor]:
        return [self.readout(y) for y in self.states(inputs, check_iterations(iterations))]

    def training_loss(self, batch):
        c = self.config
        if c.step_loss:  # loop j's read-out against the state j steps ahead, averaged over the loops
            path = batch["path_targets"]
            start = int(torch.randint(c.loops, ())) if c.progressive else 0  # loops run without gradient first
            losses = [masked_loss(self.readout(y), {"loss_mask": batch["loss_mask"], "targets": path[:, j]})
                      for j, y in enumerate(self.states(batch["inputs"], c.loops, start)) if j >= start]
            return torch.stack(losses).mean(), {}
        last = self.states(batch["inputs"], c.loops, c.nograd_loops)[-c.loss_loops:]
        return torch.stack([masked_loss(self.readout(y), batch) for y in last]).mean(), {}
