"""Every published figure we cover, one command away (`testbed reproduce FIGURE`). Each figure owns how it is run,
compared with the paper and drawn (base.py); this registry lists them in the order of the README's table."""

from __future__ import annotations

from generators import ConfigError
from generators.registry import did_you_mean

from . import ca, finetune, memory
from .base import Context, Figure, compare_series, comparison_markdown, output_name, summary

FIGURES: dict[str, Figure] = {f.name: f for f in [*ca.FIGURES, *finetune.FIGURES, *memory.FIGURES]}

__all__ = ["FIGURES", "Context", "Figure", "compare_series", "comparison_markdown", "figure", "listing", "output_name",
           "reproduce", "summary"]


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


def estimate(fig: Figure, preset: str) -> str:
    value = fig.estimate.get(preset, "")
    return f"{value:g} min" if isinstance(value, (int, float)) else value
