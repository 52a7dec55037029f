"""Probes: a planted linear signal is recovered and noise scores chance; an untrained model's embedding knows nothing
of the example; `testbed probe` end to end and its bad input."""

import json

import numpy as np
import pytest
import torch
from helpers import one_line_error, run

import generators
from generators.core import ConfigError
from testbed.models import build_model
from testbed.probe import hidden_at_targets, probe_rows


def test_a_planted_signal_is_recovered_and_noise_is_chance():
    rng = np.random.default_rng(0)
    n, cells, d = 600, 6, 12
    hidden = rng.normal(size=(n, cells, d))
    w = rng.normal(size=d)
    planted = (hidden @ w > 0).astype(np.uint8)  # step 1: a linear function of the hidden state
    noise = rng.integers(0, 2, (n, cells), dtype=np.uint8)  # step 2: unrelated to it
    rows = {r["step"]: r for r in probe_rows({"layer 1": hidden}, np.stack([planted, noise], 1))}
    assert rows[1]["accuracy"] >= 0.97 and rows[1]["selectivity"] >= 0.4
    assert abs(rows[2]["accuracy"] - 0.5) < 0.04 and abs(rows[2]["control"] - 0.5) < 0.04
    assert abs(rows[1]["control"] - rows[1]["majority"]) < 0.05  # shuffled labels: nothing to generalise


def test_an_untrained_models_embedding_holds_nothing_of_the_example():
    gen = generators.make("ca", {"radius": 1, "width": 8, "steps": 6, "n_input": 2, "task": "RO-S", "k": 2})
    torch.manual_seed(0)
    model = build_model("transformer", {"n_layer": 2, "n_head": 2, "d_model": 16, "pos": "grid"}, gen.layout())
    examples, states = gen.probe_states("test", 0, np.arange(800), 2)
    assert states.shape == (800, 2, 8)
    np.testing.assert_array_equal(states[:, 1], examples["targets"][examples["loss_mask"]].reshape(800, 8))
    hidden = hidden_at_targets(model, examples, 256)
    assert list(hidden) == ["embedding", "layer 1", "layer 2"] and hidden["layer 2"].shape == (800, 8, 16)
    rows = [r for r in probe_rows(hidden, states) if r["state"] == "embedding"]
    # target positions hold mask tokens and their positions only: the same for every example
    assert all(abs(r["accuracy"] - r["majority"]) < 0.03 for r in rows), rows


def test_a_several_state_task_is_probed_at_each_states_own_row():
    """RO-O: the target rows are the states 1..m in order, and the probe of state j reads row j's positions."""
    gen = generators.make("ca", {"radius": 1, "width": 8, "steps": 5, "n_input": 1, "task": "RO-O", "m": 3})
    examples, states = gen.probe_states("test", 0, np.arange(300), 2)
    assert states.shape == (300, 2, 8)
    rows = examples["targets"][examples["loss_mask"]].reshape(300, 3, 8)
    np.testing.assert_array_equal(states, rows[:, :2])
    rng = np.random.default_rng(1)
    hidden = rng.normal(size=(300, 24, 4))
    hidden[:, 8:16, 0] = 2.0 * states[:, 1] - 1.0  # row 2 holds state 2; row 1 holds nothing
    got = {r["step"]: r["accuracy"] for r in probe_rows({"layer": hidden}, states)}
    assert got[2] == 1.0 and abs(got[1] - 0.5) < 0.05
    with pytest.raises(ConfigError, match="probe k in 1..3"):
        gen.probe_states("test", 0, np.arange(4), 4)


@pytest.mark.slow
def test_probe_command_end_to_end_and_bad_input(tmp_path, tiny_spec):
    spec = tiny_spec(data={"task": "RO-S", "mixed_k": False, "k": 2, "n_input": 2, "steps": 5})
    runs = tmp_path / "runs"
    assert run("train", spec, "--out", runs).exit_code == 0
    run_dir = next(p for p in runs.iterdir() if (p / "result.json").is_file())
    res = run("probe", run_dir, "--k", 2, "--size", 40, "--out", tmp_path / "probe.png")
    assert res.exit_code == 0, res.output
    saved = json.loads((run_dir / "probe-k2.json").read_text())
    expected = {(s, j) for s in ("embedding", "layer 1") for j in (1, 2)}
    assert {(r["state"], r["step"]) for r in saved["rows"]} == expected
    assert (tmp_path / "probe.png").read_bytes()[:4] == b"\x89PNG" and "selectivity" in res.output
    one_line_error(run("probe", run_dir, "--size", 2), "--size must be at least 4")
    one_line_error(run("probe", run_dir, "--ridge", 0), "--ridge must be a positive finite number")
    one_line_error(run("probe", run_dir, "--k", 7), "cannot evaluate k = 7")
    one_line_error(run("probe", tmp_path / "nowhere"), "does not exist")
    lstm = tiny_spec(filename="lstm.toml", model={"name": "lstm", "n_layer": 1, "d_model": 8},
                     data={"task": "RO-S", "mixed_k": False, "k": 2, "n_input": 2, "steps": 5})
    assert run("train", lstm, "--out", tmp_path / "lstm").exit_code == 0
    lstm_dir = next(p for p in (tmp_path / "lstm").iterdir() if (p / "result.json").is_file())
    one_line_error(run("probe", lstm_dir), "exposes no hidden states to probe")
    oo = tiny_spec(filename="oo.toml", data={"task": "O-O", "mixed_k": False, "m": 2, "n_input": 2, "steps": 5},
                   eval={"k": []})
    assert run("train", oo, "--out", tmp_path / "oo").exit_code == 0
    oo_dir = next(p for p in (tmp_path / "oo").iterdir() if (p / "result.json").is_file())
    assert run("probe", oo_dir, "--size", 40).exit_code == 0  # each state probed at its own row
    one_line_error(run("probe", oo_dir, "--k", 3), "predicts the next m = 2 states: probe k in 1..2")
