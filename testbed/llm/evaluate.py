"""`testbed eval-llm`: a language model scored on the text form of the held-out examples with the small models'
protocol — the same examples (test split, evaluation seed, indices 0..size-1, one set per k), the task's baselines
on those examples, the non-trivial and fresh strata, 95 % intervals over held-out symmetry classes — written as the
same results table any run's collection gives (results.csv: `testbed plot depth` draws it).

The output folder holds:
    config.json    what was asked: task, style, k, size, seed, the backend's identity (never the API key)
    cache.jsonl    every response received (an interrupted evaluation resumes from it, asking nothing twice)
    items.jsonl    per item: k, index, prompt, response, the parsed answer, the reference, score, exact
    outcomes.npz   per-unit outcomes of the model and the baselines (as a run's)
    results.csv    rows with intervals, the model's and each baseline's
    results.txt    the plain-text table
    results.md     a page: what was asked of which model, and the table
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generators.core import ConfigError
from generators.core.io import atomic_write

from .. import metrics
from ..metrics import MODEL, tagged
from ..results import aggregate
from ..results.io import write_csv
from ..results.tables import format_table
from .backends import Backend, Cache
from .items import extract_answer, render_items, score_answer
from .render import rendering


@dataclass(frozen=True)
class LLMEval:
    """What one evaluation asks: the task's generator, the text style, the look-aheads (empty: the task's own
    examples), the examples per set, the evaluation seed and split."""

    generator: object
    style: str = "symbolic"
    ks: tuple[int, ...] = ()
    size: int = 200
    seed: int = 0
    split: str = "test"

    def __post_init__(self):
        if self.size < 1:
            raise ConfigError(f"--size must be a positive number of items, got {self.size}")
        if self.split not in ("test", "val"):
            raise ConfigError(f"--split must be test or val, got {self.split!r}")
        rendering(self.generator, self.style)  # an unknown style or a task without a text form fails here
        for k in self.ks:
            self.generator.check_depth(k)

    def sets(self) -> list[tuple[int, list[dict], dict]]:
        """(k, items, the examples they render) per example set; k = 0: the task's own mix."""
        indices = np.arange(self.size)
        return [(k or 0, *render_items(self.generator, self.split, self.seed, indices, k, self.style))
                for k in (self.ks or (None,))]


def model_label(identity: dict) -> str:
    return "llm:" + (identity.get("model") or Path(identity.get("path", "model")).name)


def evaluate_llm(request: LLMEval, backend: Backend, out: Path, concurrency: int = 4, progress=None) -> dict:
    """Ask, score and record; returns {"rows", "table", "out"}."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gen = request.generator
    from generators import to_dict

    asked = {"task": gen.name, "fields": to_dict(gen.config), "style": request.style, "k": list(request.ks),
             "size": request.size, "seed": request.seed, "split": request.split, "backend": backend.identity}
    atomic_write(out / "config.json", lambda f: f.write(json.dumps(asked, indent=2).encode()))
    cache, text = Cache(out / "cache.jsonl"), rendering(gen, request.style)
    sets = request.sets()
    prompts = [item["question"] for _, items, _ in sets for item in items]
    responses = iter(backend.answer_all(prompts, cache, concurrency, progress))
    parts, log = [], []
    key, member = gen.cluster_key, gen.member_key
    for k, items, examples in sets:
        said = [next(responses) for _ in items]
        parsed = [extract_answer(r) for r in said]
        pred = text.predictions(parsed, examples)
        parts.append(tagged(metrics.outcomes(pred, examples, key, member_key=member), MODEL, 0, k))
        for name, base in gen.baselines(examples).items():
            parts.append(tagged(metrics.outcomes(base, examples, key, member_key=member), f"baseline:{name}", 0, k))
        for item, response, answer in zip(items, said, parsed):
            log.append({"k": item["metadata"]["k"], "index": item["metadata"]["index"], "prompt": item["question"],
                        "response": response, "answer": answer, "reference": item["answer"],
                        "score": score_answer(answer, item), "exact": score_answer(answer, item, partial=False)})
    units = metrics.concat(parts)
    from ..store import write_outcomes

    write_outcomes(out, units)
    atomic_write(out / "items.jsonl", lambda f: f.write("".join(json.dumps(x) + "\n" for x in log).encode()))
    from ..results.collect import COLUMNS  # imported here: it loads torch, which scoring text does not need

    rows = result_rows(units, request, backend.identity)
    write_csv(out / "results.csv", COLUMNS, rows)
    table = format_table(rows) if any(r["slice"] == "k" for r in rows) else overall(rows)
    atomic_write(out / "results.txt", lambda f: f.write((table + "\n").encode()))
    atomic_write(out / "results.md", lambda f: f.write(page(asked, table, rows).encode()))
    return {"rows": rows, "table": table, "out": out}


def page(asked: dict, table: str, rows: list[dict]) -> str:
    """results.md: what was asked of which model, and the table."""
    who = asked["backend"]
    model = who.get("model") or who.get("path")
    classes = sorted({int(r["n_classes"]) for r in rows if r.get("n_classes") not in ("", None)})
    over = (f"95 % intervals over {', '.join(map(str, classes))} held-out symmetry classes (one model: no seeds)"
            if classes else "95 % intervals over examples")
    fields = ", ".join(f"{k} = {v}" for k, v in asked["fields"].items())
    return "\n".join([
        f"# {model} on `{asked['task']}` ({asked['style']} text)", "",
        f"Backend: {who['backend']}; {asked['size']} items per set of the {asked['split']} split, evaluation seed "
        f"{asked['seed']}" + (f", k = {', '.join(map(str, asked['k']))}" if asked["k"] else "") + ".",
        f"Task: {fields}.", f"Baselines scored on the same items; {over}.", "", "```", table, "```", ""])


def result_rows(units: dict, request: LLMEval, identity: dict) -> list[dict]:
    """results.csv rows of the language model and of each baseline, intervals over held-out classes (one 'seed':
    the model is one model)."""
    gen = request.generator
    cid = "llm-" + hashlib.sha256(json.dumps([identity, request.style], sort_keys=True).encode()).hexdigest()[:10]
    task = getattr(gen.config, "task", gen.name)
    rows = []
    for source in dict.fromkeys(units["source"].tolist()):
        own = metrics.select(units, units["source"] == source)
        name = model_label(identity) if source == MODEL else source
        meta = {"config_id": cid if source == MODEL else source, "name": f"eval-llm {request.style}",
                "preset": request.style, "model": name, "task": task, "stopped": "", "steps": ""}
        rows += [{**meta, **row, "seeds": ""} for row in aggregate.rows([own], request.split)]
    return rows


def overall(rows: list[dict]) -> str:
    """A task without a depth axis: exact match over every example per source, with its interval."""
    lines = ["exact match, every example (95 % interval over examples)"]
    for r in rows:
        if r["slice"] == "all":
            lines.append(f"{r['model']:<28} {float(r['exact_match']):.3f} "
                         f"[{float(r['exact_match_lo']):.3f}, {float(r['exact_match_hi']):.3f}]  n = {r['n']}")
    return "\n".join(lines)
