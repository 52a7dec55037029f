"""Per-cell accuracy and exact match, sliced by a per-position group (for CA: how many steps ahead, k).

Counts are accumulated as sums so they add up across batches and processes; rates are taken at the end.
"""

from __future__ import annotations

import torch

SLICE_KEYS = ("step", "k")  # preferred slicing metadata, per position then per example


def slice_groups(batch: dict[str, torch.Tensor]) -> tuple[str, torch.Tensor]:
    """(slice name, (B, L) group id per scored position, -1 elsewhere)."""
    mask = batch["loss_mask"]
    if "step" in batch and batch["step"].shape == mask.shape:
        return "k", torch.where(mask, batch["step"].long(), -1)
    for key, value in batch.items():
        if key not in ("inputs", "targets", "loss_mask") and value.dim() == 1:
            return key, torch.where(mask, value.long()[:, None], -1)
    return "all", torch.where(mask, 0, -1)


def count(pred: torch.Tensor, targets: torch.Tensor, groups: torch.Tensor) -> dict[int, torch.Tensor]:
    """{group: [correct cells, scored cells, exact examples, examples]} plus group -1 for all scored positions."""
    scored = groups >= 0
    right = pred == targets
    out = {-1: _counts(right, scored)}
    for g in torch.unique(groups[scored]).tolist():
        out[int(g)] = _counts(right, groups == g)
    return out


def _counts(right: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    has = mask.any(dim=1)
    exact = ((right | ~mask).all(dim=1) & has).sum()
    return torch.stack([(right & mask).sum(), mask.sum(), exact, has.sum()]).double()


def merge(total: dict[int, torch.Tensor], new: dict[int, torch.Tensor]) -> None:
    for g, c in new.items():
        total[g] = total[g] + c if g in total else c.clone()


def rates(total: dict[int, torch.Tensor], slice_name: str, split: str) -> list[dict]:
    """Rows {split, slice, value, cell_accuracy, exact_match, n}; slice 'all' for the overall row."""
    rows = []
    for g in sorted(total):
        c = total[g].tolist()
        rows.append({
            "split": split,
            "slice": "all" if g < 0 else slice_name,
            "value": None if g < 0 else g,
            "cell_accuracy": c[0] / max(c[1], 1),
            "exact_match": c[2] / max(c[3], 1),
            "n": int(c[3]),
        })
    return rows
