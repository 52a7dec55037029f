"""Model families. Each is a plain nn.Module built as `Model(config, layout)` and registered by name:

    @register_model("my_model", MyConfig)
    class MyModel(nn.Module):
        def __init__(self, config, layout): ...
        def forward(self, inputs):  # (B, L) token ids -> (B, L, vocab) logits
"""

from generators.registry import Registry

MODELS = Registry("model")
register_model = MODELS.register

from . import transformer  # noqa: E402,F401  (registers "transformer" and "torch_encoder")


def build_model(name: str, config: dict, layout):
    cls = MODELS.get(name)
    return cls(MODELS.config(name, config), layout)
