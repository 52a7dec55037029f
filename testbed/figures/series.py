"""What several depth figures share: the test rows they read, the k of a row, our numbers keyed like the
published points, a figure compared point by point (SeriesFigure) and the depth curve (DepthCurve)."""

from __future__ import annotations

from ..results import plots, tables
from .base import Figure, compare_series


def test_rows(rows: list[dict], baselines: bool = False) -> list[dict]:
    """Test rows at the model's own iteration count: the models', or the baselines'."""
    return [r for r in rows if r["split"] == "test" and not r.get("iterations") and tables.is_baseline(r) == baselines]


def k_of(r) -> int | None:
    return int(r["k"]) if r["slice"] == "k" and r["k"] not in ("", None) and int(r["k"]) > 0 else None


def ours_by_task_k(rows, metric, baselines=False):
    """{(series, k): (mean, lo, hi)}: a model's series is its task; a baseline's, 'TASK baseline:NAME'."""
    return {((f"{r['task']} {r['model']}" if baselines else r["task"]), k_of(r)): tables.point(r, metric)
            for r in test_rows(rows, baselines) if k_of(r)}


def ours_by_layers(rows, metric, baselines=False):
    """{(k=K, layers): point}; a baseline has no layers, so its row is 'k=K baseline:NAME' at layers 0."""
    if baselines:
        return {(f"k={k_of(r)} {r['model']}", 0): tables.point(r, metric) for r in test_rows(rows, True) if k_of(r)}
    return {(f"k={k_of(r)}", int(r["n_layer"])): tables.point(r, metric) for r in test_rows(rows) if k_of(r)}


def ours_by_input_length(rows, metric, baselines=False):
    return {((f"{r['task']} {r['model']}" if baselines else r["task"]), int(r["n_input"])): tables.point(r, metric)
            for r in test_rows(rows, baselines) if r["slice"] == "all" and r.get("n_input") not in ("", None)}


def ours_by_rollout(rows, metric, baselines=False):
    return {((f"{r['task']} {r['model']}" if baselines else r["task"]), int(r["k"])): tables.point(r, metric)
            for r in rows if r["split"] == "rollout" and tables.is_baseline(r) == baselines}


class SeriesFigure(Figure):
    """Ours keyed like the published points, {(series, x): (mean, lo, hi)}, compared point by point in the
    published metric (P2: per-bit accuracy over every example), with the non-trivial stratum and the baselines on
    the same examples beside."""

    axis = "k"
    xlabel = ""

    def ours(self, rows, metric, baselines=False) -> dict:
        raise NotImplementedError

    def compare(self, res, paper):
        metric = paper.get("metric", "cell_accuracy")
        points = compare_series(self.ours(res.rows, metric), paper, self.axis)
        nontrivial = self.ours(res.rows, f"{metric}_nontrivial")
        for p in points:  # the same point on the examples a rule-free predictor misses
            mean, lo, hi = nontrivial.get((p["series"], p[self.axis]), (None, None, None))
            p.update(ours_nontrivial=mean, ours_nontrivial_lo=lo, ours_nontrivial_hi=hi)
        base = compare_series(self.ours(res.rows, metric, baselines=True), {}, self.axis)
        nt = self.ours(res.rows, f"{metric}_nontrivial", baselines=True)
        for p in base:
            mean, lo, hi = nt.get((p["series"], p[self.axis]), (None, None, None))
            p.update(ours_nontrivial=mean, ours_nontrivial_lo=lo, ours_nontrivial_hi=hi)
        return points + base

    def draw(self, rows, points, out, title, paper):
        plots.plot_series(points, self.axis, out, title, self.xlabel)


class PerBitFigure(SeriesFigure):
    """P2's figures compared per bit: drawn as per-cell accuracy and non-trivial exact match panels."""

    def draw(self, rows, points, out, title, paper):
        plots.plot_depth(rows, out, title, paper, metrics=("cell_accuracy", "exact_match_nontrivial"))


class DepthCurve(Figure):
    """The quickstart: exact match on the non-trivial stratum against k, one line per depth, baselines in grey; the
    table beside it also on fresh targets (no earlier state of the orbit) and overall, with the examples and held-out
    classes each stratum rests on."""

    title = "Reasoning depth on held-out rules: each step ahead needs another rule application"
    xlabel = "steps ahead k"

    def compare(self, res, paper):
        names = tables.labels(res.rows)
        out = []
        for r in test_rows(res.rows) + test_rows(res.rows, baselines=True):
            if not k_of(r):
                continue
            point = {"series": r["model"] if tables.is_baseline(r) else names[r["config_id"]], "k": k_of(r)}
            for title, metric, classes in (("exact match (non-trivial)", tables.HEADLINE, "n_classes_nontrivial"),
                                           ("exact match (fresh)", "exact_match_fresh", "n_classes_fresh"),
                                           ("exact match", "exact_match", "n_classes")):
                point[title], point[f"{title}_lo"], point[f"{title}_hi"] = tables.published_point(r, metric)
                point[f"classes ({title.removeprefix('exact match').strip(' ()') or 'all'})"] = r.get(classes, "")
            out.append({**point, "non-trivial share": r["nontrivial_fraction"], "fresh": r.get("n_fresh", ""),
                        "seeds": r["n_seeds"], "rules": r["n_rules"]})
        return out

    def draw(self, rows, points, out, title, paper):
        plots.plot_depth(rows, out, self.title, metrics=(tables.HEADLINE,), xlabel=self.xlabel)
