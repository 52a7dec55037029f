"""The extension path: a generator in someone else's package, named by `package.module:Class` in a spec or found
through the `testbed.plugins` entry-point group, runs through gen, train and eval."""

import json
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import one_line_error, run

PLUGIN = textwrap.dedent('''
    from dataclasses import dataclass, field

    import numpy as np

    from generators import SPLITS, ConfigError, Generator, Layout, check_split, register
    from generators.core.rng import hash64


    @dataclass(frozen=True)
    class ModSumConfig:
        length: int = field(default=6, metadata={"help": "numbers to add"})
        modulus: int = field(default=5, metadata={"help": "p: numbers and the sum are taken mod p"})

        def __post_init__(self):
            if self.length < 1 or self.modulus < 2:
                raise ConfigError("length must be >= 1 and modulus >= 2")


    @register("mod_sum", ModSumConfig)
    class ModSum(Generator):
        """A modular-arithmetic chain: x_1 + ... + x_n mod p, answered at a final '=' position."""

        def layout(self):
            n, p = self.config.length + 1, self.config.modulus
            coords = np.stack([np.zeros(n, int), np.arange(n)], 1)
            return Layout(vocab=tuple(str(i) for i in range(p)) + ("=",), seq_len=n, coords=coords, n_cols=n)

        def sample(self, split, seed, indices):
            c, idx = self.config, np.asarray(indices, np.uint64)
            xs = (hash64(seed, SPLITS.index(check_split(split)), idx[:, None], np.arange(c.length))
                  % np.uint64(c.modulus)).astype(np.int64)
            inputs = np.concatenate([xs, np.full((len(idx), 1), c.modulus)], axis=1)
            targets = inputs.copy()
            targets[:, -1] = xs.sum(1) % c.modulus
            loss_mask = np.zeros(inputs.shape, bool)
            loss_mask[:, -1] = True
            return {"inputs": inputs, "targets": targets, "loss_mask": loss_mask}
''')

def plugin_spec(tiny_spec, generator: str):
    return tiny_spec(filename="plugin.toml", name="plugin", data={"generator": generator, "length": 4},
                     eval={"k": []})


def make_package(root: Path, entry_point: bool) -> None:
    pkg = root / "modchain_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "tasks.py").write_text(PLUGIN)
    if entry_point:  # what `pip install` of a package declaring the entry point leaves on sys.path
        info = root / "modchain_plugin-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: modchain-plugin\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text("[testbed.plugins]\nmodchain = modchain_plugin.tasks\n")


def forget_plugin():
    from generators.core.registry import GENERATORS

    GENERATORS.classes.pop("mod_sum", None)
    for name in ("modchain_plugin", "modchain_plugin.tasks"):
        sys.modules.pop(name, None)


@pytest.mark.slow
def test_plugin_path_runs_through_gen_train_and_eval(tmp_path, monkeypatch, tiny_spec):
    make_package(tmp_path, entry_point=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        path = "modchain_plugin.tasks:ModSum"
        res = run("gen", path, "--n", 4, "--modulus", 7, "--out", tmp_path / "x.npz", "--show", 2)
        assert res.exit_code == 0, res.output
        spec = plugin_spec(tiny_spec, path)
        res = run("train", spec, "--out", tmp_path / "runs")
        assert res.exit_code == 0, res.output
        run_dir = Path(res.output.split()[1])
        assert json.loads((run_dir / "config.json").read_text())["data"]["generator"] == path
        res = run("eval", run_dir)
        assert res.exit_code == 0, res.output
        one_line_error(run("train", spec, "--out", tmp_path / "runs", "--set", "data.modulus=1"), "modulus >= 2")
        spec = plugin_spec(tiny_spec, "modchain_plugin.tasks:Nothing")
        one_line_error(run("train", spec), "has no 'Nothing'")
        spec = plugin_spec(tiny_spec, "no_such_package.tasks:ModSum")
        one_line_error(run("train", spec), "does not import")
        spec = plugin_spec(tiny_spec, "modchain_plugin.tasks:np")
        one_line_error(run("train", spec), "is not a registered generator")
    finally:
        forget_plugin()


def test_installed_plugins_register_through_entry_points(tmp_path, monkeypatch, tiny_spec):
    make_package(tmp_path, entry_point=True)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        res = run("list")
        assert res.exit_code == 0, res.output
        assert "mod_sum" in res.output  # listed beside the built-in generators
        spec = plugin_spec(tiny_spec, "mod_sum")
        res = run("train", spec, "--out", tmp_path / "runs")
        assert res.exit_code == 0, res.output
    finally:
        forget_plugin()
