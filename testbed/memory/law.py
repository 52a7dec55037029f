"""The Cabannes et al. figures from the closed-form memories: error against d for the three storage schemes (with the
theory slopes), and the thresholded scheme over a (d, T) grid. Rows go to a CSV; plots draw the published values."""

from __future__ import annotations

import numpy as np

from ..results.intervals import t_interval
from .associative import error_vs_d, memory_weights, zipf

SCHEMES = {"fill": "q = 1 on seen tokens", "frequency": "q = p", "threshold": "q = 1[x <= d/8]"}
THEORY = {"frequency": (0.35, -0.25), "threshold": (3.5, -1.0)}  # c d^slope reference lines of the paper


def summary(errors: np.ndarray) -> dict:
    """The error over independent trials (random embeddings, sample sets): mean with its 95 % t interval, std."""
    error, lo, hi = t_interval(errors)
    return {"error": error, "error_lo": lo, "error_hi": hi, "std": float(errors.std()), "trials": len(errors)}


def error_vs_d_rows(ds, n=1000, n_out=5, alpha=2.0, trials=100, seed=0) -> list[dict]:
    """One row per (scheme, d): the error over trials (infinite data), summarised."""
    qs = [np.ones(n), zipf(n, alpha), lambda d: memory_weights("threshold", n, alpha, d, per=8)]
    errors = error_vs_d(qs, ds, n_out, alpha, trials, seed)  # (trials, schemes, ds)
    return [{"scheme": s, "d": d, "T": "", **summary(errors[:, i, j])}
            for i, s in enumerate(SCHEMES) for j, d in enumerate(sorted(ds))]


def joint_rows(ds, samples, n=1000, n_out=5, alpha=2.0, trials=20, seed=0) -> list[dict]:
    """The thresholded scheme (P = floor(d / 12), at least one token) from T samples: one row per (T, d)."""
    rows = []
    for t in samples:
        runs = [error_vs_d(lambda d, s=s, t=t: memory_weights("threshold", n, alpha, d, samples=t, per=12, seed=s),
                           ds, n_out, alpha, 1, seed * 10_007 + s)[0] for s in range(trials)]
        errors = np.array(runs)
        rows += [{"scheme": "threshold", "d": d, "T": t, **summary(errors[:, j])} for j, d in enumerate(sorted(ds))]
    return rows


def fitted_slope(rows: list[dict], scheme: str) -> float:
    pts = [(r["d"], r["error"]) for r in rows if r["scheme"] == scheme and r["error"] > 0]
    return float(np.polyfit(np.log([d for d, _ in pts]), np.log([e for _, e in pts]), 1)[0])
