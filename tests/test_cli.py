"""Every generator-side CLI command through Typer's CliRunner, including the bad inputs."""

import json
import sys

import numpy as np
import pytest
from helpers import run


def test_list_generators_shows_fields_and_defaults():
    res = run("list")
    assert res.exit_code == 0
    assert "ca" in res.output and "--radius" in res.output and "--split-fractions" in res.output


def test_list_rules_radius1_is_a_partition():
    res = run("list", "rules", "--radius", "1")
    assert res.exit_code == 0
    classes = [[int(x) for x in c.split()] for line in res.output.splitlines()
               for c in line.split(":", 1)[1].replace("}", "").split("{")[1:]]
    assert len(classes) == 88 and sorted(n for c in classes for n in c) == list(range(256))
    assert [30, 86, 135, 149] in classes  # the split lists whole symmetry classes
    res = run("list", "rules", "--radius", "2", "--rule", "123456")
    assert res.exit_code == 0 and "rule 123456 (radius 2):" in res.output and "its class" in res.output


def test_gen_writes_interchange_file_and_sidecar(tmp_path):
    out = tmp_path / "test.npz"
    res = run("gen", "ca", "--width", 20, "--radius", 2, "--steps", 20, "--n", 50, "--split", "test", "--seed", 0,
              "--out", out, "--show", 2)
    assert res.exit_code == 0, res.output
    assert "orbit 1" in res.output and "█" in res.output
    with np.load(out, allow_pickle=False) as f:
        states, rules = f["states"], f["rules"]
    assert states.shape == (50, 20, 20) and rules.shape == (50, 32)
    assert states.dtype == rules.dtype == np.uint8
    meta = json.loads((tmp_path / "test.meta.json").read_text())
    assert meta["generator"] == "ca" and meta["split"] == "test" and meta["seed"] == 0
    assert meta["config"]["radius"] == 2 and meta["n"] == 50
    # same seed, same bytes (the zip carries no timestamps)
    again = tmp_path / "again.npz"
    assert run("gen", "ca", "--n", 50, "--split", "test", "--out", again).exit_code == 0
    assert again.read_bytes() == out.read_bytes()


def test_gen_rule_and_init_options(tmp_path):
    res = run("gen", "ca", "--radius", 1, "--rule", "30,90", "--init", "single", "--width", 11, "--steps", 4,
              "--n-input", 1, "--n", 2, "--show", 2)
    assert res.exit_code == 0, res.output
    assert "rule 30" in res.output and "rule 90" in res.output
    assert "·····█·····" in res.output
    res = run("gen", "ca", "--init", "density=0.2", "--n", 3, "--out", tmp_path / "d.npz")
    assert res.exit_code == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--width", 4, "--radius", 2], "width must be at least 2r+1 = 5"),
        (["--radius", 5], "radius must be in 1..4"),
        (["--radius", 1, "--rule", 256], "out of range"),
        (["--steps", 1], "steps (orbit length T) must be at least 2"),
        (["--k", 20], "k must be in 1..16"),
        (["--n", 0], "--n must be a positive"),
        (["--n", -3], "--n must be a positive"),
        (["--split", "holdout"], "unknown split 'holdout'"),
        (["--widht", 20], "did you mean 'width'"),
        (["--width", "twenty"], "must be an integer"),
        (["--init", "checker"], "unknown init"),
        (["stray"], "unexpected argument"),
    ],
)
def test_gen_bad_input_one_line_exit_2_no_file(tmp_path, args, message):
    out = tmp_path / "bad.npz"
    res = run("gen", "ca", *args, "--out", out)
    assert res.exit_code == 2
    assert message in res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert list(tmp_path.iterdir()) == []


def test_plain_orbits_do_not_depend_on_task_fields(tmp_path):
    # the default task (10 given states, k = 1) needs 11 states; plain orbits of 8 are still fine to write
    res = run("gen", "ca", "--steps", 8, "--n", 5, "--out", tmp_path / "o.npz")
    assert res.exit_code == 0, res.output
    with np.load(tmp_path / "o.npz", allow_pickle=False) as f:
        assert f["states"].shape == (5, 8, 20)


def test_gen_unwritable_or_unknown(tmp_path):
    res = run("gen", "ca", "--n", 5, "--out", tmp_path / "missing" / "x.npz")
    assert res.exit_code == 2 and "does not exist" in res.output
    res = run("gen", "ca", "--n", 5, "--out", tmp_path)
    assert res.exit_code == 2 and "is a directory" in res.output
    res = run("gen", "life", "--n", 5)
    assert res.exit_code == 2 and "unknown generator 'life'" in res.output


PLUGIN = """
from dataclasses import dataclass

from generators import register
from generators.cellular_automata import CAConfig, CellularAutomata


@register("ca_from_env", CAConfig)
class FromEnv(CellularAutomata):
    \"\"\"Cellular automata registered by a module named in $TESTBED_PLUGINS.\"\"\"
"""


def test_plugins_from_environment(tmp_path, monkeypatch):
    from generators.core.registry import GENERATORS

    (tmp_path / "my_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert "ca_from_env" not in run("list").output
        res = run("list", env={"TESTBED_PLUGINS": "my_plugin"})
        assert res.exit_code == 0 and "ca_from_env  (my_plugin.FromEnv)" in res.output
        assert run("gen", "ca_from_env", "--n", 2, env={"TESTBED_PLUGINS": "my_plugin"}).exit_code == 0
        res = run("list", env={"TESTBED_PLUGINS": "no_such_plugin_module"})
        assert res.exit_code == 2 and "cannot import plugin module 'no_such_plugin_module'" in res.output
    finally:
        sys.modules.pop("my_plugin", None)
        GENERATORS.classes.pop("ca_from_env", None)


@pytest.mark.slow
def test_bench_generators_reports_ratios_of_rates_measured_in_one_run(tmp_path):
    res = run("bench", "generators", "--n", 2000, "--radius", 1, "--width", 12, "--steps", 6,
              "--json", tmp_path / "b.json")
    assert res.exit_code == 0, res.output
    f = json.loads((tmp_path / "b.json").read_text())
    assert (f["radius"], f["width"], f["steps"], f["examples"]) == (1, 12, 6, 2000)
    for name in ("cells_per_s", "evolve_cells_per_s", "reference_numpy_cells_per_s", "reference_python_cells_per_s",
                 "gen_command_cells_per_s"):
        assert np.isfinite(f[name]) and f[name] > 0, name
    # every ratio is the quotient of the rates it names (no timing claim: machines are noisy)
    assert f["speedup_vs_numpy"] == pytest.approx(f["cells_per_s"] / f["reference_numpy_cells_per_s"])
    assert f["speedup_vs_python"] == pytest.approx(f["cells_per_s"] / f["reference_python_cells_per_s"])
    assert f["gen_command_vs_numpy"] == pytest.approx(f["gen_command_cells_per_s"] / f["reference_numpy_cells_per_s"])
    assert f"ratio {f['speedup_vs_numpy']:.1f}x" in res.output


def test_help_texts_keep_square_brackets():
    # Rich markup would read "[sweep]" and "[cluster]" as style tags and drop them from the help
    res = run("sweep", "--help")
    assert res.exit_code == 0
    assert "[sweep] table" in res.output and "testbed[cluster]" in res.output
    assert "[sweep] is ignored" in run("train", "--help").output


def test_the_cli_loads_without_torch():
    """Commands that need no model (gen, list, collect, docs) start in a fraction of a second: importing the CLI
    must not import torch (it costs 1.5 s, which `testbed gen` end to end would pay on every file)."""
    import subprocess
    import sys

    code = "import sys, testbed.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
