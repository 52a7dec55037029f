"""The cellular-automata task's fields, their checks, and its token vocabulary (cellular_automata.py generates)."""

from __future__ import annotations

from dataclasses import dataclass

from .base import MAX_SEQ_LEN, check_size
from .core.errors import ConfigError
from .core.registry import option as _f

TASKS = ("O-S", "O-O", "O-SR", "RO-S", "RO-O")
MULTI_STATE = ("O-O", "RO-O")  # tasks that predict the next m states
RULE_GIVEN = ("RO-S", "RO-O")
K_MAX = 16
# Token ids. k-tokens (mixed-k tasks) follow: id K0 + k - 1 means "predict k steps ahead".
ZERO, ONE, SEP, MASK, RULE = 0, 1, 2, 3, 4
K0 = 5
VOCAB = ("0", "1", "|", "?", "R") + tuple(f"k{k}" for k in range(1, K_MAX + 1))

BASELINES = {"O-S": ("copy_last", "period", "rule_lookup"), "O-O": ("copy_last", "period", "rule_lookup"),
             "O-SR": ("copy_last", "period", "rule_lookup"), "RO-S": ("copy_last", "period", "step_then_period"),
             "RO-O": ("copy_last", "period", "step_then_period")}



@dataclass(frozen=True)
class CAConfig:
    radius: int = _f(2, "neighbourhood radius r (1..4); a rule is a truth table of 2^(2r+1) bits")
    width: int = _f(20, "cells per state W (periodic boundary), at least 2r+1")
    steps: int = _f(20, "orbit length T in states, the initial state included")
    init: str = _f("random", "initial state: random | single (one live cell at W // 2) | density=P")
    rule: tuple[int, ...] = _f((), "rule numbers; example i uses rule[i % len], in every split; empty: random rules")
    split_fractions: tuple[float, ...] = _f((0.8, 0.1, 0.1), "share of rule space for train, val, test")
    task: str = _f("O-S", "O-S (state k ahead) | O-O (next m states) | O-SR (state k ahead + rule) | RO-S, RO-O "
                   "(rule given: O-S, O-O with the rule table before the orbit)")
    n_input: int = _f(10, "number of given states s_0 .. s_{n-1}")
    k: int = _f(1, "steps ahead to predict (O-S, O-SR, RO-S); the largest k when mixed_k")
    mixed_k: bool = _f(False, "draw k uniformly from 1..k per example; a k-token at the start says which")
    m: int = _f(4, "number of future states predicted by O-O")
    path: bool = _f(False, "training examples also carry the states 1..k ahead (`path_targets`), for per-loop step "
                    "supervision (O-S, RO-S; not mixed_k)", hash="if_set")

    def __post_init__(self):
        r, w = self.radius, self.width
        if not 1 <= r <= 4:
            raise ConfigError(f"radius must be in 1..4, got {r}")
        if w < 2 * r + 1:
            raise ConfigError(f"width must be at least 2r+1 = {2 * r + 1} for radius {r}, got {w}")
        if self.steps < 2:
            raise ConfigError(f"steps (orbit length T) must be at least 2, got {self.steps}")
        parse_init(self.init)
        limit = 1 << (1 << (2 * r + 1))
        for n in self.rule:
            if not 0 <= n < limit:
                raise ConfigError(f"rule number {n} out of range for radius {r}: must be in 0..2^{1 << (2 * r + 1)}-1")
        fr = self.split_fractions
        if len(fr) != 3 or any(not 0 < f < 1 for f in fr) or abs(sum(fr) - 1) > 1e-9:
            raise ConfigError(f"split_fractions must be three numbers in (0, 1) summing to 1, got {list(fr)}")
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}; valid: {', '.join(TASKS)}")
        if self.n_input < 1:
            raise ConfigError(f"n_input must be at least 1, got {self.n_input}")
        if not 1 <= self.k <= K_MAX:
            raise ConfigError(f"k must be in 1..{K_MAX}, got {self.k}")
        if self.m < 1:
            raise ConfigError(f"m must be at least 1, got {self.m}")

    def check_task(self) -> None:
        """What formatting examples of the task needs beyond the orbit fields (plain orbits, `testbed gen ca`, do
        not depend on it)."""
        rows = self.m if self.task in MULTI_STATE else 1
        length = (self.n_input * (self.width + 1) + rows * (self.width + 1) + int(self.mixed_k)
                  + (1 + self.table_size) * ((self.task in RULE_GIVEN) + (self.task == "O-SR")))
        check_size("the width and n_input", length, MAX_SEQ_LEN, "sequences of that many tokens")
        if self.mixed_k and self.task in MULTI_STATE:
            raise ConfigError(f"mixed_k does not apply to task {self.task}, which predicts the next m states")
        if self.path and (self.mixed_k or self.task not in ("O-S", "RO-S")):
            raise ConfigError(f"path (the states 1..k ahead as targets) needs task O-S or RO-S without mixed_k; "
                              f"got task {self.task}, mixed_k = {self.mixed_k}")
        if self.states_needed > self.steps:
            ahead = f"m ({self.m})" if self.task in MULTI_STATE else f"k ({self.k})"
            raise ConfigError(
                f"n_input ({self.n_input}) + {ahead} = {self.states_needed} states do not fit in steps = "
                f"{self.steps}; lower n_input/k/m or raise steps"
            )

    @property
    def table_size(self) -> int:
        return 1 << (2 * self.radius + 1)

    @property
    def states_needed(self) -> int:
        return self.n_input + (self.m if self.task in MULTI_STATE else self.k)


def parse_init(init: str) -> float | None:
    """None for 'single', the live-cell probability otherwise."""
    if init == "random":
        return 0.5
    if init == "single":
        return None
    if init.startswith("density="):
        try:
            p = float(init.split("=", 1)[1])
        except ValueError:
            p = -1.0
        if 0.0 <= p <= 1.0:
            return p
        raise ConfigError(f"init density must be a number in [0, 1], got {init!r}")
    raise ConfigError(f"unknown init {init!r}; valid: random | single | density=P (0 <= P <= 1)")
