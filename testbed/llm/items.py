"""The tasks as items for language-model tooling, in reasoning-gym's conventions: an item is {"question", "answer",
"metadata"}, item i a pure function of (task config, split, seed, i) — the very example the small models are scored
on at that (split, seed, index) — and `score_answer(answer, item)` in [0, 1]. Also the answer extractor
(<answer>…</answer>), a TRL-style reward function, and registration into reasoning-gym's registry when that package
is installed.

Scoring: 1.0 for an exact answer; otherwise the fraction of cells right (cell accuracy) when the answer has as many
cells as the reference, else 0.0. Partial credit is what a dense reward wants; exact match (`partial=False`) is what
the results tables report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

import generators
from generators.core import ConfigError

from .render import cells, renderable, rendering

ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
SYSTEM_PROMPT = ("Solve the task. Think as you need, then give the final answer inside <answer></answer> tags, "
                 "exactly in the format asked.")


def extract_answer(completion: str | None) -> str | None:
    """The last <answer>…</answer> of a completion, stripped; None where there is none."""
    if not completion:
        return None
    found = ANSWER_TAG.findall(completion)
    return found[-1].strip() if found else None


def score_answer(answer: str | None, entry: dict, partial: bool = True) -> float:
    """Score of an extracted answer against an item: 1.0 exact, else the cell accuracy (partial) or 0.0."""
    fmt = entry["metadata"]["answer_format"]
    got, want = cells(answer, fmt), cells(entry["answer"], fmt)
    if got is None or len(got) != len(want):
        return 0.0
    right = sum(a == b for a, b in zip(got, want))
    if right == len(want):
        return 1.0
    return right / len(want) if partial else 0.0


def reward(completions: list, **columns) -> list[float]:
    """A reward function for TRL's GRPO trainer: the dataset's `answer` and `metadata` columns arrive as keyword
    arguments; completions are strings or chat messages (the last message's content is read)."""
    out = []
    for completion, answer, metadata in zip(completions, columns["answer"], columns["metadata"]):
        text = completion[-1]["content"] if isinstance(completion, list) else completion
        out.append(score_answer(extract_answer(text), {"answer": answer, "metadata": metadata}))
    return out


def examples_of(generator, split: str, seed: int, indices: np.ndarray, k: int | None = None) -> dict:
    """The small models' examples at these indices: at look-ahead k where asked (tasks with a depth axis)."""
    if k is None:
        return generator.sample(split, seed, indices)
    return generator.sample_at_depth(split, seed, indices, k)


def item_metadata(generator, examples: dict, split: str, seed: int, indices, k: int | None, style: str,
                  answer_format: str) -> list[dict]:
    """Per item: where it comes from (generator, version, config, split, seed, index, style), its depth k, rule and
    symmetry class (where the task has rules), and whether its target is trivial (a given state) or fresh."""
    mask = np.asarray(examples["loss_mask"])
    n = len(mask)

    def per_item(key, how):
        if key not in examples or np.shape(examples[key]) != mask.shape:
            return [None] * n
        values = np.asarray(examples[key]).astype(bool)
        return [bool(how(values[i][mask[i]])) for i in range(n)]

    trivial, fresh = per_item("trivial", np.any), per_item("fresh", np.all)
    if k is not None:
        depth = [k] * n
    elif "k" in examples and np.ndim(examples["k"]) == 1:
        depth = [int(x) for x in examples["k"]]
    elif "step" in examples:
        depth = [int(np.max(examples["step"][i][mask[i]])) for i in range(n)]
    else:
        depth = [None] * n
    config = generators.to_dict(generator.config)
    out = []
    for i in range(n):
        meta = {"source_dataset": f"testbed/{generator.name}", "generator": generator.name,
                "version": generator.version, "config": config, "split": split, "seed": seed,
                "index": int(indices[i]), "style": style, "k": depth[i], "answer_format": answer_format,
                "trivial": trivial[i], "fresh": fresh[i]}
        for key, name in ((generator.member_key, "rule_id"), (generator.cluster_key, "class_id")):
            if key and key in examples:
                meta[name] = int(examples[key][i])
        meta["difficulty"] = {"k": depth[i]}
        out.append(meta)
    return out


def render_items(generator, split: str, seed: int, indices, k: int | None = None,
                 style: str = "symbolic") -> tuple[list[dict], dict]:
    """(items, the examples they render) at these indices of a split."""
    split, seed = generators.check_split(split), generators.check_seed(seed)
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    text = rendering(generator, style)
    examples = examples_of(generator, split, seed, indices, k)
    metadata = item_metadata(generator, examples, split, seed, indices, k, style, text.answer_format)
    return [{"question": text.question(examples, i), "answer": text.answer(examples, i), "metadata": metadata[i]}
            for i in range(len(indices))], examples


@dataclass
class TextDataset:
    """A sized, indexable dataset of items (reasoning-gym's shape): built from a task (generator name and its
    fields), a split, a seed and a size; `k` fixes the look-ahead of a task with a depth axis."""

    task: str = "ca"
    fields: dict = field(default_factory=dict)
    split: str = "test"
    seed: int = 0
    size: int = 100
    k: int | None = None
    style: str = "symbolic"

    def __post_init__(self):
        if self.size < 1:
            raise ConfigError(f"size must be a positive number of items, got {self.size}")
        self.generator = generators.make(self.task, self.fields)
        rendering(self.generator, self.style)  # raises for a task without a rendering or an unknown style
        self._items: list[dict] | None = None

    @property
    def items(self) -> list[dict]:
        if self._items is None:
            self._items = render_items(self.generator, self.split, self.seed, np.arange(self.size), self.k,
                                       self.style)[0]
        return self._items

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict:
        return self.items[i]

    def __iter__(self):
        return iter(self.items)

    score_answer = staticmethod(score_answer)


TEXT_TASKS = renderable()  # every task with a text rendering


def register_reasoning_gym() -> bool:
    """Register testbed's tasks in reasoning-gym's registry as `testbed_<task>` (create_dataset("testbed_ca",
    fields={...}, split="test", seed=0, size=100, k=None, style="symbolic")) when that package is installed; False
    where it is not. Calling it again registers nothing twice."""
    try:
        from reasoning_gym.dataset import ProceduralDataset
        from reasoning_gym.factory import DATASETS, register_dataset
    except ImportError:
        return False
    from dataclasses import make_dataclass

    def dataset_class(task: str) -> type:
        class Dataset(ProceduralDataset):
            def __init__(self, config):  # the base's own __init__ differs between versions: set what it sets
                self.config, self.seed, self.size = config, config.seed, config.size
                self._text = TextDataset(task, dict(config.fields), config.split, config.seed, config.size,
                                         config.k, config.style)

            def __len__(self) -> int:
                return self.size

            def __iter__(self):
                return iter(self._text)

            def __getitem__(self, idx: int) -> dict:
                return self._text[idx]

            def score_answer(self, answer, entry) -> float:
                return score_answer(answer, entry)

        Dataset.__name__ = Dataset.__qualname__ = f"Testbed{camel(task)}Dataset"
        return Dataset

    def camel(task: str) -> str:
        return task.title().replace("_", "")

    for task in TEXT_TASKS:
        if f"testbed_{task}" in DATASETS:
            continue
        config = make_dataclass(f"Testbed{camel(task)}Config", [
            ("fields", dict, field(default_factory=dict)), ("split", str, "test"), ("seed", int, 0),
            ("size", int, 100), ("k", int | None, None), ("style", str, "symbolic")])
        register_dataset(f"testbed_{task}", dataset_class(task), config)
    return True
