"""A Lightning DataModule over any registered generator, generated on the fly and deterministic per index.

Training batch s of rank r holds examples [(s * world + r) * B, ...+B) of the train split: fresh data every step,
the same whatever the worker count, and a resumed run continues exactly where it stopped. With train.train_size = N
the training set is instead N fixed examples, generated once and cached, visited in a seeded order per pass. Under a
curriculum (train.curriculum) the loader hands over example counters only, and the batch is made when its step
starts, at the curriculum's stage then (a prefetched batch would carry the stage before).
Validation and test sets are fixed examples of the held-out splits, generated once with the evaluation seed.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from generators.core.rng import hash64


def to_tensors(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}


class GeneratedSplit(Dataset):
    """Map-style view of one split; `__getitems__` builds a whole batch in one vectorised call."""

    def __init__(self, generator, split: str, seed: int, size: int):
        self.generator, self.split, self.seed, self.size = generator, split, seed, size

    def __len__(self):
        return self.size

    def __getitems__(self, indices):
        return self.generator.sample(self.split, self.seed, np.asarray(indices))

    def __getitem__(self, index):
        return {k: v[0] for k, v in self.__getitems__([index]).items()}


class Counters(Dataset):
    """The training counters alone (a curriculum's batches are made at their step: on_before_batch_transfer)."""

    def __len__(self):
        return 2**62

    def __getitems__(self, indices):
        return {"counters": np.asarray(indices, np.int64)}


class CachedSplit(Dataset):
    """A fixed training set of `size` examples, generated once and kept in memory (data-limited studies).

    Training counters map to examples through a fresh seeded permutation per pass, so batches stay a pure function
    of (seed, step) and a resumed run sees the same sequence."""

    def __init__(self, generator, split: str, seed: int, size: int):
        self.arrays = generator.sample(split, seed, np.arange(size))
        self.seed, self.size, self._orders = seed, size, {}

    def __len__(self):
        return self.size

    def _order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            self._orders = {epoch: np.argsort(hash64(self.seed, 0xCAC4E, epoch, np.arange(self.size)), kind="stable")}
        return self._orders[epoch]

    def __getitems__(self, counters):
        counters = np.asarray(counters)
        idx = np.empty(len(counters), np.int64)
        for epoch in np.unique(counters // self.size):  # at most two passes meet in one batch
            sel = counters // self.size == epoch
            idx[sel] = self._order(int(epoch))[counters[sel] % self.size]
        return {k: v[idx] for k, v in self.arrays.items()}


class StepBatches(Sampler):
    """Index batches for training steps start..max_steps; `start` is read when iteration begins (after a resume)."""

    def __init__(self, batch_size: int, max_steps: int, start, rank: int = 0, world: int = 1):
        self.batch_size, self.max_steps, self.start, self.rank, self.world = batch_size, max_steps, start, rank, world

    def __len__(self):
        return self.max_steps

    def __iter__(self):
        b = self.batch_size
        for step in range(self.start(), self.max_steps):
            first = (step * self.world + self.rank) * b
            yield list(range(first, first + b))


def batches(arrays: dict[str, np.ndarray], batch_size: int) -> list[dict[str, torch.Tensor]]:
    """Consecutive tensor batches of a dict of equally long arrays."""
    n = len(next(iter(arrays.values())))
    return [to_tensors({k: v[i : i + batch_size] for k, v in arrays.items()}) for i in range(0, n, batch_size)]


def held_out(generator, split: str, seed: int, size: int, k: int | None = None) -> dict[str, np.ndarray]:
    """A held-out set: `size` examples of the split, at look-ahead k when given (a task with a depth axis)."""
    indices = np.arange(size)
    return generator.sample(split, seed, indices) if k is None else generator.sample_at_depth(split, seed, indices, k)


def fixed_batches(generator, split: str, seed: int, size: int, batch_size: int, k: int | None = None):
    """A held-out set as a list of tensor batches (generated once, reused at every evaluation)."""
    return batches(held_out(generator, split, seed, size, k), batch_size)


class TaskData(L.LightningDataModule):
    """`tracks`: generators of the further validation sets (eval.track), validated after the run's own."""

    def __init__(self, generator, seed: int, train, eval_cfg, tracks: tuple = ()):
        super().__init__()
        self.generator, self.seed, self.train_cfg, self.eval_cfg = generator, seed, train, eval_cfg
        self.tracks = tracks
        self._val = None
        self.k_max: int | None = None  # the curriculum's stage (set by budgets.Curriculum)

    def _global_step(self) -> int:
        trainer = getattr(self, "trainer", None)
        return trainer.global_step if trainer is not None else 0

    def train_dataloader(self):
        t = self.train_cfg
        trainer = getattr(self, "trainer", None)
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        if t.curriculum:
            dataset = Counters()
        elif t.train_size:
            dataset = CachedSplit(self.generator, "train", self.seed, t.train_size)
        else:
            dataset = GeneratedSplit(self.generator, "train", self.seed, 2**62)
        sampler = StepBatches(t.batch_size, t.max_steps, self._global_step, rank, world)
        # a generator of its own: a DataLoader draws its workers' base seed from the global torch generator each time
        # an iterator starts, which would shift a resumed run's random stream (our examples need no seed from it)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=to_tensors, num_workers=t.num_workers,
                          generator=torch.Generator().manual_seed(0),
                          persistent_workers=t.num_workers > 0)

    def on_before_batch_transfer(self, batch, dataloader_idx):
        if isinstance(batch, dict) and "counters" in batch:  # a curriculum's step: its examples at the stage now
            arrays = self.generator.sample("train", self.seed, batch["counters"].numpy(), k_max=self.k_max)
            return to_tensors(arrays)
        return batch

    def val_dataloader(self):
        if self._val is None:
            e = self.eval_cfg
            self._val = [fixed_batches(g, "val", e.seed, self.train_cfg.val_size, e.batch_size)
                         for g in (self.generator, *self.tracks)]
        loaders = [DataLoader(v, batch_size=None, generator=torch.Generator().manual_seed(0)) for v in self._val]
        return loaders[0] if len(loaders) == 1 else loaders  # already batched
