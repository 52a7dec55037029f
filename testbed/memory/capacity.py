"""Retrieval capacity of the memory mechanisms themselves: store S random key-value pairs, query every key, count
the values read back right. No training: this is the ceiling a trained model of each family can reach at a given
state size, and the curve the trained MQAR models of `experiments/mqar_capacity.toml` are drawn against.

    attention   the key-value cache: softmax(K q / sqrt(d)) V; state 2 S d floats (grows with S)
    sum         fast weights, sum rule W = sum_i v_i k_i^T (unit keys); state d x d
    delta       fast weights, delta rule with beta = 1 (models.fast_weights.fast_weight_scan); state d x d
    armt        ARMT's associative matrix: DPFP-3 keys (as ARMT), delta rule with the gamma-corrected normaliser
                (models.armt.memory_write / memory_read), one pair per segment; state 6d x (d + 1)

Keys are Gaussian, values random unit vectors; a pair is recalled when its value is the nearest (largest dot
product) of the stored values to what the memory reads back. `rewrite` writes every key twice (an old value, then a
new one) and asks for the new one, as kv_segments' rewrite setting.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from generators.core import ConfigError

from ..models.armt import memory_read, memory_write
from ..models.fast_weights import fast_weight_scan, feature_map

FAMILIES = ("attention", "sum", "delta", "armt")


def state_floats(family: str, d: int, pairs: int) -> int:
    return {"attention": 2 * pairs * d, "sum": d * d, "delta": d * d, "armt": 6 * d * (d + 1)}[family]


@torch.no_grad()
def read_back(family: str, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """What the memory returns for every stored key. keys (B, S, d), values (B, S, d) -> (B, S, d)."""
    if family == "attention":
        scores = keys @ keys.transpose(1, 2) / keys.shape[-1] ** 0.5
        return scores.softmax(-1) @ values
    if family in ("sum", "delta"):
        k = F.normalize(keys, dim=-1)[:, None]  # one head
        beta = torch.ones(k.shape[:3]) if family == "delta" else None
        _, w = fast_weight_scan(k, values[:, None], k, beta)
        return torch.einsum("bvp,bsp->bsv", w[:, 0], k[:, 0])
    if family == "armt":
        phi = feature_map(keys, "dpfp", 3)
        b, s, d_phi = phi.shape
        A, z = torch.zeros(b, d_phi, values.shape[-1]), torch.zeros(b, d_phi)
        for i in range(s):  # one memory token per segment, written in order
            A, z = memory_write(phi[:, i : i + 1], values[:, i : i + 1], torch.ones(b, 1, 1), A, z)
        return memory_read(phi, A, z)
    raise ConfigError(f"unknown memory family {family!r}; valid: {', '.join(FAMILIES)}")


def recall(family: str, d: int, pairs: int, trials: int = 20, seed: int = 0, rewrite: bool = False):
    """(share of pairs recalled, share of trials with every pair recalled, each trial's share of pairs recalled).
    With `rewrite`, every key is written twice, first with an old value, later with a new one; the new one must come
    back (the latest value wins)."""
    if d < 1 or pairs < 1 or trials < 1:
        raise ConfigError(f"d, pairs and trials must be at least 1, got {d}, {pairs}, {trials}")
    gen = torch.Generator().manual_seed(seed * 1_000_003 + d * 1009 + pairs)
    keys = torch.randn(trials, pairs, d, generator=gen)
    values = F.normalize(torch.randn(trials, pairs * (2 if rewrite else 1), d, generator=gen), dim=-1)
    stored = torch.cat([keys, keys], dim=1) if rewrite else keys
    got = read_back(family, stored, values)[:, -pairs:]  # the reads of the (last) write of every key
    target = torch.arange(values.shape[1] - pairs, values.shape[1])
    right = (got @ values.transpose(1, 2)).argmax(-1) == target
    return right.float().mean().item(), right.all(-1).float().mean().item(), right.float().mean(-1).numpy()


def capacity_rows(families, ds, pairs, trials: int = 20, seed: int = 0, rewrite: bool = False,
                  per_trial: dict | None = None) -> list[dict]:
    """Rows in the format of `testbed collect` (slice n_pairs), so `testbed plot capacity` draws them; `per_trial`,
    when given, receives each (family, d)'s {pairs: every trial's share recalled}, what a capacity's interval
    resamples (results.intervals.threshold_interval)."""
    rows = []
    for family in families:
        if family not in FAMILIES:
            raise ConfigError(f"unknown memory family {family!r}; valid: {', '.join(FAMILIES)}")
        for d in ds:
            for s in pairs:
                share, every, each = recall(family, d, s, trials, seed, rewrite)
                if per_trial is not None:
                    per_trial.setdefault((family, d), {})[s] = each
                rows.append({
                    "run_id": f"{family}-d{d}-s{s}", "name": "rewrite" if rewrite else "remember", "model": family,
                    "params": 0, "state_size": state_floats(family, d, s), "d_model": d, "split": "test",
                    "slice": "n_pairs", "value": s, "k": "", "cell_accuracy": share, "exact_match": every,
                    "n": trials,
                })
    return rows
