"""The Zipf memory generator: frequencies, the map, and bad inputs."""

import numpy as np
import pytest

import generators
from generators.core import ConfigError


def test_frequencies_follow_zipf_and_targets_follow_the_map():
    gen = generators.make("zipf_memory", {"n_tokens": 50, "n_classes": 5, "alpha": 1.5})
    s = gen.sample("train", 0, np.arange(200_000))
    counts = np.bincount(s["inputs"][:, 0], minlength=50) / 200_000
    assert np.abs(counts - gen.probabilities).max() < 0.005
    assert np.array_equal(s["targets"][:, 0], s["inputs"][:, 0] % 5)
    rnd = generators.make("zipf_memory", {"n_tokens": 50, "n_classes": 5, "mapping": "random"})
    again = generators.make("zipf_memory", {"n_tokens": 50, "n_classes": 5, "mapping": "random"})
    assert np.array_equal(rnd.mapping, again.mapping) and set(rnd.mapping.tolist()) == set(range(5))


def test_gen_cli_writes_and_shows(tmp_path):
    from typer.testing import CliRunner

    from testbed.cli import app

    res = CliRunner().invoke(app, ["gen", "zipf_memory", "--n-tokens", "100", "--n", "10", "--show", "3",
                                   "--out", str(tmp_path / "z.npz")])
    assert res.exit_code == 0, res.output
    assert "x=" in res.output and (tmp_path / "z.meta.json").is_file()


@pytest.mark.parametrize("config, message", [
    ({"alpha": 0.0}, "alpha must be positive"),
    ({"alpha": -1.0}, "alpha must be positive"),
    ({"n_tokens": 3, "n_classes": 5}, "1 <= M <= N"),
    ({"mapping": "hash"}, "unknown mapping"),
])
def test_bad_input(config, message):
    with pytest.raises(ConfigError, match=message):
        generators.make("zipf_memory", config)
