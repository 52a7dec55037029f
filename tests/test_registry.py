"""Registry-wide contract: every registered generator is deterministic and returns well-formed arrays."""

import re
from pathlib import Path

import numpy as np
import pytest

import generators
from generators.core import ConfigError
from generators.core.registry import GENERATORS, build_config


@pytest.fixture(params=generators.names())
def generator(request):
    return generators.make(request.param)


def test_contract_shapes_dtypes_masks(generator):
    lay = generator.layout()
    s = generator.sample("train", 0, np.arange(16))
    n, length = 16, lay.seq_len
    assert s["inputs"].shape == s["targets"].shape == s["loss_mask"].shape == (n, length)
    assert s["inputs"].dtype == s["targets"].dtype == np.int64 and s["loss_mask"].dtype == bool
    assert s["inputs"].min() >= 0 and s["inputs"].max() < len(lay.vocab)
    assert s["targets"][s["loss_mask"]].max() < len(lay.vocab)
    assert s["loss_mask"].any(axis=1).all(), "every example scores at least one position"
    for key, value in s.items():
        assert value.shape[0] == n and value.shape in ((n,), (n, length)), key
        assert np.issubdtype(value.dtype, np.integer) or value.dtype == bool, key
    assert lay.coords.shape == (length, 2)


def test_contract_determinism(generator):
    for split in generators.SPLITS:
        a = generator.sample(split, 11, np.arange(32))
        b = generator.sample(split, 11, np.arange(32))
        parts = [generator.sample(split, 11, np.arange(i, i + 8)) for i in range(0, 32, 8)]
        for key in a:
            assert a[key].tobytes() == b[key].tobytes()
            assert np.array_equal(np.concatenate([p[key] for p in parts]), a[key])
    assert not np.array_equal(generator.sample("train", 1, range(32))["inputs"],
                              generator.sample("train", 2, range(32))["inputs"])


def test_contract_export_and_show(generator):
    arrays = generator.export("test", 0, 4)
    assert all(len(v) == 4 for v in arrays.values())
    assert isinstance(generator.show(arrays, 2), str)


def test_unknown_generator_lists_valid_names():
    with pytest.raises(ConfigError, match=r"unknown generator 'cca' \(did you mean 'ca'\?\); valid: .*ca"):
        generators.make("cca")


def test_config_coercion_from_cli_strings():
    cfg = build_config(generators.get("ca").Config, {"width": "24", "rule": "30,90", "mixed_k": "true",
                                                     "split_fractions": "0.6,0.2,0.2", "radius": "1"})
    assert cfg.width == 24 and cfg.rule == (30, 90) and cfg.mixed_k is True and cfg.split_fractions == (0.6, 0.2, 0.2)
    with pytest.raises(ConfigError, match="mixed_k must be true or false"):
        build_config(generators.get("ca").Config, {"mixed_k": "maybe"})


def test_register_requires_frozen_config():
    import dataclasses

    @dataclasses.dataclass
    class Loose:
        a: int = 1

    with pytest.raises(TypeError, match="frozen"):
        generators.register("loose", Loose)


def test_readme_worked_example_registers_a_working_generator():
    """CONTRIBUTING.md's 'Adding a generator' example runs as written and passes the registry contract."""
    readme = (Path(__file__).parents[1] / "CONTRIBUTING.md").read_text()
    code = re.search(r"```python\n(# my_generators/parity\.py.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    try:
        exec(compile(code, "README-example", "exec"), namespace)
        gen = generators.make("parity", {"length": 12})
        s = gen.sample("train", 0, np.arange(50))
        bits = s["inputs"][:, :12]
        assert np.array_equal(s["targets"][:, -1], bits.sum(1) % 2)
        assert s["loss_mask"][:, -1].all() and not s["loss_mask"][:, :-1].any()
        again = gen.sample("train", 0, np.arange(50))
        assert np.array_equal(again["inputs"], s["inputs"])
    finally:
        GENERATORS.classes.pop("parity", None)
