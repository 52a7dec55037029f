"""The one LightningModule: loss on target positions only, sliced metrics, the optimizer with warm-up and decay.

Models stay plain nn.Modules mapping (B, L) token ids to (B, L, vocab) logits.
"""

from __future__ import annotations

import math
import time

import lightning as L
import torch

from generators.core import ConfigError

from . import grpo, metrics


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


def lr_factor(step: int, warmup: int, total: int, schedule: str, min_ratio: float, cooldown: int = 0,
              cooling_from: int | None = None) -> float:
    """Linear warm-up, then constant, linear or cosine decay to min_ratio at the last step. With a cool-down
    (warm-up, stable, decay), the constant rate decays linearly to min_ratio over `cooldown` steps from
    `cooling_from` (where a plateau budget saw the curve stop rising) or from total - cooldown, whichever is first."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        if not cooldown:
            return 1.0
        start = min(total - cooldown, total if cooling_from is None else cooling_from)
        return 1.0 - (1.0 - min_ratio) * min(1.0, max(0, step - start) / cooldown)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    decay = 1 - progress if schedule == "linear" else 0.5 * (1 + math.cos(math.pi * progress))
    return min_ratio + (1 - min_ratio) * decay


def hidden_matrices(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The weights Muon orthogonalises: those of the model's hidden linear maps (both sides wider than one). The
    embeddings, the output head, norms, biases and free parameters (memory tokens, slot tables) are not hidden
    matrices in Muon's sense and stay with AdamW."""
    head = getattr(model, "head", None)
    return [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not head
            and min(m.weight.shape) > 1 and m.weight.requires_grad]


def decay_groups(params: list, weight_decay: float) -> list[dict]:
    """Parameter groups with weight decay on matrices only (not on norms and biases)."""
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]


class MuonAdamW(torch.optim.Optimizer):
    """Muon (momentum, then a Newton-Schulz orthogonalisation of the update; torch.optim.Muon) on the hidden
    matrices and AdamW on the rest, as one optimizer, so that one schedule and one checkpoint entry serve both.
    Muon's step is scaled to AdamW's update size (adjust_lr_fn = match_rms_adamw): the same learning rate and
    weight decay apply to both parts."""

    def __init__(self, model: torch.nn.Module, lr: float, betas: tuple, weight_decay: float):
        matrices = hidden_matrices(model)
        ids = {id(p) for p in matrices}
        rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
        if not matrices:
            raise ConfigError(f"train.optimizer = muon needs hidden matrices (nn.Linear layers other than the head); "
                              f"{type(model).__name__} has none here: use adamw")
        self.parts = [
            torch.optim.Muon(matrices, lr=lr, weight_decay=weight_decay, adjust_lr_fn="match_rms_adamw"),
            torch.optim.AdamW(decay_groups(rest, weight_decay), lr=lr, betas=betas),
        ]
        super().__init__([p for part in self.parts for g in part.param_groups for p in g["params"]], {"lr": lr})
        self.param_groups = [g for part in self.parts for g in part.param_groups]  # the parts' own: a schedule
        # that sets a group's lr sets it for the part that steps it

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for part in self.parts:
            part.step()
        return loss

    def state_dict(self):
        return {"parts": [part.state_dict() for part in self.parts]}

    def load_state_dict(self, state_dict):
        for part, state in zip(self.parts, state_dict["parts"], strict=True):
            part.load_state_dict(state)


def make_optimizer(model: torch.nn.Module, name: str, lr: float, weight_decay: float, betas=(0.9, 0.98)):
    """adamw (weight decay on matrices only), muon (MuonAdamW) or sgd, over the parameters that train."""
    if name == "muon":
        return MuonAdamW(model, lr, tuple(float(b) for b in betas), weight_decay)
    groups = decay_groups([p for p in model.parameters() if p.requires_grad], weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr)
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(float(b) for b in betas))


class TaskSystem(L.LightningModule):
    """`tracks`: the names of the further validation sets (eval.track), in the data module's order after the run's
    own; `background`: batches whose memory-slot use train.update = sparse discounts."""

    def __init__(self, model: torch.nn.Module, train_cfg, reference: torch.nn.Module | None = None,
                 tracks: tuple = (), background: list | None = None):
        super().__init__()
        self.model, self.cfg = model, train_cfg
        self.reference = reference  # GRPO: the frozen starting policy of the KL penalty
        self.tracks = ("", *tracks)
        self._val: dict[int, list] = {}
        self.train_tokens = 0
        self.train_seconds = 0.0
        self.slot_mask: torch.Tensor | None = None  # sparse: the slot rows this step may change
        self.frozen: list = []  # leaf modules none of whose parameters train (update = memory | sparse)
        if train_cfg.update != "all":
            if train_cfg.update == "memory":
                trained = model.memory_parameters()
            else:
                with torch.no_grad():
                    self._slot_table = [model.eval().memory_slots(background[0]["inputs"])[0]]  # a list: the
                model.train()  # module must not register the table as a parameter of its own
                trained = self._slot_table
            ids = {id(p) for p in trained}
            for p in model.parameters():
                p.requires_grad_(id(p) in ids)
            # modules left whole are frozen whole: a normalisation's running statistics must not follow the new data
            self.frozen = [m for m in model.modules() if not any(True for _ in m.children())
                           and any(True for _ in m.parameters()) and not any(p.requires_grad for p in m.parameters())]
        if train_cfg.update == "sparse":
            self.idf = self._slot_idf(background)

    @torch.no_grad()
    def _slot_idf(self, background: list) -> torch.Tensor:
        """log((1 + batches) / (1 + batches reading the slot)) over the background batches (Lin et al.'s IDF):
        slots that the facts to keep use everywhere rank low."""
        self.model.eval()
        df = torch.zeros(len(self._slot_table[0]))
        for batch in background:
            df[self.model.memory_slots(batch["inputs"])[1].unique()] += 1
        self.model.train()
        return torch.log((1 + len(background)) / (1 + df))

    @torch.no_grad()
    def _select_slots(self, inputs: torch.Tensor) -> None:
        """The sparse_slots rows with the highest TF-IDF in this batch (only rows it reads)."""
        table, slots = self.model.memory_slots(inputs)
        tf = torch.bincount(slots.flatten(), minlength=len(table)).float()
        score = torch.where(tf > 0, tf / tf.sum() * self.idf, -1.0)
        top = score.topk(min(self.cfg.sparse_slots, int((tf > 0).sum()))).indices
        self.slot_mask = torch.zeros(len(table), dtype=torch.bool, device=table.device)
        self.slot_mask[top] = True

    def on_train_batch_start(self, batch, batch_idx):
        for m in self.frozen:  # Lightning sets train mode again after every validation
            m.eval()

    def on_before_optimizer_step(self, optimizer):
        if self.slot_mask is not None:
            self._slot_table[0].grad[~self.slot_mask] = 0

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
        if self.cfg.update != "sparse":
            return super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        table = self._slot_table[0]
        before = table.detach().clone()
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        with torch.no_grad():  # masked gradients alone would not do: Adam's moments move rows chosen earlier
            table[~self.slot_mask] = before[~self.slot_mask]

    def forward(self, inputs):
        return self.model(inputs)

    def training_step(self, batch, batch_idx):
        t0 = time.perf_counter()
        self.model.global_step = self.global_step
        if self.cfg.update == "sparse":
            self._select_slots(batch["inputs"])
        if self.cfg.algorithm == "grpo":
            loss, extras = grpo.loss(self.model, self.reference, batch, self.cfg)
        else:
            loss, extras = self.model.training_loss(batch)
        if not torch.isfinite(loss):
            raise Diverged(f"training loss became {loss.item()} at step {self.global_step}")
        every = self.trainer.log_every_n_steps
        if every and (self.global_step + 1) % every == 0:  # the steps Lightning writes: a log call costs ~1 ms,
            self.log("train/loss", loss, prog_bar=True)  # the step of a small model a few
            for name, value in extras.items():
                self.log(f"train/{name}", value)
            self.log("lr", self.optimizers().param_groups[0]["lr"])
        self.train_tokens += batch["inputs"].numel()
        self._t0 = t0
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if hasattr(self, "_t0"):  # forward, backward and optimiser step of this batch
            self.train_seconds += time.perf_counter() - self._t0

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        pred = self.model(batch["inputs"]).argmax(-1)
        arrays = {k: v.cpu().numpy() for k, v in batch.items()}
        steps = None if self.model.steps_used is None else self.model.steps_used.float().cpu().numpy()
        self._val.setdefault(dataloader_idx, []).append(metrics.outcomes(pred.cpu().numpy(), arrays, steps=steps))

    def on_validation_epoch_end(self):
        for idx, outcomes in sorted(self._val.items()):
            name = "val" if idx == 0 else f"val[{self.tracks[idx]}]"  # a tracked set: its all-examples rates
            for row in metrics.rates(metrics.concat(outcomes), "val"):
                if idx and row["slice"] != "all":
                    continue
                suffix = "" if row["slice"] == "all" else f"@{row['slice']}={row['value']}"
                self.log(f"{name}/exact_match{suffix}", row["exact_match"], prog_bar=not suffix and not idx)
                self.log(f"{name}/cell_accuracy{suffix}", row["cell_accuracy"])
        self._val = {}

    def on_save_checkpoint(self, checkpoint):
        checkpoint["rng"] = {"torch": torch.get_rng_state()}  # resumed runs draw what an uninterrupted one would

    def on_load_checkpoint(self, checkpoint):
        if "rng" in checkpoint:
            torch.set_rng_state(checkpoint["rng"]["torch"])

    def cooling_from(self) -> int | None:
        """Where the plateau budget started the cool-down (budgets.Plateau.cooling_from), None before: read at every
        step, and restored with the callback's state on resume, so a resumed run decays where it would have."""
        trainer = self._trainer
        return next((cb.cooling_from for cb in (trainer.callbacks if trainer else ()) if hasattr(cb, "cooling_from")),
                    None)

    def configure_optimizers(self):
        c = self.cfg
        opt = make_optimizer(self.model, c.optimizer, c.lr, c.weight_decay, c.betas)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: lr_factor(s, c.warmup_steps, c.max_steps, c.schedule, c.min_lr_ratio, c.cooldown_steps,
                                     self.cooling_from() if c.cooldown_steps else None)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
