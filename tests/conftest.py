import os

import pytest
from helpers import TINY, merged, to_toml

# Tests run on 2 cores next to each other's processes: keep torch and BLAS to one thread each.
os.environ.setdefault("OMP_NUM_THREADS", "1")

@pytest.fixture
def tiny_spec(tmp_path):
    """tiny_spec(**overrides): the TINY spec with sections merged in (sweep=..., presets=..., data={...}), written to
    a TOML file whose path is returned; tiny_spec(as_dict=True, ...) returns the dict instead."""

    def make(as_dict: bool = False, filename: str = "tiny.toml", **overrides):
        spec = merged(TINY, overrides)
        if as_dict:
            return spec
        path = tmp_path / filename
        path.write_text(to_toml(spec) + "\n")
        return path

    return make
