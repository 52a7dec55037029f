import os

# Tests run on 2 cores next to each other's processes: keep torch and BLAS to one thread each (set before torch is
# imported, and again on torch itself: tiny tensors gain nothing from threads, and two threads beside a busy core
# spin-wait, 40x slower).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from helpers import TINY, merged, to_toml  # noqa: E402

torch.set_num_threads(1)

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
