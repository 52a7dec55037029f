"""Task generators (numpy only, no torch): registered by name, deterministic per (seed, split, index)."""

from . import cellular_automata, facts, group_words, kv_segments, mad, mqar, zipf_memory  # noqa: F401  (register)
from .base import MAX_SEQ_LEN, MAX_VOCAB, SPLITS, Generator, Layout, check_seed, check_size, check_split
from .errors import ConfigError
from .registry import build_config, get, make, names, option, register, to_dict

__all__ = [
    "MAX_SEQ_LEN", "MAX_VOCAB", "SPLITS", "ConfigError", "Generator", "Layout", "build_config", "check_seed",
    "check_size", "check_split", "get", "make", "names", "option", "register", "to_dict",
]
