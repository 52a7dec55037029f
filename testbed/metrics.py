"""Per-cell accuracy and exact match, sliced by a per-position group (for CA: how many steps ahead, k).

Counts are accumulated as sums so they add up across batches and processes; rates are taken at the end.
"""

from __future__ import annotations

import torch

from generators import ConfigError

SLICE_KEYS = ("step", "k")  # preferred slicing metadata, per position then per example


def slice_groups(batch: dict[str, torch.Tensor], by: str | None = None) -> tuple[str, torch.Tensor]:
    """(slice name, (B, L) group id per scored position, -1 elsewhere); `by` names a per-example key to slice by
    instead (e.g. rule_id)."""
    mask = batch["loss_mask"]
    if by is not None:
        if by not in batch or batch[by].dim() != 1:
            valid = [k for k, v in batch.items() if v.dim() == 1]
            raise ConfigError(f"cannot slice by {by!r}: this task's per-example keys are {', '.join(valid) or 'none'}")
        return by, torch.where(mask, batch[by].long()[:, None], -1)
    if "step" in batch and batch["step"].shape == mask.shape:
        return "k", torch.where(mask, batch["step"].long(), -1)
    for key, value in batch.items():
        if key not in ("inputs", "targets", "loss_mask") and value.dim() == 1:
            return key, torch.where(mask, value.long()[:, None], -1)
    return "all", torch.where(mask, 0, -1)


def count(pred: torch.Tensor, targets: torch.Tensor, groups: torch.Tensor,
          steps: torch.Tensor | None = None) -> dict[int, torch.Tensor]:
    """{group: [correct cells, scored cells, exact examples, examples, compute steps, cells with steps]} plus
    group -1 for all scored positions. `steps` (B, L): compute steps per position of an adaptive model."""
    scored = groups >= 0
    right = pred == targets
    out = {-1: _counts(right, scored, steps)}
    for g in torch.unique(groups[scored]).tolist():
        out[int(g)] = _counts(right, groups == g, steps)
    return out


def _counts(right: torch.Tensor, mask: torch.Tensor, steps: torch.Tensor | None) -> torch.Tensor:
    has = mask.any(dim=1)
    exact = ((right | ~mask).all(dim=1) & has).sum()
    cells = mask.sum()
    step_sum = steps.to(right.device)[mask].double().sum() if steps is not None else torch.zeros((), dtype=torch.double)
    with_steps = cells if steps is not None else torch.zeros_like(cells)
    return torch.stack([(right & mask).sum().double(), cells.double(), exact.double(), has.sum().double(),
                        step_sum.to(right.device), with_steps.double()])


def merge(total: dict[int, torch.Tensor], new: dict[int, torch.Tensor]) -> None:
    for g, c in new.items():
        total[g] = total[g] + c if g in total else c.clone()


def rates(total: dict[int, torch.Tensor], slice_name: str, split: str) -> list[dict]:
    """Rows {split, slice, value, cell_accuracy, exact_match, n}; slice 'all' for the overall row."""
    rows = []
    for g in sorted(total):
        c = total[g].tolist()
        row = {
            "split": split,
            "slice": "all" if g < 0 else slice_name,
            "value": None if g < 0 else g,
            "cell_accuracy": c[0] / max(c[1], 1),
            "exact_match": c[2] / max(c[3], 1),
            "n": int(c[3]),
        }
        if c[5] > 0:  # an adaptive model: mean compute steps per scored cell
            row["mean_steps"] = c[4] / c[5]
        rows.append(row)
    return rows
