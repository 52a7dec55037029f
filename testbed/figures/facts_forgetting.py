"""The facts-forgetting figure (Lin et al. 2025): retained vs learned facts while fine-tuning a product-key memory on
new ones, per method.

Runs: experiments/facts_forgetting.toml. What the page says beside the numbers:
docs/figures/facts-forgetting.notes.md; the pages themselves are generated (docs/figures/NAME.md). Retained against
learned: What fine-tuning on new facts erases: curves of the facts learned (the run's own validation set) and the
facts retained (its tracked set, eval.track) over fine-tuning steps, and the comparison at equal learning.
Fine-tuning methods are compared where every one of them has learned as much: the level is the highest learned
accuracy that every method reaches in every seed (its curve's maximum, the least of them), and each run's retained
accuracy is read at the first validation where it reaches that level. Intervals are over seeds (Student t, as the
runs of one method differ by their seed alone); the difference of two methods is paired by seed.
"""

from __future__ import annotations

from ..results import plots_memory
from ..results.collect import stopped
from ..results.intervals import t_interval
from ..store import read_result, validation_history
from .base import Figure

CURVE_COLUMNS = ["phase", "update", "seed", "step", "learned", "retained"]


def curves(runs: list[tuple[object, object]]) -> list[dict]:
    """Rows of CURVE_COLUMNS from (RunConfig, run directory) of fine-tuning runs that track one set."""
    out = []
    for cfg, run_dir in runs:
        track = f"val[{cfg.eval.track[0]}]/exact_match"
        retained = dict(validation_history(run_dir, track))
        for step, learned in validation_history(run_dir):
            if step in retained:
                out.append({"phase": cfg.preset, "update": cfg.train.update, "seed": cfg.seed,
                            "step": step, "learned": learned, "retained": retained[step]})
    return out


def budgets(runs: list[tuple[object, object]]) -> dict:
    """Per (phase, method): the steps each seed's fine-tuning took and why it stopped ('plateau', 'early_stop' or
    'cap'), from each run's result.json, so the page can say whether a method was compared at convergence."""
    out: dict = {}
    for cfg, run_dir in runs:
        result = read_result(run_dir)
        out.setdefault((cfg.preset, cfg.train.update), []).append((int(result.get("steps", 0)),
                                                                  result.get("stopped") or "cap"))
    return out


def budget_text(seeds: list[tuple[int, str]]) -> tuple[float, str]:
    """Mean steps and why the seeds stopped, as collect says it ('plateau', or 'plateau 2 of 3, cap 1 of 3')."""
    return sum(s for s, _ in seeds) / len(seeds), stopped([why for _, why in seeds])


def _by_run(rows: list[dict]) -> dict:
    runs: dict = {}
    for r in sorted(rows, key=lambda r: int(r["step"])):
        runs.setdefault((r["phase"], r["update"], int(r["seed"])), []).append((float(r["learned"]),
                                                                             float(r["retained"])))
    return runs


def at_equal_learning(rows: list[dict], reference: str = "all") -> list[dict]:
    """Per phase and method: the level every method reached, the retained accuracy there and at the end, with
    intervals over seeds, and (not for the reference) the paired difference in retained against the reference."""
    runs = _by_run(rows)
    out = []
    for phase in sorted({p for p, _, _ in runs}):
        mine = {(u, s): c for (p, u, s), c in runs.items() if p == phase and c}
        level = min(max(learned for learned, _ in c) for c in mine.values())
        at = {key: next(kept for learned, kept in c if learned >= level) for key, c in mine.items()}
        for update in sorted({u for u, _ in mine}):
            seeds = sorted(s for u, s in mine if u == update)
            point = {"phase": phase, "update": update, "level": level, "seeds": len(seeds)}
            point["retained"], point["retained_lo"], point["retained_hi"] = t_interval([at[update, s] for s in seeds])
            point["final_learned"], *_ = t_interval([mine[update, s][-1][0] for s in seeds])
            point["final_retained"], *_ = t_interval([mine[update, s][-1][1] for s in seeds])
            paired = [at[update, s] - at[reference, s] for s in seeds if (reference, s) in at]
            if update != reference and paired:
                point["vs"], (point["difference"], point["difference_lo"], point["difference_hi"]) = \
                    reference, t_interval(paired, (-1.0, 1.0))
            out.append(point)
    return out



class FactsForgetting(Figure):
    """Retained (stored facts a fine-tuning should keep) against learned (the new facts), per fine-tuning method,
    compared at the learned accuracy every method reaches."""

    intervals = "over seeds, Student t"
    collected = False  # its intervals are Student t over seeds (forgetting.py), not collect's

    def results(self, ctx):
        res = super().results(ctx)
        tuned = [(r, ctx.runs_dir / r.run_id()) for r in res.configs if r.train.init_from]
        res.curves = curves(tuned)
        res.budgets = budgets(tuned)
        return res

    def compare(self, res, paper):
        out = []
        for p in at_equal_learning(res.curves):
            out.append({"series": f"{p['phase']} {p['update']}", "x": f"learned >= {p['level']:.3f}",
                        "ours": p["retained"], "ours_lo": p["retained_lo"], "ours_hi": p["retained_hi"],
                        "published": None, "vs all": p.get("difference", ""),
                        "vs all_lo": p.get("difference_lo", ""), "vs all_hi": p.get("difference_hi", ""),
                        "end: learned": p["final_learned"], "end: retained": p["final_retained"],
                        "steps": "", "stopped": "", "seeds": p["seeds"]})
            seeds = getattr(res, "budgets", {}).get((p["phase"], p["update"]))
            if seeds:
                out[-1]["steps"], out[-1]["stopped"] = budget_text(seeds)
        return out

    def draw_results(self, res, points, out, title, paper):
        plots_memory.plot_forgetting(res.curves, points, out, title)


FIGURE = (
    FactsForgetting("facts-forgetting", "Lin et al. 2025", "retained vs learned facts while fine-tuning a "
                    "product-key memory on new ones, per method", "facts_forgetting.toml", {"cpu": 12.0},
                    presets={"cpu": ("store", "new", "rewrite")},
                    note="500 entities stored (2,000 facts; until recall stops rising, at most 8,000 steps), then "
                         "fine-tuned on the other 500 (new) or on the stored entities' first attribute redrawn "
                         "(rewrite) until learned rises by less than 0.01 over 1,000 steps, at most 6,000 (steps and "
                         "why each stopped: the table); retained is read at the first validation where learned "
                         "reaches the level every method reaches in every seed, and at the end; intervals over 3 seeds "
                         "(Student t), 'vs all' paired by seed. Published (Lin et al., TriviaQA, a 1.3B memory-layer "
                         "model): held-out F1 drops 89 % with full finetuning, 11 % with sparse memory finetuning.")
)
