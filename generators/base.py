"""What every task generator provides. See README 'Adding a generator' for a worked example.

Contract of `sample(split, seed, indices)`: a dict of numpy arrays with
  inputs     (n, L) int64   token ids < len(layout.vocab)
  targets    (n, L) int64   token ids, read only where loss_mask is true
  loss_mask  (n, L) bool    positions that are scored
and any metadata used to slice curves: per example (n,) or per position (n, L), integer typed.
Example i must be a pure function of (config, split, seed, i).

Task-specific evaluation is offered through hooks with defaults here, so that downstream code never asks what kind
of generator it holds: `sample_at_depth` (examples at one look-ahead k), `examples_from_file` (model-ready examples
from the arrays of an interchange file), `baselines` (what trivial predictors answer on the same examples) and
`rollout` (feed a model its own predictions). A per-position `trivial` array (1: a rule-free predictor gets this
target) marks the examples that need no reasoning; results report the non-trivial stratum beside the overall one.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .core.errors import ConfigError

SPLITS = ("train", "val", "test")
# Beyond these no model here could be built or trained, and a layout would itself exhaust memory: configs refuse them.
MAX_SEQ_LEN = 2**16
MAX_VOCAB = 2**24


def check_size(name: str, value: int, limit: int, what: str) -> None:
    if value > limit:
        raise ConfigError(f"{name} = {value:,} gives {what} over the {limit:,} this testbed supports; lower it")
_SPLIT_ALIASES = {"validation": "val", "valid": "val", "eval": "test"}


def check_split(split: str) -> str:
    split = _SPLIT_ALIASES.get(split, split)
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    return split


def check_seed(seed: int) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed must be an integer in [0, 2^63), got {seed!r}")
    return int(seed)


@dataclasses.dataclass(frozen=True, eq=False)
class Layout:
    """Static shape of a task's sequences, shared by all examples."""

    vocab: tuple[str, ...]  # token names; a token's id is its index
    seq_len: int
    coords: np.ndarray  # (seq_len, 2) int (row, col) of each position, for 2-D positional encodings
    n_rows: int = 1
    n_cols: int = 1
    col_period: int = 0  # columns wrap around with this period (a periodic CA of width W); 0: not periodic
    path_steps: int = 0  # training examples carry `path_targets` (n, path_steps, L): the target after each step
    answer_positions: tuple = ()  # the positions every example's answer occupies, where fixed (facts); () elsewhere
    answer_tokens: tuple = ()  # the token ids an answer can be, where few (facts: the values); () elsewhere
    key_positions: tuple = ()  # the positions that name what a query is about (facts: the entity's name); ()
    # elsewhere


class Generator:
    """Base class: subclasses are registered with @register(name, Config) and implement `layout` and `sample`."""

    name: str = ""
    Config: type = type(None)
    version: int = 1
    cluster_key: str | None = None  # per-example key of the unit intervals are over (CA: class_id); None: examples
    member_key: str | None = None  # per-example key of what a cluster is made of (CA: rule_id), counted in results

    def clusters_of_members(self, members: np.ndarray) -> np.ndarray:
        """The clusters of member ids: outcomes recorded before the cluster key existed are read with it."""
        return np.asarray(members)

    def __init__(self, config):
        self.config = config

    def recall_bits(self, exact_match: float) -> float | None:
        """Bits of the task's answers a model recalls at this exact match, beyond chance: the capacity measure of
        memorisation tasks (facts); None where it is not defined."""
        return None

    def exposures(self, examples: int) -> float | None:
        """How often `examples` training examples show each item of a task with a fixed set of items (facts); None
        where every example is fresh."""
        return None

    @property
    def needs_start(self) -> bool:
        """True for a fine-tuning task, meaningful only from a trained model (train.init_from), e.g. rewriting facts."""
        return False

    def layout(self) -> Layout:
        raise NotImplementedError

    def sample(self, split: str, seed: int, indices) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def check_depth(self, k: int) -> None:
        """Raise ConfigError unless the task can ask examples at look-ahead k (`sample_at_depth`)."""
        raise ConfigError(f"task {self.name!r} has no depth axis: k (eval.k, --k) applies to cellular automata")

    def sample_at_depth(self, split: str, seed: int, indices, k: int) -> dict[str, np.ndarray]:
        """Examples whose every target lies k steps ahead (a depth axis: cellular automata)."""
        self.check_depth(k)
        raise NotImplementedError

    def curriculum_k(self) -> int:
        """The largest look-ahead a curriculum over k reaches (train.curriculum = k): tasks that draw k per example
        or predict several states ahead."""
        raise ConfigError(f"train.curriculum = k needs a task with a depth axis to grow: a cellular automaton with "
                          f"mixed_k = true, or one predicting several states (O-O, RO-O); task {self.name!r} has none")

    def examples_from_file(self, arrays: dict[str, np.ndarray], ks=None) -> list[tuple[int | None, dict]]:
        """Model-ready example sets from the arrays of an interchange file, each with its look-ahead k (None: the
        task's own mix): by default the file holds `sample`'s own arrays. `ks` asks for look-aheads (tasks with a
        depth axis)."""
        if ks:
            self.sample_at_depth("test", 0, [], ks[0])  # raises: this task has no depth axis
        missing = {"inputs", "targets", "loss_mask"} - set(arrays)
        if missing:
            raise ConfigError(f"the file has no {', '.join(sorted(missing))} arrays for task {self.name!r}")
        length = self.layout().seq_len
        if any(arrays[k].ndim != 2 or arrays[k].shape[1] != length for k in ("inputs", "targets", "loss_mask")):
            raise ConfigError(f"the file's inputs, targets and loss_mask must be (N, {length}) arrays for this task")
        return [(None, arrays)]

    def baselines(self, examples: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """{name: predicted tokens (n, L)} of the task's baseline predictors on these examples (scored like a
        model's predictions, at the loss_mask positions); {} for a task without baselines."""
        return {}

    def probe_states(self, split: str, seed: int, indices, k: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(examples asked k steps ahead, the states 1..k ahead they pass through (n, k, cells)): what a probe of a
        model's hidden states at the target positions decodes (`testbed probe`). The examples' target positions hold
        the one state k ahead, or (a task predicting several states) the states 1.. in order."""
        raise ConfigError(f"task {self.name!r} has no intermediate states to probe: probes read cellular automata")

    def rollout(self, predict, split: str, seed: int, n: int, steps: int, batch_size: int) -> list[dict]:
        """Feed `predict` (inputs -> predicted tokens, numpy) its own predictions for `steps` steps."""
        raise ConfigError(f"--rollout needs a task that predicts the next state (cellular automata), not {self.name!r}")

    def world_bytes(self) -> int:
        """About how many bytes the task holds beside its examples (a world of facts and its orders): counted by
        every size check before the first example is drawn."""
        return 0

    def check_export(self, given: set) -> None:
        """Raise ConfigError where fields the user gave (`given`, their names) cannot hold together in what `testbed
        gen` writes; checked before anything is generated (training checks the whole task when it formats
        examples)."""

    def export_bytes(self, n: int) -> int:
        """About how many bytes `export(split, seed, n)` allocates (checked against the memory cap first)."""
        return n * (40 * self.layout().seq_len + 64) + self.world_bytes()

    def export(self, split: str, seed: int, n: int) -> dict[str, np.ndarray]:
        """The arrays `testbed gen` writes; by default the model-ready sample itself."""
        return self.sample(split, seed, np.arange(n))

    def show(self, arrays: dict[str, np.ndarray], count: int) -> str:
        """A terminal rendering of the first `count` examples of `export`'s arrays."""
        vocab = self.layout().vocab
        lines = []
        for i in range(min(count, len(arrays["inputs"]))):
            toks = [vocab[t] for t in arrays["inputs"][i]]
            tgt = [vocab[t] if m else "." for t, m in zip(arrays["targets"][i], arrays["loss_mask"][i])]
            lines += [f"example {i}", "  in : " + " ".join(toks), "  out: " + " ".join(tgt)]
        return "\n".join(lines)
