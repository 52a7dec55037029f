"""The memory figures: Cabannes et al.'s closed-form and optimizer-trained linear memories, Zoology's MQAR widths,
and the retrieval capacity of the memory mechanisms."""

from __future__ import annotations

import dataclasses

from generators import ConfigError

from .. import plots_memory, tables
from .base import Figure, Results, compare_series

CAPACITY = {"cpu": dict(ds=[8, 16, 32, 64], trials=20), "paper": dict(ds=[8, 16, 32, 64, 128], trials=50)}
CAPACITY_PAIRS = [1, 2, 4, 8, 16, 32, 64, 128, 256]
OPTIMIZER_ROWS = ("adam", "sgd", "sgd-b1024", "adam-ln-b1024", "sgd-learned-b16")  # one spec preset per published row


class MemoryLaw(Figure):
    """Closed-form memories: error against d per scheme (100 trials), or the thresholded scheme over (d, T)."""

    trains = False
    intervals = "over the random draws of embeddings (and samples), Student t"

    def results(self, ctx):
        from .. import spec as specs
        from ..memory import law

        preset = ctx.preset
        self.check_preset(preset)
        paper = specs.load(ctx.experiments / self.spec)["paper"]
        n, m, alpha = (paper["setting"][k] for k in ("n", "m", "alpha"))
        if self.presets[preset] == ("joint",):
            rows = law.joint_rows(paper["d"], paper["T"], n, m, alpha, 20)
        else:
            rows = law.error_vs_d_rows(paper["d"], n, m, alpha, 100)
        return Results(list(rows[0]), rows)

    def compare(self, res, paper):
        rows = res.rows
        joint = any(r.get("T") not in ("", None) for r in rows)
        ours = {((f"T={r['T']}" if joint else r["scheme"]), int(r["d"])):
                (float(r["error"]), float(r["error_lo"]), float(r["error_hi"])) for r in rows}
        return compare_series(ours, {k: v for k, v in paper.items() if k in ("d",) or (k.startswith("T=") == joint)},
                              "d")

    def draw(self, rows, points, out, title, paper):
        plots_memory.plot_memory_law(rows, out, paper, title)


LAWS = ("error-vs-d", "joint")


def memory_law(figure: str, ds: list[int], ts: list[int], n: int, m: int, alpha: float, trials: int, out,
               plot_out=None, experiments=None) -> list[str]:
    """`testbed memory-law`: the closed-form errors at any sizes, beside the published values where the setting is
    the paper's; the table written to `out`, the figure drawn to `plot_out`. Checked before anything is computed or
    written. Returns the lines to print."""
    import math

    from generators import io as gio

    from .. import spec as specs
    from ..limits import check
    from ..memory import law
    from ..results_csv import write_csv

    if figure not in LAWS:
        from generators.registry import did_you_mean

        raise ConfigError(f"unknown figure {figure!r}{did_you_mean(figure, LAWS)}; valid: {', '.join(LAWS)}")
    if not ds or min(ds) < 1:
        raise ConfigError("--d must be positive memory sizes")
    check("the Gram matrices", 8 * (3 * n * n + 2 * n * max(ds)), "--n or --d")
    if n < m or m < 1 or not math.isfinite(alpha) or alpha <= 0 or trials < 0:
        raise ConfigError(f"need N >= M >= 1, a finite alpha > 0 and trials >= 0, got N = {n}, M = {m}, "
                          f"alpha = {alpha}")
    if figure == "joint" and (not ts or min(ts) < 1):
        raise ConfigError("--samples must be positive numbers of samples")
    # every trial's embeddings and memories are kept until its point is summarised: trials x (N + M) x d floats
    check("the trials' embeddings", 8 * (trials or 100) * (n + m) * max(ds) * max(1, len(ts)), "--trials, --n or --d")
    paper = specs.load(experiments / "cabannes_scaling.toml")["paper"]
    gio.check_writable(out)
    if figure == "error-vs-d":
        rows = law.error_vs_d_rows(ds, n, m, alpha, trials or 100)
    else:
        rows = law.joint_rows(ds, ts, n, m, alpha, trials or 20)
    write_csv(out, list(rows[0]), rows)
    published = paper if (n, m, alpha) == tuple(paper["setting"][k] for k in ("n", "m", "alpha")) else None
    key = (lambda r: f"T={r['T']}") if figure == "joint" else (lambda r: r["scheme"])
    lines = []
    for r in rows:
        pub = dict(zip(published["d"], published.get(key(r), []))).get(r["d"]) if published else None
        extra = f"   published {pub:<7}  ratio {r['error'] / pub:.2f}" if pub else ""
        interval = (f"[{r['error_lo']:.4f}, {r['error_hi']:.4f}]" if math.isfinite(r["error_lo"])
                    else "(one trial: no interval)")
        lines.append(f"{key(r):<10} d={r['d']:<5} error {r['error']:.4f} {interval}{extra}")
    if figure == "error-vs-d":
        lines += [f"fitted log-log slope, {s}: {law.fitted_slope(rows, s):.3f}" for s in ("frequency", "threshold")]
    if plot_out is not None:
        plots_memory.plot_memory_law(rows, plot_out, published,
                                     f"Linear associative memories, N = {n}, M = {m}, α = {alpha}")
    return lines + [f"wrote {out}" + (f" and {plot_out}" if plot_out else "")]


class OptimizerMemories(Figure):
    intervals = "over seeds and test examples"

    def compare(self, res, paper):
        rows = res.rows
        ours = {(preset, d): err for preset, ds in tables.memory_table(rows, intervals=True).items()
                for d, err in ds.items()}
        return compare_series(ours, paper, "d")

    def draw(self, rows, points, out, title, paper):
        plots_memory.plot_memory(rows, out, title, paper)


class FactsCapacity(Figure):
    """Bits stored in the weights against parameters, per memory family: for each model size the world size it
    stores most of (chosen on validation), its bits per parameter beside Allen-Zhu & Li's 2 bits per parameter."""

    WORLD = ("n_entities", "n_attributes", "n_values")

    def results(self, ctx):
        res = super().results(ctx)
        world = {}
        for r in res.configs:
            world[r.config_id()] = {k: getattr(r.data, k) for k in self.WORLD}
            if r.data.law != "uniform":
                raise ConfigError("the facts capacity figure counts bits of uniform values (law = uniform)")
        rows = [{**r, **world.get(r["config_id"], {})} for r in res.rows]
        return dataclasses.replace(res, columns=[*res.columns, *self.WORLD], rows=rows)

    def compare(self, res, paper):
        return tables.facts_points(res.rows, paper.get("bits_per_parameter"))

    def draw(self, rows, points, out, title, paper):
        plots_memory.plot_facts(points, out, title, paper.get("bits_per_parameter"))


class FactsForgetting(Figure):
    """Retained (stored facts a fine-tuning should keep) against learned (the new facts), per fine-tuning method,
    compared at the learned accuracy every method reaches."""

    intervals = "over seeds, Student t"
    collected = False  # its intervals are Student t over seeds (forgetting.py), not collect's

    def results(self, ctx):
        from .. import forgetting

        res = super().results(ctx)
        tuned = [(r, ctx.runs_dir / r.run_id()) for r in res.configs if r.train.init_from]
        res.curves = forgetting.curves(tuned)
        return res

    def compare(self, res, paper):
        from ..forgetting import at_equal_learning

        out = []
        for p in at_equal_learning(res.curves):
            out.append({"series": f"{p['phase']} {p['update']}", "x": f"learned >= {p['level']:.3f}",
                        "ours": p["retained"], "ours_lo": p["retained_lo"], "ours_hi": p["retained_hi"],
                        "published": None, "vs all": p.get("difference", ""),
                        "vs all_lo": p.get("difference_lo", ""), "vs all_hi": p.get("difference_hi", ""),
                        "end: learned": p["final_learned"], "end: retained": p["final_retained"],
                        "seeds": p["seeds"]})
        return out

    def draw_results(self, res, points, out, title, paper):
        plots_memory.plot_forgetting(res.curves, points, out, title)


class MQARWidth(Figure):
    def compare(self, res, paper):
        rows = res.rows
        out = []
        for fam, ds in sorted(tables.capacity_table(rows).items()):
            for d, pts in ds.items():
                for pairs, (acc, _) in pts.items():
                    pub = 1.0 if fam == "attention" else None  # Zoology: attention ~100 % at every width and length
                    out.append({"series": fam, "x": f"d={d} pairs={pairs}", "ours": acc, "published": pub,
                                "difference": acc - pub if pub is not None else None})
        return out

    def draw(self, rows, points, out, title, paper):
        plots_memory.plot_capacity(rows, out, title)


class RetrievalCapacity(Figure):
    """Mechanism-level: store random pairs in each memory, read them back (no training)."""

    trains = False

    def results(self, ctx):
        from ..collect import BASE_COLUMNS
        from ..memory.capacity import capacity_rows

        self.check_preset(ctx.preset)
        setting = CAPACITY[ctx.preset]
        rows = capacity_rows(["attention", "sum", "delta", "armt"], setting["ds"], CAPACITY_PAIRS, setting["trials"])
        return Results(BASE_COLUMNS, rows)

    def compare(self, res, paper):
        rows = res.rows
        out = []
        for fam, ds in sorted(tables.capacity_table(rows).items()):
            for d, pts in ds.items():
                theory = {"sum": d, "delta": d}.get(fam)  # at most dim phi(k) = d keys without interference
                c = tables.capacity({p: v[0] for p, v in pts.items()})
                out.append({"series": fam, "x": f"d={d}", "ours": c, "published": theory,
                            "difference": c - theory if theory is not None else None,
                            "ratio": c / theory if theory else None})
        return out

    def draw(self, rows, points, out, title, paper):
        plots_memory.plot_capacity(rows, out, title)


FIGURES = [
    MemoryLaw("cabannes-error-vs-d", "Cabannes et al. 2024", "closed-form memory error vs d, three schemes",
              "cabannes_scaling.toml", {"cpu": 0.7, "paper": 0.7},
              presets={"cpu": ("error-vs-d",), "paper": ("error-vs-d",)},
              note="100 random embeddings per point (the paper: 20); fitted slopes against -1/4 and -1 in "
                   "results.csv."),
    MemoryLaw("cabannes-joint", "Cabannes et al. 2024", "thresholded memory error over d x T", "cabannes_scaling.toml",
              {"cpu": 0.5, "paper": 0.5}, presets={"cpu": ("joint",), "paper": ("joint",)},
              note="20 random embeddings and sample sets per point, as the paper."),
    OptimizerMemories("cabannes-optimizers", "Cabannes et al. 2024", "optimizer-trained memories: error vs d per "
                      "setting", "cabannes_optimizers.toml", {"cpu": 6.5, "paper": 6.5},
                      presets={p: OPTIMIZER_ROWS for p in ("cpu", "paper")},
                      note="3 seeds per point; W starts random and the normalisation is x / |x|, as the reference "
                           "code."),
    MQARWidth("mqar-width", "Zoology (Arora et al. 2024)", "MQAR recall vs width and stored pairs, per family",
              "mqar_capacity.toml", {"cpu": 60.0, "paper": "320 runs, up to 64 epochs of 100k: ~5 GPU-days"},
              note="cpu: L = 64, V = 128, widths 16-64, 3,000 steps, one learning rate (ARMT's diverging points "
                   "also at 1e-3, the one that validates higher kept; Zoology: best of 4); published: attention ~1.00 "
                   "at every width. Diverged runs are "
                   "reported, not drawn."),
    RetrievalCapacity("retrieval-capacity", "Schlag et al. 2021; ARMT", "most pairs recalled at >= 90 % vs state size",
                      "mqar_capacity.toml", {"cpu": 0.7, "paper": 4.0},
                      note="mechanism-level (no training), pairs tested at powers of two; published: retrieval "
                           "breaks at S ~ dim phi(k) = d pairs (sum rule: signal-to-noise sqrt(d/S); delta rule: exact "
                           "up to d orthogonal keys)."),
    FactsCapacity("facts-capacity", "Allen-Zhu & Li 2024", "bits stored in the weights vs parameters, per memory "
                  "family", "facts_capacity.toml", {"cpu": 10.0, "transformers": 30.0},
                  presets={"cpu": ("mlp", "pkm", "hash"), "transformers": ("transformer", "pkm_transformer")},
                  note="Worlds of 250-4,000 entities x 4 attributes of 16 uniform values; three sizes per family "
                       "(cpu: the three query memories; --preset transformers: a transformer and one with a "
                       "product-key memory), "
                       "three seeds; bits per parameter counts every parameter, the entity embeddings included "
                       "(the published 2 bits/param is for transformers with enough exposures). The query memories "
                       "read out over the 16 values only (model.readout = answers); --set model.readout=vocab "
                       "measures them with a read-out over every token, most of a small memory's parameters."),
    FactsForgetting("facts-forgetting", "Lin et al. 2025", "retained vs learned facts while fine-tuning a "
                    "product-key memory on new ones, per method", "facts_forgetting.toml", {"cpu": 12.0},
                    presets={"cpu": ("store", "new", "rewrite")},
                    note="500 entities stored (2,000 facts), then 1,500 steps on the other 500 (new) or on the stored "
                         "entities' first attribute redrawn (rewrite); retained is read at the first validation where "
                         "learned reaches the level every method reaches in every seed; intervals over 3 seeds "
                         "(Student t), 'vs all' paired by seed. Published (Lin et al., TriviaQA, a 1.3B memory-layer "
                         "model): held-out F1 drops 89 % with full finetuning, 11 % with sparse memory finetuning."),
]
