"""LSTM baseline (P1: 4 layers x 128): token embeddings, a stacked LSTM reading left to right, a linear read-out
per position. Target positions hold mask tokens, so each target cell is predicted from the orbit and the target
positions before it, as in the causal transformer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from generators.core import ConfigError
from generators.core.registry import option as _f

from .base import SequenceModel, check_layers, register_model


@dataclass(frozen=True)
class LSTMConfig:
    n_layer: int = _f(4, "stacked LSTM layers")
    d_model: int = _f(128, "hidden size (and embedding size)")
    dropout: float = _f(0.0, "dropout between LSTM layers")
    bidirectional: bool = _f(False, "also read right to left (sees the whole sequence, like the encoder)")

    def __post_init__(self):
        check_layers(self.n_layer)
        if self.d_model < 1:
            raise ConfigError("n_layer and d_model must be at least 1")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")


@register_model("lstm", LSTMConfig)
class LSTM(SequenceModel):
    def __init__(self, config: LSTMConfig, layout):
        super().__init__(config, layout)
        d = config.d_model
        self.tok_emb = nn.Embedding(len(layout.vocab), d)
        self.lstm = nn.LSTM(d, d, config.n_layer, batch_first=True, dropout=config.dropout,
                            bidirectional=config.bidirectional)
        self.head = nn.Linear(d * (2 if config.bidirectional else 1), len(layout.vocab))

    def state_size(self) -> int:
        return 2 * self.config.n_layer * self.config.d_model * (2 if self.config.bidirectional else 1)  # h and c

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.check_length(inputs)
        h, _ = self.lstm(self.tok_emb(inputs))
        return self.head(h)
