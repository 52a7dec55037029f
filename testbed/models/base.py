"""What every model family shares: the registry and the `SequenceModel` contract.

    @register_model("my_model", MyConfig)       # MyConfig: a frozen dataclass
    class MyModel(SequenceModel):
        def __init__(self, config, layout): ...
        def forward(self, inputs):  # (B, L) token ids -> (B, L, vocab) logits

Hooks with defaults here, overridden by the families that need them:
    training_loss(batch) -> (loss, {name: value})   auxiliary losses (ponder cost), several read-outs, teacher forcing
    forward_steps(inputs, iterations)                weight-tied models (tied = True): logits after every iteration
    self.steps_used                                  (B, L) compute steps each position used in the last forward
                                                     (adaptive models); reported as mean_steps per slice
    describe()                                       layers, width and training iterations, for results tables
    hidden_states(inputs)                            the residual stream after each layer or loop (probes)
    memory_parameters(), memory_slots(inputs)        memories in the weights: what train.update = memory / sparse
                                                     may change
    state_size()                                     floats carried along a sequence (capacity curves)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from generators.core import ConfigError
from generators.core.registry import Registry

MODELS = Registry("model")
register_model = MODELS.register


def masked_loss(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy over the scored (loss_mask) positions only."""
    mask = batch["loss_mask"]
    return F.cross_entropy(logits[mask].float(), batch["targets"][mask])


MAX_LAYERS = 1024  # deeper stacks would take minutes to build before the memory guard could even size them


MAX_ITERATIONS = 1024  # loops of one weight-tied block: far past any depth a task here has, short of an hour's hang


def check_iterations(value: int, what: str = "iterations") -> int:
    if not 1 <= value <= MAX_ITERATIONS:
        raise ConfigError(f"{what} must be in 1..{MAX_ITERATIONS}, got {value}")
    return value


def check_layers(value: int, what: str = "n_layer") -> int:
    if not 1 <= value <= MAX_LAYERS:
        raise ConfigError(f"{what} must be in 1..{MAX_LAYERS}, got {value}")
    return value


class SequenceModel(nn.Module):
    """Built for one task layout, it maps (B, L) token ids to (B, L, vocab) logits."""

    tied = False  # weight-tied families set True and implement forward_steps

    def __init__(self, config, layout):
        super().__init__()
        self.config, self.seq_len = config, layout.seq_len
        self.steps_used: torch.Tensor | None = None
        self.global_step = 0  # the training system keeps this current (curricula, schedules)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def active_params(self) -> int:
        """Parameters one query reads (a sparse memory reads a few of the rows it holds; dense models all)."""
        return self.num_params()

    def check_length(self, inputs: torch.Tensor) -> None:
        if inputs.shape[1] != self.seq_len:
            raise ConfigError(f"model was built for sequences of {self.seq_len} tokens, got {inputs.shape[1]}")

    def training_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return masked_loss(self(batch["inputs"]), batch), {}

    def describe(self) -> dict:
        """Layers, residual width and training iteration count (weight-tied families) for results tables, under the
        names the spec gives them."""
        return {"n_layer": self.config.n_layer, "d_model": self.config.d_model, "loops": None}

    def activation_floats(self, batch: int, seq_len: int) -> int:
        """An upper estimate of the floats one training step keeps for backward (the memory guard's): per position
        and layer application, a few times the width plus the attention scores."""
        info = self.describe()
        applications = (info["n_layer"] or 1) * round(info["loops"] or 1)
        return batch * seq_len * applications * (24 * (info["d_model"] or 1) + 4 * seq_len)

    def memory_parameters(self) -> list[nn.Parameter]:
        """The parameters that hold what a memory model stores (train.update = memory trains only these)."""
        raise ConfigError(f"model {type(self).__name__} names no memory layer to train alone (mlp_memory, pkm_memory "
                          "and hash_memory do)")

    def memory_params(self) -> int:
        """How many parameters memory_parameters() holds (what capacity is counted against)."""
        return sum(p.numel() for p in self.memory_parameters())

    def memory_slots(self, inputs: torch.Tensor) -> tuple[nn.Parameter, torch.Tensor]:
        """(the table whose rows are memory slots, (B, r) the rows each query reads): what train.update = sparse
        ranks and updates."""
        raise ConfigError(f"model {type(self).__name__} has no addressable memory slots for train.update = sparse "
                          "(pkm_memory has)")

    def state_size(self) -> int | None:
        """Floats of the state the model carries along a sequence (what bounds its recall): the key-value cache of
        attention, the matrices of fast weights, the memory of recurrent-memory models. None where not defined."""
        return None

    def hidden_states(self, inputs: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """(name, (B, L, d)) of the residual stream after the embedding and each layer (or loop): what probes read."""
        raise ConfigError(f"model {type(self).__name__} exposes no hidden states to probe (transformer, looped and "
                          "cot do)")

    def forward_steps(self, inputs: torch.Tensor, iterations: int) -> list[torch.Tensor]:
        raise ConfigError(f"model {type(self).__name__} is not weight-tied: it has no iteration count to vary")
