"""Chain of thought with supervised intermediate states (P1's CoT), on the O-O task.

A transformer predicts one future state per pass, every cell of it at once from mask tokens, and the predicted
state is fed back as input for the next pass: state n from the orbit, state n+1 from the orbit and state n, and so
on. Training teacher-forces: for target row j the true rows before j are given, the rows from j on are masked, and
the loss is on row j; the m passes of a batch are stacked into one forward. Evaluation is autoregressive: the model's
own predictions are fed back. Rows are the layout's row coordinates of the masked positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from generators.core import ConfigError

from .base import masked_loss, register_model
from .transformer import Transformer, TransformerConfig


@dataclass(frozen=True)
class ChainOfThoughtConfig(TransformerConfig):
    pass


@register_model("cot", ChainOfThoughtConfig)
class ChainOfThought(Transformer):
    def __init__(self, config: ChainOfThoughtConfig, layout):
        super().__init__(config, layout)
        if "?" not in layout.vocab or layout.coords is None:
            raise ConfigError("the cot model needs a task with mask tokens and row coordinates (cellular automata)")
        self.mask_id = layout.vocab.index("?")
        self.register_buffer("row", torch.as_tensor(np.asarray(layout.coords)[:, 0]), persistent=False)

    def target_rows(self, inputs: torch.Tensor) -> list[int]:
        return sorted(torch.unique(self.row[(inputs == self.mask_id).any(0)]).tolist())

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Autoregressive over the target rows: each pass fills one row with its predictions."""
        masked = inputs == self.mask_id
        x, out = inputs.clone(), None
        for r in self.target_rows(inputs):
            logits = super().forward(x)
            here = masked & (self.row == r)
            x = torch.where(here, logits.argmax(-1), x)
            out = logits if out is None else torch.where(here[..., None], logits, out)
        return out if out is not None else super().forward(inputs)

    def training_loss(self, batch):
        inputs, targets, mask = batch["inputs"], batch["targets"], batch["loss_mask"]
        masked = inputs == self.mask_id
        rows = self.target_rows(inputs)
        teacher = [torch.where(masked & (self.row < r), targets, inputs) for r in rows]
        scored = [mask & (self.row == r) for r in rows]
        stacked = {"inputs": torch.cat(teacher), "targets": targets.repeat(len(rows), 1),
                   "loss_mask": torch.cat(scored)}
        return masked_loss(Transformer.forward(self, stacked["inputs"]), stacked), {}
