"""Commands for language models: `eval-llm` (score one on the text form of the held-out examples) and `export
lm-eval` (a task folder lm-evaluation-harness loads). `gen --format jsonl` (data.py) writes the items themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

import generators
from generators.core import ConfigError

from .common import friendly, load_spec, parse_extra_options

export_app = typer.Typer(help="Write the tasks for other tools: lm-eval (a task folder for lm-evaluation-harness).",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("eval-llm", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(eval_llm)
    app.add_typer(export_app, name="export")
    export_app.command("lm-eval", context_settings={"allow_extra_args": True,
                                                    "ignore_unknown_options": True})(export_lm_eval)


def task_of(target: str, extra: list[str], preset: Optional[str]) -> tuple:
    """(generator, the spec's eval k, test size, eval seed) of a generator name with --field value options, or of a
    spec (SPEC.toml: its data section and its [eval], so the language model meets the small models' examples)."""
    options = parse_extra_options(extra)
    if target.endswith(".toml"):
        from .. import spec as specs

        if options:
            raise ConfigError(f"with a spec, change the task with --set data.FIELD=VALUE, not --{next(iter(options))}")
        cfg = specs.resolve(load_spec(Path(target), preset))
        return cfg.task(), tuple(cfg.eval.k), cfg.eval.test_size, cfg.eval.seed
    if preset is not None:
        raise ConfigError("--preset applies to a spec (SPEC.toml), not to a generator name")
    return generators.make(target, options), (), None, None


@friendly
def eval_llm(
    ctx: typer.Context,
    task: str = typer.Argument(..., help="generator name (its options follow as --field value) or SPEC.toml"),
    endpoint: Optional[str] = typer.Option(None, help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1"),
    model: Optional[str] = typer.Option(None, help="the model name the endpoint serves"),
    hf: Optional[Path] = typer.Option(None, help="a local Hugging Face model folder instead (the hf extra)"),
    key_env: str = typer.Option("OPENAI_API_KEY", help="environment variable holding the API key (read, never "
                                "written)"),
    style: str = typer.Option("symbolic", help="symbolic | natural"),
    k: Optional[list[int]] = typer.Option(None, "--depth", help="look-aheads k to score, one set each (repeatable; "
                                          "default: the spec's eval.k, else the task's own examples)"),
    size: Optional[int] = typer.Option(None, help="items per set (default: the spec's test_size, else 200)"),
    seed: Optional[int] = typer.Option(None, help="evaluation seed (default: the spec's eval.seed, else 0)"),
    split: str = typer.Option("test", help="test | val"),
    preset: Optional[str] = typer.Option(None, help="preset of the spec"),
    out: Path = typer.Option(Path("llm-eval"), help="output folder (cache, per-item log, results.csv)"),
    concurrency: int = typer.Option(4, help="requests in flight at once"),
    timeout: float = typer.Option(120.0, help="seconds per request before it is retried"),
    retries: int = typer.Option(6, help="retries of a request on 429, 5xx, time-outs and dropped connections"),
    max_tokens: int = typer.Option(1024, help="tokens a response may have"),
    temperature: float = typer.Option(0.0, help="sampling temperature (0: greedy)"),
) -> None:
    """Score a language model on the text form of held-out examples, per k, beside the baselines.

    \b
    testbed eval-llm experiments/quickstart.toml --endpoint http://localhost:8000/v1 --model qwen --depth 1 --depth 2
    testbed eval-llm ca --task RO-S --radius 1 --width 12 --steps 4 --n-input 2 --hf ./tiny-model --depth 1 --size 50
    """
    from ..llm.backends import EndpointBackend, HuggingFaceBackend
    from ..llm.evaluate import LLMEval, evaluate_llm

    if (endpoint is None) == (hf is None):
        raise ConfigError("give one backend: --endpoint URL --model NAME, or --hf PATH")
    if concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {concurrency}")
    gen, spec_k, spec_size, spec_seed = task_of(task, ctx.args, preset)
    request = LLMEval(gen, style, tuple(k or spec_k), size or spec_size or 200,
                      seed if seed is not None else spec_seed or 0, split)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; give a folder")
    backend = (EndpointBackend(endpoint, model or "", key_env, max_tokens, temperature, timeout, retries)
               if endpoint is not None else HuggingFaceBackend(str(hf), max_tokens))
    got = _resumable(lambda: evaluate_llm(request, backend, out, concurrency, _progress()), out)
    typer.echo(got["table"])
    typer.echo(f"wrote {out}/results.csv, items.jsonl (per item), cache.jsonl (responses)")


def _progress(every: int = 100):
    """A callback counting answers as they arrive, a line on stderr every `every`."""
    import threading

    lock, count = threading.Lock(), [0]

    def tick():
        with lock:
            count[0] += 1
            if count[0] % every == 0:
                typer.echo(f"{count[0]} answers received", err=True)
    return tick


def _resumable(work, out: Path):
    """Run `work` with SIGTERM taken as Ctrl-C: either stops asking, lets the answers in flight arrive into the
    cache, and exits 130 with one line."""
    import signal

    def interrupt(*_):
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        return work()
    except KeyboardInterrupt:
        error = ConfigError(f"interrupted; the answers received are cached in {out}/cache.jsonl: run the same "
                            f"command again to resume")
        error.exit_code = 130
        raise error from None
    finally:
        signal.signal(signal.SIGTERM, before)


@friendly
def export_lm_eval(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., help="the task folder to write"),
    task: str = typer.Argument(..., help="generator name (its options follow as --field value) or SPEC.toml"),
    style: str = typer.Option("symbolic", help="symbolic | natural"),
    k: Optional[list[int]] = typer.Option(None, "--depth", help="look-aheads k, one metric each (repeatable)"),
    size: Optional[int] = typer.Option(None, help="items per k (default: the spec's test_size, else 200)"),
    seed: Optional[int] = typer.Option(None, help="evaluation seed (default: the spec's eval.seed, else 0)"),
    preset: Optional[str] = typer.Option(None, help="preset of the spec"),
    name: str = typer.Option("testbed_ca", help="the task's name in lm-evaluation-harness"),
) -> None:
    """Write a task folder lm-evaluation-harness loads with --include_path: items generated by testbed, exact
    match reported per k.

    \b
    testbed export lm-eval tasks/ experiments/quickstart.toml --depth 1 --depth 2
    lm_eval --model hf --model_args pretrained=... --include_path tasks/ --tasks testbed_ca
    """
    from ..llm.lm_eval import write_task

    gen, spec_k, spec_size, spec_seed = task_of(task, ctx.args, preset)
    wrote = write_task(folder, name, gen, style, list(k or spec_k), size or spec_size or 200,
                       seed if seed is not None else spec_seed or 0)
    typer.echo(f"wrote {wrote}; run: lm_eval --include_path {folder} --tasks {name} ...")
