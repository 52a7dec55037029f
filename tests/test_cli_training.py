"""train / eval / sweep / collect / plot / quickstart through Typer's CliRunner on tiny configs."""

import csv
import json
from pathlib import Path

import pytest
from helpers import one_line_error, run

from testbed.environment import cpu_name


@pytest.fixture
def spec(tiny_spec):
    return tiny_spec(sweep={"grid": {"model.n_layer": [1, 2]}}, presets={"paper": {"train": {"max_steps": 6}}})


@pytest.mark.slow
def test_train_eval_collect_plot(spec, tmp_path):
    runs = tmp_path / "runs"
    res = run("train", spec, "--out", runs, "--set", "model.d_model=8")
    assert res.exit_code == 0, res.output
    assert res.output.startswith("trained: ")
    run_dir = Path(res.output.split()[1])
    assert json.loads((run_dir / "config.json").read_text())["model"]["d_model"] == 8
    res = run("train", spec, "--out", runs, "--set", "model.d_model=8")
    assert res.exit_code == 0 and res.output.startswith("skipped: ")

    res = run("eval", run_dir, "--k", "1,2", "--size", 16)
    assert res.exit_code == 0, res.output
    rows = json.loads((run_dir / "eval-test.json").read_text())["rows"]
    assert [r["value"] for r in rows] == [1, 2] and all(r["n"] == 16 for r in rows)
    res = run("eval", run_dir, "--k", "1,2", "--size", 16, "--split", "val")  # choices read validation
    assert res.exit_code == 0, res.output
    val = json.loads((run_dir / "eval-test-val.json").read_text())
    assert val["data"] == "val split" and all(r["split"] == "val" for r in val["rows"])
    assert [r["value"] for r in val["rows"]] == [1, 2]
    one_line_error(run("eval", run_dir, "--split", "train"), "--split must be test or val")

    data = tmp_path / "shared.npz"
    assert run("gen", "ca", "--radius", 1, "--width", 6, "--steps", 7, "--n-input", 3, "--n", 20, "--split", "test",
               "--out", data).exit_code == 0
    res = run("eval", run_dir, "--data", data, "--k", "1,2,3")
    assert res.exit_code == 0, res.output
    rows = json.loads((run_dir / "eval-shared.json").read_text())["rows"]
    assert [r["value"] for r in rows] == [1, 2, 3] and all(r["n"] == 20 for r in rows)

    results = tmp_path / "results.csv"
    res = run("collect", runs, "--out", results)
    assert res.exit_code == 0, res.output
    table = list(csv.DictReader(results.open()))  # over seeds: one row per configuration (and baseline) x slice
    for column in ("config_id", "model", "params", "n_layer", "k", "split", "cell_accuracy", "exact_match",
                   "exact_match_lo", "exact_match_hi", "exact_match_nontrivial", "n_seeds", "n_rules"):
        assert column in table[0]
    assert {r["k"] for r in table} == {"1", "2"}
    from testbed.results.collect import late_rise
    from testbed.store import validation_history

    history = validation_history(run_dir)  # the run's validations, as its metrics.csv logged them
    assert history and all(0 <= v <= 1 for _, v in history)
    rise = late_rise(history)
    assert {r["val_late_rise"] for r in table if r["model"] == "transformer"} == {"" if rise is None else
                                                                                   f"{round(rise, 6)}"}
    assert {r["model"] for r in table} == {"transformer", "baseline:copy_last", "baseline:period",
                                           "baseline:rule_lookup"}
    per_seed = list(csv.DictReader((tmp_path / "results.seeds.csv").open()))  # one row per run x slice
    assert {r["run_id"] for r in per_seed if r["model"] == "transformer"} == {run_dir.name}
    res = run("plot", "depth", results, "--out", tmp_path / "depth.png")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "depth.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_sweep_dry_run_presets_and_jobs(spec, tmp_path):
    runs = tmp_path / "runs"
    res = run("sweep", spec, "--out", runs, "--dry-run")
    assert res.exit_code == 0 and "2 runs" in res.output and res.output.count("todo") == 2
    res = run("sweep", spec, "--out", runs, "--jobs", 2)
    assert res.exit_code == 0, res.output
    assert res.output.count("trained") == 2
    res = run("sweep", spec, "--out", runs)
    assert res.output.count("skipped") == 2
    res = run("sweep", spec, "--out", runs, "--preset", "paper", "--dry-run")
    assert res.output.count("todo") == 2  # a preset changes the config, hence the runs
    one_line_error(run("sweep", spec, "--preset", "gpu"), "unknown preset 'gpu'")


@pytest.mark.slow
def test_quickstart_with_overrides(tmp_path):
    sets = ["train.max_steps=2", "train.val_every=2", "model.d_model=8", "model.n_head=2", "eval.test_size=16",
            "train.val_size=16"]
    res = run("quickstart", "--out", tmp_path / "qs", "--jobs", 1, "--seeds", "0,1",
              *[a for s in sets for a in ("--set", s)])
    assert res.exit_code == 0, res.output
    for name in ("results.csv", "results.seeds.csv", "figure.png", "comparison.md", "meta.json"):
        assert (tmp_path / "qs" / name).is_file(), name
    assert "k=1" in res.output and "non-trivial stratum" in res.output and "seeds per model: 2" in res.output
    runs = [json.loads(p.read_text()) for p in (tmp_path / "qs" / "runs").glob("*/config.json")]
    assert {(r["seed"], r["model"]["d_model"], r["train"]["max_steps"]) for r in runs} == {(0, 8, 2), (1, 8, 2)}


def test_bad_inputs(spec, tmp_path):
    one_line_error(run("train", tmp_path / "missing.toml"), "does not exist")
    one_line_error(run("train", spec, "--set", "model.n_layers=2"), "did you mean 'n_layer'")
    one_line_error(run("train", spec, "--set", "model.n_layer"), "malformed --set")
    one_line_error(run("train", spec, "--set", "model.name=mamba9"), "unknown model 'mamba9'")
    one_line_error(run("train", spec, "--set", "data.generator=life"), "unknown generator 'life'")
    one_line_error(run("train", spec, "--set", "data.width=2"), "width must be at least 2r+1")
    bad = tmp_path / "bad.toml"
    bad.write_text(spec.read_text().replace("[model]", "[modle]"))
    one_line_error(run("train", bad), "did you mean 'model'")
    one_line_error(run("eval", tmp_path), "is not a run directory")
    one_line_error(run("collect", tmp_path / "none"), "does not exist")
    one_line_error(run("plot", "depth", tmp_path / "none.csv"), "does not exist")
    one_line_error(run("plot", "widths", tmp_path / "none.csv"), "unknown view 'widths'")


@pytest.mark.slow
def test_eval_rejects_files_that_do_not_fit(spec, tmp_path):
    runs = tmp_path / "runs"
    res = run("train", spec, "--out", runs)
    run_dir = Path(res.output.split()[1])
    wide = tmp_path / "wide.npz"
    run("gen", "ca", "--radius", 2, "--width", 9, "--steps", 6, "--n-input", 3, "--n", 4, "--out", wide)
    one_line_error(run("eval", run_dir, "--data", wide), "do not fit this task")
    short = tmp_path / "short.npz"
    run("gen", "ca", "--radius", 1, "--width", 6, "--steps", 4, "--n-input", 3, "--n", 4, "--out", short)
    one_line_error(run("eval", run_dir, "--data", short, "--k", "2"), "too short")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    one_line_error(run("eval", run_dir, "--data", junk), "cannot read")
    (run_dir / "model.pt").write_bytes(b"\x00" * 10)
    one_line_error(run("eval", run_dir), "corrupt or truncated")


@pytest.mark.slow
def test_plot_draws_published_numbers(spec, tmp_path):
    runs = tmp_path / "runs"
    assert run("sweep", spec, "--out", runs).exit_code == 0
    assert run("collect", runs, "--out", tmp_path / "r.csv").exit_code == 0
    paper = tmp_path / "paper.toml"
    paper.write_text('[paper]\nlayers = [1, 2]\n"k=1" = [0.9, 0.95]\n"k=2" = [0.75, 0.8]\n')
    res = run("plot", "depth", tmp_path / "r.csv", "--out", tmp_path / "p.png", "--paper", paper)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "p.png").stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.parametrize("bf16_units", [True, False])
def test_bench_all_reports_consistent_figures(tmp_path, monkeypatch, bf16_units):
    import functools

    from testbed import bench

    # the wiring and the consistency of the figures are under test, not their precision: one timing each
    monkeypatch.setattr(bench, "bench_generators", functools.partial(bench.bench_generators, repeats=1))
    monkeypatch.setattr(bench, "training_throughput", functools.partial(bench.training_throughput, steps=1,
                                                                         batch_size=8))
    monkeypatch.setattr(bench, "step_breakdown", functools.partial(bench.step_breakdown, steps=1))
    monkeypatch.setattr(bench, "matmul_peak", functools.partial(bench.matmul_peak, size=512, repeats=4))
    monkeypatch.setattr(bench, "has_bf16_matmul_units", lambda threads: bf16_units)  # whatever this CPU has
    res = run("bench", "all", "--n", 2000, "--budget", 2, "--target", 0.999, "--skip-baseline", "--seeds", "0,1",
              "--json", tmp_path / "b.json", "--markdown", tmp_path / "bench.md")
    assert res.exit_code == 0, res.output
    assert "CA generation" in res.output and "training throughput" in res.output
    page = (tmp_path / "bench.md").read_text()  # the same table as the terminal's, as a page
    assert page.startswith("# Benchmarks") and "| CA generation, r=2 W=20 T=20, one core |" in page
    # the page names its own path in the command that regenerates it, and the processor it ran on
    assert f"--markdown {(tmp_path / 'bench.md').as_posix()}`" in page and f"CPU cores of {cpu_name()}," in page
    figures = json.loads((tmp_path / "b.json").read_text())
    assert figures["generators"]["speedup_vs_numpy"] == pytest.approx(
        figures["generators"]["cells_per_s"] / figures["generators"]["reference_numpy_cells_per_s"])
    t = figures["train"]["throughput"]
    # achieved FLOP/s = FLOPs per token x tokens/s, against the peak measured in the same run
    assert t["fraction_of_peak"] == pytest.approx(t["flops_per_s"] / t["matmul_peak_flops_per_s"])
    assert 0 < t["fraction_of_peak"] < 2 and t["seq_len"] == 230 and t["params"] > 800_000
    assert f"| training throughput, 4 layers, d=128, {t['threads']} thread" in page  # the threads it had
    # the profiler's breakdown of a step: fractions of one whole, matmuls and attention both present
    spent = t["step_breakdown"]
    assert set(spent) == {"matmul", "attention", "optimizer", "other"} and sum(spent.values()) == pytest.approx(1)
    assert spent["matmul"] > 0.1 and spent["attention"] > 0.01 and "where a training step's time goes" in page
    tb = figures["train"]["throughput_bf16"]
    if bf16_units:  # bf16-mixed beside float32, each against the peak of its own matmuls
        assert t["precision"] == "32" and tb["precision"] == "bf16-mixed" and "bf16-mixed |" in page
        assert tb["threads"] == t["threads"] and tb["matmul_dtype"] == "bfloat16"  # the same cores, its own peak
        assert figures["train"]["bf16_speedup"] == pytest.approx(tb["tokens_per_s"] / t["tokens_per_s"])
        assert tb["fraction_of_peak"] == pytest.approx(tb["flops_per_s"] / tb["matmul_peak_flops_per_s"])
    else:  # emulated bf16 is no speed option: said, not timed
        assert tb is None and "bf16_speedup" not in figures["train"]
        assert "| training throughput, 4 layers, d=128, bf16-mixed | - | not measured: a bf16 matmul" in page
    ours = figures["train"]["ours"]
    assert ours["seeds"] == [0, 1] and [r["budget_s"] for r in ours["per_seed"]] == [2, 2]
    for r in ours["per_seed"]:
        steps = [h[0] for h in r["history"]]
        assert steps == sorted(steps) and all(0 <= h[2] <= 1 for h in r["history"])
    # a target of 0.999 in 2 s is not reached: the budget stops every seed, and that is what is reported
    assert ours["median_seconds_to_target"] is None and ours["reached"] == 0 and "not within 2 s" in res.output
    assert "--seeds 0,1" in page



def test_time_to_accuracy_median_counts_a_seed_that_missed_as_the_budget(monkeypatch):
    from testbed import bench

    times = iter([(3.0, 300), (None, None), (5.0, 400), (None, None), (None, None), (1.0, 100)])
    monkeypatch.setattr(bench, "time_to_accuracy", lambda **kw: dict(zip(("seconds_to_target", "steps_to_target"),
                                                                         next(times)), params=7))
    recipe = {"model": "transformer"}
    res = bench.time_to_accuracy_seeds(recipe, [0, 1, 2])  # 3, 5, inf seconds; 300, 400, inf updates
    assert res["median_seconds_to_target"] == 5.0 and res["median_updates_to_target"] == 400
    res = bench.time_to_accuracy_seeds(recipe, [0, 1, 2])  # inf, inf, 1: most seeds missed
    assert res["median_seconds_to_target"] is None and res["median_updates_to_target"] is None and res["reached"] == 1
