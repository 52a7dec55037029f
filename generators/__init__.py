"""Task generators (numpy only, no torch): registered by name, deterministic per (seed, split, index). The project's
base (errors, the option registry, atomic I/O, hashing) is generators.core; the built-in tasks register themselves
when the registry is first asked for one (core.registry.TASKS)."""

from .base import MAX_SEQ_LEN, MAX_VOCAB, SPLITS, Generator, Layout, check_seed, check_size, check_split
from .core.errors import ConfigError
from .core.registry import build_config, get, make, names, option, register, to_dict

__all__ = [
    "MAX_SEQ_LEN", "MAX_VOCAB", "SPLITS", "ConfigError", "Generator", "Layout", "build_config", "check_seed",
    "check_size", "check_split", "get", "make", "names", "option", "register", "to_dict",
]
