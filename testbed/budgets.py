"""Budgets that follow the validation curve: stop on a plateau instead of at a fixed step count, and a curriculum
over the look-ahead k that lets the next k join once the current stage has stopped rising.

Both keep their history in the run's checkpoints (Lightning's callback state), so a resumed run makes the same
decisions at the same steps as an uninterrupted one.
"""

from __future__ import annotations

import lightning as L


class Plateau(L.Callback):
    """A budget that follows the validation curve: training stops once the best validation exact match has risen by
    no more than `delta` over the last `window` steps (the best now against the best at the window's start, so a
    slow but steady climb is progress and a dip back to an old best is not); otherwise it runs to max_steps, the
    cap. Its history is checkpointed, so a resumed run stops where an uninterrupted one would."""

    def __init__(self, window: int, delta: float, monitor: str = "val/exact_match", curriculum=None):
        self.window, self.delta, self.monitor = window, delta, monitor
        self.curriculum = curriculum  # with a curriculum, only its last stage (every k) can stop the run
        self.history: list[tuple[int, float]] = []  # (step, best validation so far)
        self.stopped_at = None

    def observe(self, step: int, value: float) -> bool:
        """Take one validation; True when the plateau is reached (training should stop)."""
        best = max(value, self.history[-1][1]) if self.history else value
        self.history.append((step, best))
        before = [b for s, b in self.history if s <= step - self.window]
        if before and best - before[-1] <= self.delta:
            self.stopped_at = step
            return True
        return False

    def on_validation_end(self, trainer, module):
        value = trainer.callback_metrics.get(self.monitor)
        if self.curriculum is not None and not self.curriculum.final:
            return
        if value is not None and not trainer.sanity_checking and self.observe(trainer.global_step, float(value)):
            trainer.should_stop = True

    def state_dict(self):
        return {"history": list(self.history), "stopped_at": self.stopped_at}

    def load_state_dict(self, state):
        self.history, self.stopped_at = [tuple(h) for h in state["history"]], state["stopped_at"]


class Curriculum(L.Callback):
    """A curriculum over k: training starts on k = 1 alone; once the validation exact match at the stage's hardest k
    reaches `at`, or stops rising by more than `delta` over `window` steps (the Plateau rule), the next k joins (the
    stage's examples draw k uniformly from 1..k_max) until every k of the task is in. A stage decided at the
    validation after s updates trains every later update (batches are made at the step that uses them:
    `data.k_max`). `stages` is [(updates before it, k_max), ...], recorded in result.json."""

    def __init__(self, data, k_final: int, window: int, delta: float, at: float):
        self.data, self.k_final, self.window, self.delta, self.at = data, k_final, window, delta, at
        self.stages: list[tuple[int, int]] = [(0, 1)]
        self.rule = Plateau(window, delta)
        self.data.k_max = 1

    @property
    def k_max(self) -> int:
        return self.stages[-1][1]

    @property
    def final(self) -> bool:
        return self.k_max >= self.k_final

    def observe(self, step: int, value: float) -> bool:
        """Take one validation at the stage's hardest k; True when the next k joins."""
        if self.final:
            return False
        if value >= self.at or self.rule.observe(step, value):
            self.stages.append((step, self.k_max + 1))
            self.rule = Plateau(self.window, self.delta)
            self.data.k_max = self.k_max
            return True
        return False

    def on_validation_end(self, trainer, module):
        value = trainer.callback_metrics.get(f"val/exact_match@k={self.k_max}")
        if value is not None and not trainer.sanity_checking:
            self.observe(trainer.global_step, float(value))

    def state_dict(self):
        return {"stages": [list(s) for s in self.stages], "history": list(self.rule.history)}

    def load_state_dict(self, state):
        self.stages = [tuple(s) for s in state["stages"]]
        self.rule = Plateau(self.window, self.delta)
        self.rule.history = [tuple(h) for h in state["history"]]
        self.data.k_max = self.k_max
