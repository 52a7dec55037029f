"""The one LightningModule: loss on target positions only, sliced metrics, AdamW with warm-up and decay.

Models stay plain nn.Modules mapping (B, L) token ids to (B, L, vocab) logits.
"""

from __future__ import annotations

import math
import time

import lightning as L
import torch

from . import grpo, metrics


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


def lr_factor(step: int, warmup: int, total: int, schedule: str, min_ratio: float) -> float:
    """Linear warm-up, then constant, linear or cosine decay to min_ratio at the last step."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    decay = 1 - progress if schedule == "linear" else 0.5 * (1 + math.cos(math.pi * progress))
    return min_ratio + (1 - min_ratio) * decay


class TaskSystem(L.LightningModule):
    def __init__(self, model: torch.nn.Module, train_cfg, reference: torch.nn.Module | None = None):
        super().__init__()
        self.model, self.cfg = model, train_cfg
        self.reference = reference  # GRPO: the frozen starting policy of the KL penalty
        self._val: list[dict] = []
        self.train_tokens = 0
        self.train_seconds = 0.0

    def forward(self, inputs):
        return self.model(inputs)

    def training_step(self, batch, batch_idx):
        t0 = time.perf_counter()
        self.model.global_step = self.global_step
        if self.cfg.algorithm == "grpo":
            loss, extras = grpo.loss(self.model, self.reference, batch, self.cfg)
        else:
            loss, extras = self.model.training_loss(batch)
        if not torch.isfinite(loss):
            raise Diverged(f"training loss became {loss.item()} at step {self.global_step}")
        self.log("train/loss", loss, prog_bar=True)
        for name, value in extras.items():
            self.log(f"train/{name}", value)
        self.log("lr", self.optimizers().param_groups[0]["lr"])
        self.train_tokens += batch["inputs"].numel()
        self._t0 = t0
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if hasattr(self, "_t0"):  # forward, backward and optimiser step of this batch
            self.train_seconds += time.perf_counter() - self._t0

    def validation_step(self, batch, batch_idx):
        pred = self.model(batch["inputs"]).argmax(-1)
        arrays = {k: v.cpu().numpy() for k, v in batch.items()}
        steps = None if self.model.steps_used is None else self.model.steps_used.float().cpu().numpy()
        self._val.append(metrics.outcomes(pred.cpu().numpy(), arrays, steps=steps))

    def on_validation_epoch_end(self):
        for row in metrics.rates(metrics.concat(self._val), "val"):
            suffix = "" if row["slice"] == "all" else f"@{row['slice']}={row['value']}"
            self.log(f"val/exact_match{suffix}", row["exact_match"], prog_bar=not suffix)
            self.log(f"val/cell_accuracy{suffix}", row["cell_accuracy"])
        self._val = []

    def on_save_checkpoint(self, checkpoint):
        checkpoint["rng"] = {"torch": torch.get_rng_state()}  # resumed runs draw what an uninterrupted one would

    def on_load_checkpoint(self, checkpoint):
        if "rng" in checkpoint:
            torch.set_rng_state(checkpoint["rng"]["torch"])

    def configure_optimizers(self):
        c = self.cfg
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": c.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        if c.optimizer == "sgd":
            opt = torch.optim.SGD(groups, lr=c.lr)
        else:
            opt = torch.optim.AdamW(groups, lr=c.lr, betas=tuple(float(b) for b in c.betas))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: lr_factor(s, c.warmup_steps, c.max_steps, c.schedule, c.min_lr_ratio)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
