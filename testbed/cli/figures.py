"""`testbed plot`, `reproduce` and `quickstart`: figures from results tables, published figures, the first curve."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from generators.core import ConfigError
from generators.core.registry import did_you_mean

from .common import SeedsOption, SetOption, check_image, experiments_dir, friendly, launcher_options, quiet_lightning


def register(app: typer.Typer) -> None:
    app.command()(plot)
    app.command()(reproduce)
    app.command()(quickstart)
    app.command()(docs)


def _views() -> dict:
    """view -> (draw(rows, out, title, published, by, metric), text(rows, published, by, metric)); metric: the
    exact-match column of the --stratum the depth views read."""
    from ..results import plots, plots_memory, tables

    return {
        "depth": (lambda rows, out, title, pub, by, m: plots.plot_depth(
                      rows, out, title, pub, metrics=tuple(dict.fromkeys((m, "exact_match")))),
                  lambda rows, pub, by, m: tables.format_table(rows, m)),
        "iterations": (lambda rows, out, title, pub, by, m: plots.plot_iterations(rows, out, title, m),
                       lambda rows, pub, by, m: tables.format_iterations(rows, m)),
        "heatmap": (lambda rows, out, title, pub, by, m: plots.plot_heatmap(rows, out, title, by, m),
                    lambda rows, pub, by, m: tables.format_heatmap(rows, by, m)),
        "capacity": (lambda rows, out, title, pub, by, m: _capacity(rows, out, title, pub, draw=True),
                     lambda rows, pub, by, m: _capacity(rows, None, "", pub, draw=False)),
        "memory": (lambda rows, out, title, pub, by, m: plots_memory.plot_memory(rows, out, title, pub),
                   lambda rows, pub, by, m: tables.format_memory(rows, pub)),
    }


DEPTH_VIEWS = ("depth", "iterations", "heatmap")
VIEW_COLUMNS = {view: ("split", "slice", "k", "exact_match", "cell_accuracy") for view in DEPTH_VIEWS} | {
    "capacity": ("split", "slice", "value", "model"), "memory": ("split", "slice", "model", "d_model", "exact_match")}


def _capacity(rows: list[dict], out, title: str, published: dict | None, draw: bool):
    """Recall against stored pairs and state size; for memorisation tasks (rows that count bits_stored), bits
    stored against parameters beside the published bits per parameter (--paper)."""
    from ..results import plots_memory, tables

    if any(r.get("bits_stored") not in ("", None) for r in rows):
        points = tables.facts_points(rows, (published or {}).get("bits_per_parameter"))
        return plots_memory.plot_facts(points, out, title, (published or {}).get("bits_per_parameter")) if draw \
            else tables.format_facts(points)
    return plots_memory.plot_capacity(rows, out, title) if draw else tables.format_capacity(rows)


VIEWS = ("depth", "iterations", "heatmap", "capacity", "memory")


@friendly
def plot(
    view: str = typer.Argument(..., help="depth | iterations | heatmap | capacity | memory"),
    results: Path = typer.Argument(..., metavar="RESULTS.csv", help="table from `testbed collect`"),
    out: Path = typer.Option(Path("figure.png"), help="image to write (png, pdf, svg)"),
    title: str = typer.Option("", help="figure title"),
    paper: Optional[Path] = typer.Option(None, help="a spec whose [paper] table is drawn beside our curves"),
    by: str = typer.Option("n_layer", help="heatmap rows: n_layer | loops | iterations"),
    stratum: str = typer.Option("nontrivial", help="depth views: the examples exact match is read on: nontrivial "
                                "(target no given state), fresh (target no earlier state of its orbit: tasks with a "
                                "depth axis) or all"),
) -> None:
    """Draw a figure from a results table.

    depth: accuracy vs k (one line per model) and vs layers (one per k).
    iterations: exact match vs test-time iterations of weight-tied models (one line per k).
    heatmap: exact match over (layers, loops or iterations) x k.
    capacity: recall vs stored pairs and width, and the capacity curve (most pairs recalled at >= 90 % vs state size);
    for facts runs, bits stored vs parameters (with --paper experiments/facts_capacity.toml: 2 bits per parameter).
    memory: population error of linear memories vs d, one line per preset (with --paper: the published rows)."""
    from .. import spec as specs
    from ..results.io import read_csv

    if view not in VIEWS:
        raise ConfigError(f"unknown view {view!r}{did_you_mean(view, VIEWS)}; valid: {', '.join(VIEWS)}")
    from ..results.tables import require_stratum, stratum_metric

    metric = stratum_metric(stratum)
    if stratum != "nontrivial" and view not in DEPTH_VIEWS:
        raise ConfigError(f"--stratum applies to the depth views ({', '.join(DEPTH_VIEWS)}), not to {view}")
    if by != "n_layer" and view != "heatmap":
        raise ConfigError(f"--by picks the heatmap's rows; the {view} view has none to pick")
    check_image(out)
    rows = read_csv(results, need=VIEW_COLUMNS[view])
    if view in DEPTH_VIEWS:
        require_stratum(rows, metric)
    published = specs.load(paper).get("paper") if paper else None
    draw, text = _views()[view]
    draw(rows, out, title, published, by, metric)
    typer.echo(text(rows, published, by, metric))
    typer.echo(f"wrote {out}")


@friendly
@launcher_options(jobs=2)
def reproduce(
    figure: Optional[str] = typer.Argument(None, help="figure name (see --list)"),
    list_figures: bool = typer.Option(False, "--list", help="list the figures: paper, what they show, runs, time"),
    preset: str = typer.Option("cpu", help="cpu (2 CPU cores, minutes) | paper (the published recipe, GPU)"),
    out: Path = typer.Option(Path("reproductions"), help="directory for each figure's results, plot and comparison"),
    runs: Optional[Path] = typer.Option(None, help="runs directory (default OUT/runs; shared by every figure)"),
    seeds: Optional[str] = SeedsOption,
    sets: Optional[list[str]] = SetOption,
    launch=None,
) -> None:
    """Reproduce a published figure: run its sweep (finished runs are skipped), collect, draw ours beside the
    published numbers and write the comparison table (per point: ours, published, difference)."""
    from .. import figures
    from .. import spec as specs
    from ..sweep import parse_seeds

    if list_figures:
        for line in figures.listing(experiments_dir()):
            typer.echo(line)
        return
    if figure is None:
        raise ConfigError("name a figure (testbed reproduce --list shows them)")
    quiet_lightning()  # after --list, which trains nothing and need not load Lightning
    ctx = figures.Context(preset, runs or out / "runs", launch, experiments_dir(), typer.echo, parse_seeds(seeds),
                          specs.parse_sets(sets))
    for line in figures.reproduce(figure, ctx, out):
        typer.echo(line)


@friendly
@launcher_options(jobs=2)
def quickstart(
    out: Path = typer.Option(Path("quickstart"), help="directory for runs/, results.csv, figure.png, comparison.md"),
    sets: Optional[list[str]] = SetOption,
    seeds: Optional[str] = SeedsOption,
    launch=None,
) -> None:
    """The first reasoning-depth curve: small transformers of a few depths, three seeds, on held-out CA rules;
    exact match on the non-trivial stratum per k with 95 % intervals, the baselines beside (testbed reproduce
    quickstart, into OUT)."""
    from .. import figures
    from ..results.tables import format_table
    from ..sweep import parse_seeds

    quiet_lightning()
    from .. import spec as specs

    fig = figures.figure("quickstart")
    ctx = figures.Context("cpu", out / "runs", launch, experiments_dir(), typer.echo, parse_seeds(seeds),
                          specs.parse_sets(sets))
    points, failure = fig.reproduce(ctx, out)
    from ..results.io import read_csv

    typer.echo(format_table(read_csv(out / "results.csv")))
    typer.echo(f"wrote {out}/results.csv, results.seeds.csv, figure.png, comparison.md")
    if failure:
        raise ConfigError(f"{failure} (the figure is drawn from the runs that finished)")


@friendly
def docs(
    reproductions: Optional[Path] = typer.Argument(None, help="what `testbed reproduce` wrote (OUT); without it, "
                                                   "the pages are rendered again from their published data"),
    to: Optional[Path] = typer.Option(None, help="pages directory (default: docs/figures of this clone)"),
) -> None:
    """Results pages from reproductions: each reproduced figure's data (meta, comparison, paired differences,
    picture) published into docs/figures, then every page rendered from its data and its hand-written notes
    (PAGE.notes.md, whose numbers are placeholders filled from the data): FIGURE.md, and FIGURE+VARIANT.md for
    every directory of that name (another preset or --set of the figure), linked from the figure's page. The
    figure tables of README.md and experiments/README.md are regenerated from the pages. All or nothing: a damaged
    reproduction or a note that no longer finds its number changes no page."""
    from .. import figures
    from ..results import pages

    root = experiments_dir().parent
    target = to or root / "docs" / "figures"
    if reproductions is not None:
        done = figures.publish(reproductions, target)
        typer.echo(f"published {len(done)} figures: {', '.join(done) or 'none'}")
    elif not target.is_dir():
        raise ConfigError(f"pages directory {str(target)!r} does not exist")
    else:
        done = pages.render(target)
        typer.echo(f"rendered {len(done)} pages from their published data")
    for path, table in figures.tables_of(root).items():
        changed = pages.replace_table(path, table)
        typer.echo(f"{'updated' if changed else 'unchanged'} the figure table of {path}")
