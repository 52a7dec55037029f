"""Shared helpers of the tests: the tiny spec (and TOML for it), invoking the Typer app, and the one-line error
contract."""

import copy
import json

from typer.testing import CliRunner

from testbed.cli import app

runner = CliRunner()


def run(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def one_line_error(res, message):
    """Bad input: exit code 2, the message, one line, no traceback."""
    assert res.exit_code == 2, res.output
    assert message in res.output, res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


# The smallest spec that trains a real run in a few seconds: radius-1 automata, k = 1..2, a one-layer transformer.
TINY = {
    "name": "tiny",
    "seed": 0,
    "data": {"generator": "ca", "radius": 1, "width": 6, "steps": 5, "n_input": 3, "k": 2, "mixed_k": True},
    "model": {"name": "transformer", "n_layer": 1, "n_head": 2, "d_model": 16},
    "train": {"batch_size": 16, "max_steps": 4, "val_every": 2, "val_size": 32, "warmup_steps": 2, "threads": 1},
    "eval": {"k": [1, 2], "test_size": 32, "batch_size": 32},
}


IDENTITY = {"data": "generator", "model": "name"}


def merged(base: dict, extra: dict) -> dict:
    """Nested tables merged; a [data] or [model] table naming another generator or family replaces the base one."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        ident = IDENTITY.get(key)
        other = ident and isinstance(value, dict) and ident in value and value[ident] != out.get(key, {}).get(ident)
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not other:
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"


def to_toml(spec: dict, prefix: str = "") -> str:
    """A spec dict as TOML: scalars and lists as `key = value`, nested tables as [sections]."""
    lines = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in spec.items() if not isinstance(v, dict)]
    for key, value in spec.items():
        if isinstance(value, dict):
            lines += ["", f"[{prefix}{key}]", to_toml(value, f"{prefix}{key}.")]
    return "\n".join(lines)
