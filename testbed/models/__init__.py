"""Model families: plain nn.Modules registered by name, built as `Model(config, layout)`.

The contract every family meets is `SequenceModel` in base.py; `build_model` makes one from a plain config dict.
"""

from . import (  # noqa: F401  (register the model families)
    act,
    armt,
    chain_of_thought,
    fast_weights,
    linear_memory,
    looped,
    mamba,
    memory,
    parametric,
    recurrent_depth,
    rnn,
    transformer,
)
from .base import MAX_ITERATIONS, MODELS, SequenceModel, check_iterations, masked_loss, register_model

__all__ = ["MAX_ITERATIONS", "MODELS", "SequenceModel", "build_model", "check_iterations", "masked_loss",
           "register_model"]


def build_model(name: str, config: dict, layout) -> SequenceModel:
    cls = MODELS.get(name)
    return cls(MODELS.config(name, config), layout)
