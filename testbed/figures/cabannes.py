"""The cabannes-error-vs-d, cabannes-joint, cabannes-optimizers figures (Cabannes et al. 2024): closed-form memory error
vs d, three schemes; thresholded memory error over d x T; optimizer-trained memories: error vs d per setting.

Runs: experiments/cabannes_scaling.toml. What the page says beside the numbers:
docs/figures/cabannes-error-vs-d.notes.md, docs/figures/cabannes-joint.notes.md,
docs/figures/cabannes-optimizers.notes.md; the pages themselves are generated (docs/figures/NAME.md). `testbed
memory-law` computes the closed-form laws at any sizes (memory_law).
"""

from __future__ import annotations

from generators.core import ConfigError

from .. import spec as specs
from ..results import plots_memory, tables
from .base import Figure, Results, compare_series

OPTIMIZER_ROWS = ("adam", "sgd", "sgd-b1024", "adam-ln-b1024", "sgd-learned-b16")


class MemoryLaw(Figure):
    """Closed-form memories: error against d per scheme (100 trials), or the thresholded scheme over (d, T)."""

    trains = False
    intervals = "over the random draws of embeddings (and samples), Student t"

    def results(self, ctx):
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
        from ..memory.law import SCHEMES, THEORY

        plots_memory.plot_memory_law(rows, out, paper, title, SCHEMES, THEORY)


LAWS = ("error-vs-d", "joint")


def memory_law(figure: str, ds: list[int], ts: list[int], n: int, m: int, alpha: float, trials: int, out,
               plot_out=None, experiments=None) -> list[str]:
    """`testbed memory-law`: the closed-form errors at any sizes, beside the published values where the setting is
    the paper's; the table written to `out`, the figure drawn to `plot_out`. Checked before anything is computed or
    written. Returns the lines to print."""
    import math

    from generators.core import io as gio

    from ..limits import check
    from ..memory import law
    from ..results.io import write_csv

    if figure not in LAWS:
        from generators.core.registry import did_you_mean

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
                                     f"Linear associative memories, N = {n}, M = {m}, α = {alpha}", law.SCHEMES,
                                     law.THEORY)
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
]
