"""Interchange files: `FILE.npz` (arrays) plus a sidecar `FILE.meta.json` (generator, version, config, split, seed).

For cellular automata the arrays are `states` (N, T, W) uint8 and `rules` (N, 2^(2r+1)) uint8 with rules[n, v] the
next cell for neighbourhood value v (leftmost cell most significant). Files are untrusted: loaded without pickle.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .errors import ConfigError

_UMASK = os.umask(0)
os.umask(_UMASK)


def meta_path(path: str | os.PathLike) -> Path:
    """data.npz -> data.meta.json (other names get .meta.json appended)."""
    path = Path(path)
    stem = path.name[: -len(".npz")] if path.name.endswith(".npz") else path.name
    return path.with_name(stem + ".meta.json")


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, before any work, if `path` cannot be written."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ConfigError(f"output path {str(path)!r} is a directory; give a file name such as data.npz")
    if not parent.is_dir():
        raise ConfigError(f"cannot write {str(path)!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"cannot write {str(path)!r}: directory {str(parent)!r} is not writable")
    return path


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call write(file_object) on a temporary file next to `path`, then rename it into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_npz(f, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed, but byte-for-byte reproducible: zip entries get a fixed timestamp."""
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with z.open(info, "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.ascontiguousarray(array), allow_pickle=False)


def save(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict) -> tuple[Path, Path]:
    """Write arrays and sidecar atomically (each file appears whole or not at all)."""
    path = check_writable(path)
    side = meta_path(path)
    atomic_write(path, lambda f: write_npz(f, arrays))
    atomic_write(side, lambda f: f.write((json.dumps(meta, indent=2) + "\n").encode()))
    return path, side


def load(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays and sidecar metadata ({} if the sidecar is absent) of an interchange file, never unpickling."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"data file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise ConfigError(f"cannot read {str(path)!r} as an .npz data file ({type(e).__name__}: {e})") from None
    meta = {}
    side = meta_path(path)
    if side.is_file():
        try:
            meta = json.loads(side.read_text())
        except (ValueError, OSError) as e:
            raise ConfigError(f"cannot read sidecar {str(side)!r} as JSON ({e})") from None
    return arrays, meta


def load_orbits(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict]:
    """(states (N, T, W), rules (N, 2^(2r+1)), meta) of a cellular-automata file, validated."""
    arrays, meta = load(path)
    missing = {"states", "rules"} - set(arrays)
    if missing:
        missing = ", ".join(sorted(missing))
        raise ConfigError(f"{str(path)!r} is not a cellular-automata file: missing array(s) {missing}")
    states, rules = arrays["states"], arrays["rules"]
    if states.ndim != 3 or rules.ndim != 2 or len(states) != len(rules):
        raise ConfigError(
            f"{str(path)!r}: expected states (N, T, W) and rules (N, 2^(2r+1)), got {states.shape} and {rules.shape}"
        )
    size = rules.shape[1]
    if size not in (8, 32, 128, 512):
        raise ConfigError(f"{str(path)!r}: rules have {size} columns; a radius 1..4 rule table has 8, 32, 128 or 512")
    if states.dtype != np.uint8 or rules.dtype != np.uint8 or states.max(initial=0) > 1 or rules.max(initial=0) > 1:
        raise ConfigError(f"{str(path)!r}: states and rules must be uint8 arrays of 0 and 1")
    return states, rules, meta
