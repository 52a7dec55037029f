"""Budgets that follow the validation curve: stop on a plateau instead of at a fixed step count, and a curriculum
over the look-ahead k that lets the next k join once the current stage has stopped rising.

Both keep their history in the run's checkpoints (Lightning's callback state), so a resumed run makes the same
decisions at the same steps as an uninterrupted one.
"""

from __future__ import annotations

import lightning as L

from .metrics import is_curve

# A curve has left its initial plateau once it stands this much above its first validation at two validations in a
# row. Noise makes smaller rises (a curve at 1 % exact match on 512 examples drifts by a point or two) and single
# spikes (a radius-2 run on its initial plateau read 0.08 once, then 0.01 again, and was stopped there when its best
# counted as progress).
PROGRESS = 0.05


class Plateau(L.Callback):
    """A budget that follows the validation curves: training stops once the best validation exact match has risen by
    no more than `delta` over the last `window` steps (the best now against the best at the window's start, so a
    slow but steady climb is progress and a dip back to an old best is not), on the whole examples and on every
    per-k curve the validation logs (`monitor@k=j`): a task predicting several states ahead is still learning while
    its first state's exact match climbs, though whole examples sit at 0 until the last state is learnt. With
    `after_progress`, the window starts no earlier than the first rise above the run's first validation: a curve
    still flat at its start is the loss waiting to leave its initial plateau (radius-2 runs sit there for
    thousands of steps, then learn), not a converged model, and a run that never leaves it trains to the cap.
    Otherwise it runs to max_steps, the cap. With a `cooldown`, reaching the plateau starts the learning rate's
    cool-down (system.lr_factor reads `cooling_from`) instead of stopping, and the run stops `cooldown` steps later:
    a curve that stalls at a high constant rate is often still storing what the decay then brings out. Its history is
    checkpointed, so a resumed run stops (and cools) where an uninterrupted one would."""

    def __init__(self, window: int, delta: float, monitor: str = "val/exact_match", curriculum=None,
                 after_progress: bool = False, cooldown: int = 0):
        self.window, self.delta, self.monitor, self.cooldown = window, delta, monitor, cooldown
        self.cooling_from: int | None = None
        self.curriculum = curriculum  # with a curriculum, only its last stage (every k) can stop the run
        self.after_progress = after_progress
        self.values: list[tuple[int, dict]] = []  # (step, {curve: value}) of every validation
        self.stopped_at = None

    def progress_at(self) -> int | None:
        """The step of the first validation at which some curve stood more than PROGRESS (and delta) above its first
        value and still did at the next validation: a rise that neither the sampling noise of a few hundred
        validation examples nor a one-validation spike on the initial plateau makes."""
        if len(self.values) < 2:
            return None
        first, margin = self.values[0][1], max(self.delta, PROGRESS)

        def above(values: dict) -> set:
            return {n for n, v in values.items() if v - first.get(n, v) > margin}

        return next((s for (s, now), (_, after) in zip(self.values, self.values[1:]) if above(now) & above(after)),
                    None)

    def observe(self, step: int, value: float | dict) -> bool:
        """Take one validation (one value, or {curve: value}); True when the plateau is reached (training should
        stop): no curve's best rose by more than delta since the window's start."""
        values = value if isinstance(value, dict) else {self.monitor: value}
        self.values.append((step, dict(values)))
        if self.cooling_from is not None:  # cooling down: stop once the cool-down has run
            if step >= self.cooling_from + self.cooldown:
                self.stopped_at = step
            return self.stopped_at is not None
        start = self.progress_at() if self.after_progress else self.values[0][0]
        if start is None:
            return False
        history = self.bests()
        best = history[-1][1]
        before = [b for s, b in history if start <= s <= step - self.window]
        if before and all(v - before[-1].get(name, float("-inf")) <= self.delta for name, v in best.items()):
            if self.cooldown:
                self.cooling_from = step
                return False
            self.stopped_at = step
            return True
        return False

    def bests(self) -> list[tuple[int, dict]]:
        """(step, {curve: best so far}) at every validation."""
        out, best = [], {}
        for step, values in self.values:
            best = {name: max(v, best.get(name, v)) for name, v in values.items()}
            out.append((step, best))
        return out

    def curves(self, metrics) -> dict:
        return {name: float(v) for name, v in metrics.items() if is_curve(name, self.monitor)}

    def on_validation_end(self, trainer, module):
        if self.curriculum is not None and not self.curriculum.final:
            return
        values = self.curves(trainer.callback_metrics)
        if values and not trainer.sanity_checking and self.observe(trainer.global_step, values):
            trainer.should_stop = True

    def state_dict(self):
        return {"values": [[s, dict(v)] for s, v in self.values], "stopped_at": self.stopped_at,
                "cooling_from": self.cooling_from}

    def load_state_dict(self, state):
        # older checkpoints kept the best so far per validation ("history"; one number before the per-k curves):
        # the bests stand in for the values, and give back the same bests
        rows = state["values"] if "values" in state else state["history"]
        self.values = [(s, v if isinstance(v, dict) else {self.monitor: v}) for s, v in rows]
        self.stopped_at = state["stopped_at"]
        self.cooling_from = state.get("cooling_from")


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
        return {"stages": [list(s) for s in self.stages], "rule": self.rule.state_dict()}

    def load_state_dict(self, state):
        self.stages = [tuple(s) for s in state["stages"]]
        self.rule = Plateau(self.window, self.delta)
        if "rule" in state:
            self.rule.load_state_dict(state["rule"])
        else:  # checkpoints written before the rule kept its own state
            self.rule.load_state_dict({"history": [tuple(h) for h in state["history"]], "stopped_at": None})
        self.data.k_max = self.k_max
