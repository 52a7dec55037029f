"""Every published figure we cover, one command away (`testbed reproduce FIGURE`). Each figure owns how it is run,
compared with the paper and drawn (base.py); this registry lists them in the order of the README's table."""

from __future__ import annotations

from generators import ConfigError
from generators.registry import did_you_mean

from . import ca, finetune, memory
from .base import Context, Figure, compare_series, comparison_markdown, output_name, summary

FIGURES: dict[str, Figure] = {f.name: f for f in [*ca.FIGURES, *finetune.FIGURES, *memory.FIGURES]}

__all__ = ["FIGURES", "Context", "Figure", "compare_series", "comparison_markdown", "figure", "output_name", "summary"]


def figure(name: str) -> Figure:
    if name not in FIGURES:
        raise ConfigError(f"unknown figure {name!r}{did_you_mean(name, FIGURES)}; "
                          "`testbed reproduce --list` lists them")
    return FIGURES[name]


def estimate(fig: Figure, preset: str) -> str:
    value = fig.estimate.get(preset, "")
    return f"{value:g} min" if isinstance(value, (int, float)) else value
