"""Memory guards: the size of what a command is about to allocate, estimated and checked against a cap before
anything is allocated, so that an impossible size is a one-line error instead of a MemoryError (or a machine
swapping itself to a standstill).

The cap is `--max-memory SIZE` (any command; also $TESTBED_MAX_MEMORY, e.g. 8G) or, for a run, `[train]
max_memory_gb`; by default 80 % of this machine's RAM. Estimates are deliberately rough upper bounds: generated
arrays from their shapes, a model's parameters (with gradients and the two AdamW moments) from the model built on
PyTorch's meta device (no memory), activations from the batch, sequence length, width and depth.
"""

from __future__ import annotations

import os
import re

from generators.core import ConfigError

ENV = "TESTBED_MAX_MEMORY"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str, where: str = "") -> int:
    """Bytes of '8G', '512M', '1.5GiB', '2e9'; `where` names where the text came from in the error (an option, a
    spec field, an environment variable)."""
    m = re.fullmatch(r"\s*([0-9.eE+]+)\s*([KMGT]?)(i?B)?\s*", str(text), re.I)
    try:
        value = float(m.group(1)) * _UNITS[m.group(2).upper()] if m else float("nan")
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"memory size {text!r}{f' ({where})' if where else ''} is not a positive size such as 8G, "
                          "512M or 2e9 (bytes)")
    return int(value)


def machine_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 * 2**30


def cap(gigabytes: float = 0.0) -> int:
    """The memory cap in bytes: `gigabytes` if set, else $TESTBED_MAX_MEMORY, else 80 % of the machine's RAM."""
    if gigabytes:
        return int(gigabytes * 2**30)
    if os.environ.get(ENV):
        return parse_size(os.environ[ENV], f"${ENV}")
    return int(0.8 * machine_memory())


def human(n: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def check(what: str, estimate: float, knobs: str, gigabytes: float = 0.0) -> None:
    """A one-line error when `estimate` bytes exceed the cap, naming what would be allocated and what to lower."""
    limit = cap(gigabytes)
    if estimate > limit:
        raise ConfigError(f"{what} would need about {human(estimate)}, over the memory cap of {human(limit)}; lower "
                          f"{knobs} or raise the cap with --max-memory")


def examples_bytes(generator, n: int) -> int:
    """Model-ready examples: inputs, targets, masks and per-position metadata of `n` examples (about 40 bytes a
    position), and what the task holds beside them (Generator.world_bytes)."""
    return n * (40 * generator.layout().seq_len + 64) + generator.world_bytes()


def run_bytes(cfg) -> tuple[int, str]:
    """(bytes, what dominates) of training a RunConfig: weights with gradients and AdamW moments, the activations
    of one batch, the validation and test sets."""
    import torch

    from .store import build

    try:
        with torch.device("meta"):  # shapes only: nothing is allocated
            generator, model = build(cfg)
    except RuntimeError as e:  # a tensor whose byte count overflows: far beyond any cap
        if "overflow" in str(e):
            return float("inf"), "the parameters (model.* sizes)"
        raise
    t, e = cfg.train, cfg.eval
    length = generator.layout().seq_len
    weights = 16 * model.num_params()  # fp32 weights, gradients, AdamW's two moments
    activations = 4 * model.activation_floats(t.batch_size, length)
    data = examples_bytes(generator, t.val_size + e.test_size * max(1, len(e.k)))
    parts = {"the parameters (model.* sizes)": weights,
             "the activations (train.batch_size, model.* sizes)": activations,
             "the validation and test sets (train.val_size, eval.test_size)": data}
    return sum(parts.values()), max(parts, key=parts.get)


def cost(cfg) -> float:
    """A run's relative cost: the activations of a step times the steps (what a pool orders its runs by)."""
    import torch

    from .store import build

    with torch.device("meta"):
        generator, model = build(cfg)
    return float(model.activation_floats(cfg.train.batch_size, generator.layout().seq_len)) * cfg.train.max_steps


def check_run(cfg) -> None:
    total, worst = run_bytes(cfg)
    check(f"training this run ({worst} the most)", total, "the sizes named", cfg.train.max_memory_gb)
