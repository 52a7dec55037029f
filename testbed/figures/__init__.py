"""Every published figure we cover, one command away (`testbed reproduce FIGURE`), one module per figure: what it
is (its name, paper, spec and note), how its runs are compared with the paper and how it is drawn (base.py says how
a figure runs; series.py holds what the depth figures share). This registry lists them in the order of the README's
table, and publishes their pages."""

from __future__ import annotations

from generators.core import ConfigError
from generators.core.registry import did_you_mean

from . import (
    cabannes,
    depth_extrapolation,
    depth_staircase,
    facts_capacity,
    facts_forgetting,
    group_words,
    grpo_finetune,
    mqar_width,
    p1_comparison,
    p2_depth_sweep,
    p2_input_length,
    p2_lookahead,
    p2_rollout,
    quickstart,
    retrieval_capacity,
    test_time_compute,
)
from .base import Context, Figure, compare_series, comparison_markdown, output_name, summary

FIGURES: dict[str, Figure] = {f.name: f for f in [  # the README's order
    quickstart.FIGURE, p2_lookahead.FIGURE, p2_input_length.FIGURE, p2_rollout.FIGURE, p2_depth_sweep.FIGURE,
    p1_comparison.FIGURE, depth_staircase.FIGURE, depth_extrapolation.FIGURE, group_words.FIGURE,
    test_time_compute.FIGURE, grpo_finetune.FIGURE, *cabannes.FIGURES, mqar_width.FIGURE, retrieval_capacity.FIGURE,
    facts_capacity.FIGURE, facts_forgetting.FIGURE]}

__all__ = ["FIGURES", "Context", "Figure", "compare_series", "comparison_markdown", "figure", "figure_table", "listing",
           "output_name", "page_fields", "publish", "reproduce", "summary", "tables_of"]


def figure(name: str) -> Figure:
    if name not in FIGURES:
        raise ConfigError(f"unknown figure {name!r}{did_you_mean(name, FIGURES)}; "
                          "`testbed reproduce --list` lists them")
    return FIGURES[name]


def listing(experiments) -> list[str]:
    """`testbed reproduce --list`: every figure, its paper, its runs per preset, its time and what it shows."""
    lines = [f"{'figure':<22}{'paper':<28}{'runs cpu/paper':<16}{'cpu time':<10}  what it shows; paper-preset time"]
    for fig in FIGURES.values():
        counts = ("/".join(str(len(fig.runs(p, experiments))) if p in fig.presets else "-" for p in ("cpu", "paper"))
                  if fig.trains else "closed form")
        lines.append(f"{fig.name:<22}{fig.paper:<28}{counts:<16}{estimate(fig, 'cpu'):<10}  {fig.shows}; "
                     f"{estimate(fig, 'paper') or '-'}")
    return lines + ["cpu time: wall minutes with --jobs 2 on the reference machine's 2 cores (Intel, AVX-512); cores "
                    "without AVX-512 take longer (the quickstart: about 3x on an AMD EPYC with AVX2); paper: the "
                    "published recipe"]


def reproduce(name: str, ctx: Context, out) -> list[str]:
    """Run (or skip) everything figure `name` needs at ctx.preset, draw it and write its comparison under `out`:
    every run checked before a directory is made. Returns the lines to print; a failed run is an error raised after
    the figure was drawn from the others."""
    from pathlib import Path

    fig = figure(name)
    fig.check_preset(ctx.preset)
    if not fig.trains and (ctx.sets or ctx.seeds):
        raise ConfigError(f"figure {fig.name} is computed in closed form: it trains no runs for --set or --seeds to "
                          "change (testbed memory-law and testbed capacity take its sizes)")
    if fig.trains:
        fig.check(ctx)  # every run's config, before a directory is made
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the output directory {str(out)!r}: {e.strerror}") from None
    where = Path(out) / output_name(fig, ctx.preset)
    points, failure = fig.reproduce(ctx, where)
    lines = [comparison_markdown(fig, ctx.preset, points), summary(points),
             f"wrote {where}/results.csv, figure.png, comparison.csv, comparison.md"]
    if failure:
        for line in lines:
            ctx.echo(line)
        raise ConfigError(f"{failure} (the figure is drawn from the runs that finished)")
    return lines


def page_fields(fig: Figure) -> dict:
    """What a results page says of its figure (recorded in each reproduction's meta.json, so that pages render from
    their published data alone)."""
    return {"name": fig.name, "shows": fig.shows, "paper": fig.paper, "spec": fig.spec, "note": fig.note,
            "intervals_over": fig.intervals, "trains": fig.trains, "collected": fig.collected}


def publish(reproductions, to) -> list[str]:
    """`testbed docs REPRODUCTIONS`: every figure reproduced there (FIGURE/ and FIGURE+VARIANT/ directories with a
    meta.json) published into the pages directory `to` with its page table, all pages rendered again (results.pages:
    all or nothing). Returns the figures published."""
    from pathlib import Path

    from ..results.pages import publish as publish_pages
    from ..results.pages import read_meta

    reproductions = Path(reproductions)
    if not reproductions.is_dir():
        raise ConfigError(f"reproductions directory {str(reproductions)!r} does not exist")
    sources, done = [], []
    for name, fig in FIGURES.items():
        for src in [p for p in [reproductions / name, *sorted(reproductions.glob(f"{name}+*"))]
                    if (p / "meta.json").is_file()]:
            meta = read_meta(src / "meta.json")
            sources.append((src, {**meta, "page": {**page_fields(fig), **meta.get("page", {})}}))
        if (reproductions / name / "meta.json").is_file():
            done.append(name)
    publish_pages(sources, Path(to))
    return done


BEGIN, END = "<!-- figure-table:begin (generated by `testbed docs`) -->", "<!-- figure-table:end -->"


def figure_table(pages, link_prefix: str) -> str:
    """The figure table of the READMEs: every registered figure, its paper, what it shows, the cpu preset's runs and
    its wall time as measured by the published reproduction (or the registry's estimate, marked so)."""
    import json
    from pathlib import Path

    from ..results.pages import cores

    lines = [BEGIN, "| figure | paper | what it shows | cpu preset | results |", "|---|---|---|---|---|"]
    for name, fig in FIGURES.items():
        meta_file = Path(pages) / f"{name}.json"
        if meta_file.is_file():
            meta = json.loads(meta_file.read_text())
            when = f"{meta['wall_minutes']:g} min measured ({cores(meta)})"
            if meta.get("runs") and meta.get("runs_reused") == meta["runs"]:
                when = f"~{estimate(fig, 'cpu')} (estimate; the published reproduction reused finished runs)"
            elif meta.get("runs_reused"):
                when += f", {meta['runs_reused']} of {meta['runs']} runs reused"
            link = f"[{name}]({link_prefix}{name}.md)"
        else:
            when, link = f"~{estimate(fig, 'cpu')} (estimate, not yet reproduced here)", "-"
        lines.append(f"| `{name}` | {fig.paper} | {fig.shows} | {when} | {link} |")
    return "\n".join(lines + [END])


def tables_of(root) -> dict:
    """{README file: the figure table it must hold}, links relative to each file."""
    from pathlib import Path

    root = Path(root)
    pages = root / "docs" / "figures"
    return {root / "README.md": figure_table(pages, "docs/figures/"),
            root / "experiments" / "README.md": figure_table(pages, "../docs/figures/")}


def estimate(fig: Figure, preset: str) -> str:
    value = fig.estimate.get(preset, "")
    return f"{value:g} min" if isinstance(value, (int, float)) else value
