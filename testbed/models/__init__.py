"""Model families. Each is a plain nn.Module built as `Model(config, layout)` and registered by name:

    @register_model("my_model", MyConfig)       # MyConfig: a frozen dataclass
    class MyModel(SequenceModel):
        def __init__(self, config, layout): ...
        def forward(self, inputs):  # (B, L) token ids -> (B, L, vocab) logits
"""

import torch
from torch import nn

from generators import ConfigError
from generators.registry import Registry

MODELS = Registry("model")
register_model = MODELS.register


class SequenceModel(nn.Module):
    """What every model shares: built for one task layout, it maps (B, L) token ids to (B, L, vocab) logits."""

    def __init__(self, config, layout):
        super().__init__()
        self.config, self.seq_len = config, layout.seq_len

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def check_length(self, inputs: torch.Tensor) -> None:
        if inputs.shape[1] != self.seq_len:
            raise ConfigError(f"model was built for sequences of {self.seq_len} tokens, got {inputs.shape[1]}")


from . import fast_weights, transformer  # noqa: E402,F401  (register the model families)


def build_model(name: str, config: dict, layout):
    cls = MODELS.get(name)
    return cls(MODELS.config(name, config), layout)
