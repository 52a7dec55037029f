"""Memory tokens.

memory_tokens (Memory Transformer, Burtsev et al. 2020): n_memory learned vectors prepended to the sequence take part
in self-attention at every layer; their outputs are discarded.

rmt (Recurrent Memory Transformer, Bulatov et al. 2022): the sequence is cut into segments, processed one after the
other as [read memory ; segment tokens ; write memory]; the last layer's outputs at the write positions become the
next segment's memory. Segments default to one orbit row each (`segment_len = 0`, the runs of equal layout row: a
state and its separator); with `overlap` (default) a segment also reads the previous one as context, so that it
holds one transition (s_t, s_t+1) as in P1 and the memory carries what the orbit says about the rule. Gradients flow
back through the memory across the last `bptt` segments (0: all); the detach is real, earlier segments get none. The
segment curriculum grows that window from one segment to `bptt` (or all) over `curriculum_steps` training steps.
Memory tokens get their own learned positions and no rotation; they are never scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from generators.core import ConfigError
from generators.core.registry import option as _f

from .base import SequenceModel, register_model
from .transformer import Block, Embedder, TransformerConfig, init_weights, rotary_with_slots


@dataclass(frozen=True)
class MemoryTokensConfig(TransformerConfig):
    n_memory: int = _f(16, "number of memory tokens")

    def __post_init__(self):
        super().__post_init__()
        if self.n_memory < 1:
            raise ConfigError(f"n_memory must be at least 1, got {self.n_memory}")


@dataclass(frozen=True)
class RMTConfig(MemoryTokensConfig):
    segment_len: int = _f(0, "tokens per segment; 0: one orbit row (state + separator) per segment")
    overlap: bool = _f(True, "each segment also reads the previous one (one transition per segment, as P1)")
    bptt: int = _f(0, "backpropagate through the memory across the last this many segments; 0: all")
    curriculum_steps: int = _f(0, "grow the backprop window from 1 segment to bptt (or all) over this many steps")

    def __post_init__(self):
        super().__post_init__()
        if self.segment_len < 0 or self.bptt < 0 or self.curriculum_steps < 0:
            raise ConfigError("segment_len, bptt and curriculum_steps must be >= 0")


def segment_bounds(layout, segment_len: int) -> list[tuple[int, int]]:
    """[start, end) of every segment: fixed chunks of segment_len tokens, or the runs of equal layout row."""
    n = layout.seq_len
    if segment_len > n:
        raise ConfigError(f"segment_len ({segment_len}) is longer than the sequence ({n} tokens)")
    if segment_len:
        return [(a, min(a + segment_len, n)) for a in range(0, n, segment_len)]
    if layout.coords is None:
        raise ConfigError("segment_len = 0 needs a task with row coordinates (cellular automata); set segment_len")
    rows = np.asarray(layout.coords)[:, 0]
    starts = [0] + [i for i in range(1, n) if rows[i] != rows[i - 1]]
    return list(zip(starts, starts[1:] + [n]))


class MemoryTransformer(SequenceModel):
    def __init__(self, config: MemoryTokensConfig, layout, segments: list[tuple[int, int]], write: bool):
        super().__init__(config, layout)
        m, d = config.n_memory, config.d_model
        self.segments, self.write = segments, write
        self.embed = Embedder(config, layout)
        self.memory = nn.Parameter(torch.zeros(m, d))
        self.memory_pos = nn.Parameter(torch.zeros((2 if write else 1) * m, d))  # read (and write) positions
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, len(layout.vocab), bias=False)
        init_weights(self, config.init, config.init_std, config.n_layer)
        nn.init.normal_(self.memory, std=config.init_std)  # about the scale of the token embeddings
        nn.init.normal_(self.memory_pos, std=config.init_std)

    def segment(self, memory, x, rotary, a, b, c=None):
        """One segment of tokens [a, b), read with the context [c, a) before it: (new memory, outputs of [a, b)).
        Memory tokens are not rotated (angle 0)."""
        m, c = self.config.n_memory, a if c is None else c
        parts = [memory + self.memory_pos[:m], x[:, c:b]]
        if self.write:
            parts.append(memory + self.memory_pos[m:])
        h = torch.cat(parts, dim=1)
        rotary = rotary_with_slots(rotary, c, b, before=m, after=m if self.write else 0)
        for block in self.blocks:
            h = block(h, rotary)
        new_memory = h[:, -m:] if self.write else h[:, :m]
        return new_memory, h[:, m + a - c : m + b - c]

    def state_size(self) -> int:
        if self.write:  # recurrent: only the memory passes from segment to segment
            return self.config.n_memory * self.config.d_model
        return 2 * self.config.n_layer * (self.seq_len + self.config.n_memory) * self.config.d_model

    def bptt_window(self) -> int:
        bptt, curriculum = getattr(self.config, "bptt", 0), getattr(self.config, "curriculum_steps", 0)
        full = bptt or len(self.segments)
        if not (self.training and curriculum):
            return full
        return min(full, 1 + (full - 1) * self.global_step // curriculum)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.check_length(inputs)
        x, rotary = self.embed(inputs)
        memory = self.memory.expand(inputs.shape[0], -1, -1)
        window, n = self.bptt_window(), len(self.segments)
        outputs = []
        overlap = getattr(self.config, "overlap", False)
        for i, (a, b) in enumerate(self.segments):
            if i and (n - i) % window == 0:  # the start of a backprop window: no gradient flows further back
                memory = memory.detach()
            memory, out = self.segment(memory, x, rotary, a, b, self.segments[i - 1][0] if overlap and i else a)
            outputs.append(out)
        return self.head(self.norm(torch.cat(outputs, dim=1)))


@register_model("memory_tokens", MemoryTokensConfig)
class MemoryTokens(MemoryTransformer):
    def __init__(self, config: MemoryTokensConfig, layout):
        super().__init__(config, layout, [(0, layout.seq_len)], write=False)


@register_model("rmt", RMTConfig)
class RecurrentMemoryTransformer(MemoryTransformer):
    def __init__(self, config: RMTConfig, layout):
        super().__init__(config, layout, segment_bounds(layout, config.segment_len), write=True)
