"""The depth-extending families end to end through the CLI: a multi-family sweep, iteration read-outs, the
iterations and heatmap views, and one-line errors for bad settings."""

import csv
import json

import pytest
from helpers import one_line_error, run


@pytest.fixture
def spec(tiny_spec):
    return tiny_spec(filename="families.toml", name="families", data={"steps": 7}, eval={"iterations": [1, 2, 4]},
                     sweep={"extra": [
                         {"model.n_layer": 2},
                         {"model": {"name": "recurrent_depth", "n_prelude": 1, "n_coda": 0, "mean_iterations": 2,
                                    "bptt": 2}},
                         {"model": {"name": "looped", "loops": 2}},
                         {"model": {"name": "act"}},
                         {"model": {"name": "cot"}, "data": {"task": "O-O", "mixed_k": False, "m": 2}, "eval.k": []},
                     ]})


@pytest.mark.slow
def test_family_sweep_iterations_and_views(spec, tmp_path):
    runs = tmp_path / "runs"
    res = run("sweep", spec, "--out", runs)
    assert res.exit_code == 0, res.output
    assert res.output.count("trained") == 6
    results = tmp_path / "r.csv"
    assert run("collect", runs, "--out", results).exit_code == 0
    table = list(csv.DictReader(results.open()))
    models = {r["model"] for r in table}
    baselines = {"baseline:copy_last", "baseline:period", "baseline:rule_lookup"}  # the rule is inferred: O-S, O-O
    assert models == {"transformer", "recurrent_depth", "looped", "act", "cot"} | baselines
    assert {r["task"] for r in table if r["model"] in baselines} == {"O-S", "O-O"}  # drawn beside each task's models
    per_seed = list(csv.DictReader((tmp_path / "r.seeds.csv").open()))
    tied = [r for r in table if r["iterations"]]
    assert {r["model"] for r in tied} == {"recurrent_depth", "looped"}  # only weight-tied models have read-outs
    assert {int(r["iterations"]) for r in tied} == {1, 2, 4}
    assert all(r["mean_steps"] for r in table if r["model"] == "act")  # adaptive compute reports its steps
    # O-O is sliced by how many steps ahead each predicted state lies
    assert {r["k"] for r in table if r["model"] == "cot" and r["slice"] == "k"} == {"1", "2"}

    for view, extra in (("depth", []), ("iterations", []), ("heatmap", ["--by", "n_layer"])):
        out = tmp_path / f"{view}.png"
        res = run("plot", view, results, "--out", out, *extra)
        assert res.exit_code == 0, res.output
        assert out.read_bytes()[:4] == b"\x89PNG"
    res = run("plot", "iterations", results, "--out", tmp_path / "i.png")
    assert "non-trivial stratum per iteration count" in res.output
    res = run("plot", "depth", results, "--out", tmp_path / "f.png", "--stratum", "fresh")
    assert res.exit_code == 0, res.output
    assert "exact match, fresh targets" in res.output and "fresh examples per point" in res.output
    assert all(r["n_fresh"] != "" and r["n_classes"] != "" for r in table if r["slice"] == "k")
    one_line_error(run("plot", "depth", results, "--stratum", "stale"), "unknown stratum 'stale'")
    one_line_error(run("plot", "capacity", results, "--stratum", "fresh"), "--stratum applies to the depth views")
    res = run("collect", runs, "--out", tmp_path / "p.csv", "--against", "model=looped", "--stratum", "fresh")
    assert res.exit_code == 0, res.output
    assert {r["metric"] for r in csv.DictReader((tmp_path / "p.paired.csv").open())} == {"exact_match_fresh"}

    rd = next(r["run_id"] for r in per_seed if r["model"] == "recurrent_depth")
    res = run("eval", runs / rd, "--iterations", "1,3,8", "--size", 16)
    assert res.exit_code == 0, res.output
    rows = json.loads((runs / rd / "eval-iterations.json").read_text())["rows"]
    assert sorted({r["iterations"] for r in rows}) == [1, 3, 8]
    assert {r["value"] for r in rows} == {1, 2}
    plain = next(r["run_id"] for r in per_seed if r["model"] == "transformer")
    one_line_error(run("eval", runs / plain, "--iterations", "2"), "is not weight-tied")
    # a shared file tests extrapolation too: read out after each iteration count, and after as many as the model
    # was trained with, exactly its own prediction
    shared = tmp_path / "shared.npz"
    assert run("gen", "ca", "--radius", 1, "--width", 6, "--steps", 7, "--n-input", 3, "--n", 24, "--split", "test",
               "--out", shared).exit_code == 0
    looped = next(r["run_id"] for r in per_seed if r["model"] == "looped")
    assert run("eval", runs / looped, "--data", shared, "--k", "1,2").exit_code == 0
    res = run("eval", runs / looped, "--data", shared, "--k", "1,2", "--iterations", "1,2,4")
    assert res.exit_code == 0, res.output
    own = json.loads((runs / looped / "eval-shared.json").read_text())["rows"]
    read = json.loads((runs / looped / "eval-shared-iterations.json").read_text())["rows"]
    assert sorted({r["iterations"] for r in read}) == [1, 2, 4]
    for r in own:
        twin = [t for t in read if t["iterations"] == 2 and (t["slice"], t["value"], t.get("k")) ==
                (r["slice"], r["value"], r.get("k"))]
        assert len(twin) == 1 and twin[0]["exact_match"] == r["exact_match"], r
    one_line_error(run("eval", runs / plain, "--data", shared, "--iterations", "2"), "is not weight-tied")
    res = run("eval", runs / plain, "--by", "rule_id", "--size", 64)  # which held-out rules are solved, per k
    assert res.exit_code == 0, res.output
    rows = json.loads((runs / plain / "eval-by-rule_id.json").read_text())["rows"]
    assert {r["slice"] for r in rows} == {"rule_id"} and {r["k"] for r in rows} == {1, 2}
    from generators.cellular_automata import split_of_rule

    assert all(split_of_rule(r["value"], 1) == "test" for r in rows)
    one_line_error(run("eval", runs / plain, "--by", "colour"), "cannot slice by 'colour'")
    one_line_error(run("eval", runs / rd, "--iterations", "0"), "--iterations must be in 1..1024")
    one_line_error(run("eval", runs / rd, "--iterations", "4,5000"), "--iterations must be in 1..1024, got [4, 5000]")
    one_line_error(run("plot", "heatmap", results, "--by", "width"), "unknown heat-map axis")


@pytest.mark.parametrize("sets,message", [
    (["model={name=\"looped\",loops=0}"], "loops must be in 1..1024"),
    (["model={name=\"looped\",loops=100000}"], "loops must be in 1..1024, got 100000"),
    (["model.name=looped", "model.loops=2", "model.loss_loops=2", "model.nograd_loops=1"], "must not exceed loops"),
    (["model.name=recurrent_depth", "model.sample_iterations=false", "model.mean_iterations=2", "model.bptt=4"],
     "bptt (4) is larger than the fixed iteration count"),
    (["model.name=act", "model.threshold=1.5"], "ACT threshold must be in (0, 1)"),
    (["model.name=rmt", "model.segment_len=500"], "longer than the sequence"),
    (["model.name=memory_tokens", "model.n_memory=0"], "n_memory must be at least 1"),
    (["eval.iterations=[0]"], "eval.iterations must be in 1..1024"),
    (["eval.iterations=[2,4096]"], "eval.iterations must be in 1..1024, got [2, 4096]"),
])
def test_bad_depth_settings_are_one_line_errors(spec, tmp_path, sets, message):
    args = [a for s in sets for a in ("--set", s)]
    one_line_error(run("train", spec, "--out", tmp_path / "runs", *args), message)


@pytest.mark.slow
def test_capacity_sweep_and_plot(tmp_path, tiny_spec):
    spec = tiny_spec(filename="capacity.toml", name="capacity",
                     data={"generator": "mqar", "vocab_size": 64, "seq_len": 32, "n_pairs": 2},
                     model={"causal": True}, train={"max_steps": 3, "val_every": 3}, eval={"k": []},
                     sweep={"grid": {"model": [{"name": "transformer"}, {"name": "fast_weights", "rule": "delta"}],
                                     "model.d_model": [8, 16], "data.n_pairs": [2, 4]}})
    runs = tmp_path / "runs"
    res = run("sweep", spec, "--out", runs)
    assert res.exit_code == 0, res.output
    assert res.output.count("trained") == 8  # families x widths x pairs: section replacement first, then d_model
    assert run("collect", runs, "--out", tmp_path / "r.csv").exit_code == 0
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    table = [r for r in rows if not r["model"].startswith("baseline:")]
    assert {(r["model"], r["d_model"]) for r in table} == {(m, d) for m in ("transformer", "fast_weights")
                                                           for d in ("8", "16")}
    guess = {int(r["value"]): float(r["cell_accuracy"]) for r in rows
             if r["model"] == "baseline:context_value" and r["slice"] == "n_pairs"}
    assert set(guess) == {2, 4}
    assert guess[2] == pytest.approx(1 / 2, abs=0.2) and guess[4] == pytest.approx(1 / 4, abs=0.15)
    assert all(int(r["state_size"]) > 0 for r in table)
    res = run("plot", "capacity", tmp_path / "r.csv", "--out", tmp_path / "c.png")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG" and "attention" in res.output
    one_line_error(run("plot", "capacity", tmp_path / "r.csv", "--out", tmp_path / "nodir" / "c.png"),
                   "does not exist")
    one_line_error(run("plot", "depth", tmp_path / "r.csv", "--stratum", "fresh"), "no fresh stratum")
    one_line_error(run("collect", runs, "--out", tmp_path / "p.csv", "--against", "model=transformer", "--stratum",
                       "fresh"), "have no fresh stratum")
    assert not (tmp_path / "p.csv").exists()
    assert all(r["n_fresh"] == "" and r["n_classes"] == "" for r in rows)  # recall: no depth axis, no classes


def test_capacity_is_the_largest_count_recalled_above_the_floor():
    from testbed.results.tables import capacity

    assert capacity({2: 1.0, 4: 0.95, 8: 0.5, 16: 0.95}) == 4  # stops at the first failure
    assert capacity({2: 0.5, 4: 0.99}) == 0
    assert capacity({2: 0.91}) == 2


def test_capacity_table_chooses_the_learning_rate_on_validation_never_on_test():
    from testbed.results.tables import capacity_table

    def row(lr, val, test, val_cells=""):
        return {"split": "test", "slice": "n_pairs", "value": "8", "model": "transformer", "d_model": "32",
                "state_size": "100", "cfg.train.lr": lr, "cell_accuracy": test, "val_exact_match": val,
                "val_cell_accuracy": val_cells}

    # the 1e-2 point scores higher on test, but 1e-3 validated higher: the table reports 1e-3's test score
    assert capacity_table([row("0.001", "0.8", 0.6), row("0.01", "0.5", 0.9)])["attention"][32][8] == (0.6, 100.0)
    # tied validation exact match: the validation cell accuracy decides
    tied = [row("0.001", "0.0", 0.6, "0.4"), row("0.01", "0.0", 0.9, "0.7")]
    assert capacity_table(tied)["attention"][32][8] == (0.9, 100.0)


def test_mqar_width_reports_each_recall_with_its_interval_and_the_baselines_beside():
    from types import SimpleNamespace

    from testbed.figures.mqar_width import FIGURE
    from testbed.results.tables import capacity_table

    def row(model, pairs, acc, lo, hi, rule=""):
        return {"split": "test", "slice": "n_pairs", "value": str(pairs), "model": model, "d_model": "32",
                "state_size": "100", "cfg.model.rule": rule, "cell_accuracy": acc, "cell_accuracy_lo": lo,
                "cell_accuracy_hi": hi, "val_exact_match": "0.5", "val_cell_accuracy": "0.5"}

    rows = [row("transformer", 8, 0.9, 0.8, 0.95), row("fast_weights", 8, 0.3, 0.2, 0.4, rule="sum"),
            {**row("baseline:context_value", 8, 0.125, 0.12, 0.13), "d_model": ""}]
    assert capacity_table(rows, intervals=True)["fast_weights (sum rule)"][32][8] == (0.3, 100.0, 0.2, 0.4)
    points = {p["series"]: p for p in FIGURE.compare(SimpleNamespace(rows=rows), {})}
    assert (points["attention"]["ours_lo"], points["attention"]["ours_hi"]) == (0.8, 0.95)
    assert points["attention"]["difference"] == pytest.approx(-0.1)  # Zoology's attention recalls every pair
    assert points["fast_weights (sum rule)"]["published"] is None
    assert points["baseline:context_value"]["x"] == "pairs=8" and points["baseline:context_value"]["ours"] == 0.125


def test_staircase_is_the_smallest_depth_whose_mean_and_lower_bound_clear_the_bar():
    from testbed.results.tables import PROTOCOL_COLUMNS, staircase

    def row(layers, k, mean, lo):
        return {**{c: "" for c in PROTOCOL_COLUMNS}, "split": "test", "slice": "k", "k": str(k), "iterations": "",
                "model": "transformer", "n_layer": str(layers), "exact_match_nontrivial": mean,
                "exact_match_nontrivial_lo": lo, "exact_match_nontrivial_hi": min(1.0, 2 * mean - lo)}

    rows = [row(1, 1, 0.95, 0.80),  # mean high but the interval too wide: one lucky seed is not a step
            row(2, 1, 0.93, 0.88), row(4, 1, 1.0, 1.0),
            row(1, 2, 0.10, 0.05), row(2, 2, 0.50, 0.40), row(4, 2, 0.92, 0.86),
            row(1, 3, 0.0, 0.0), row(2, 3, 0.2, 0.1), row(4, 3, 0.89, 0.86)]  # mean below 0.90: unsolved
    assert staircase(rows) == {1: 2, 2: 4, 3: None}
