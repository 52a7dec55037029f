"""Results tables as CSV files: written atomically, read back checked cell by cell (a damaged or hand-edited
table is a one-line error, not a traceback three modules later), and the names of a table's companions."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from generators.core import ConfigError
from generators.core.io import atomic_write

from . import aggregate

NUMERIC = {"params", "state_size", "n_layer", "layers", "steps", "loops", "d_model", "iterations", "value", "k",
           *aggregate.METRIC_COLUMNS,
           *(set(aggregate.COUNT_COLUMNS) - {"seeds"}), "fit_seconds",
           "cell_accuracy", "exact_match", "d", "T", "error", "error_lo", "error_hi", "std", "val_exact_match",
           "val_cell_accuracy", "val_late_rise"}


WHOLE = {"k", "n_layer", "layers", "steps", "iterations", "d_model", "value", "n", "n_nontrivial", "n_fresh",
         "n_classes", "n_classes_nontrivial", "n_classes_fresh", "n_rules", "n_seeds", "d", "T"}  # counts and sizes


def write_csv(path: str | Path, columns: list[str], rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(Path(path), lambda f: f.write(buf.getvalue().encode()))


def seeds_path(path: str | Path) -> Path:
    """results.csv -> results.seeds.csv"""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".csv") + ".seeds.csv")


def paired_path(path: str | Path) -> Path:
    """results.csv -> results.paired.csv"""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".csv") + ".paired.csv")


def read_csv(path: str | Path, need=("k", "exact_match", "cell_accuracy")) -> list[dict]:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"results file {str(path)!r} is a directory; give the CSV `testbed collect` wrote")
    if not path.is_file():
        raise ConfigError(f"results file {str(path)!r} does not exist; make one with `testbed collect`")
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise ConfigError(f"{str(path)!r} is not a CSV results table ({e})") from None
    if not rows:
        raise ConfigError(f"{str(path)!r} is not a results table from `testbed collect` (no rows)")
    missing = [c for c in need if c not in rows[0]]
    if missing:
        raise ConfigError(f"{str(path)!r} has no {missing[0]!r} column: not a results table from `testbed collect` "
                          "(or one this view cannot read)")
    numeric = [c for c in rows[0] if c in NUMERIC or c.endswith(("_lo", "_hi"))]
    for i, row in enumerate(rows, 2):  # line numbers of the file (the header is line 1)
        if None in row or None in row.values():
            raise ConfigError(f"{str(path)!r} line {i}: the row has {'more' if None in row else 'fewer'} cells than "
                              "the header (a truncated or edited file?)")
        for c in numeric:
            if row[c] == "":
                continue
            try:
                x = float(row[c])
            except ValueError:
                raise ConfigError(f"{str(path)!r} line {i}: column {c} holds {row[c]!r}, not a number") from None
            if c in WHOLE and not (math.isfinite(x) and x.is_integer()):
                raise ConfigError(f"{str(path)!r} line {i}: column {c} holds {row[c]!r}, not a whole number")
    return rows
