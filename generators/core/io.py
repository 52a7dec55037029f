"""Interchange files: `FILE.npz` (arrays) plus a sidecar `FILE.meta.json` (format, generator, version, config, split,
seed, array shapes).

For cellular automata the arrays are `states` (N, T, W) uint8 and `rules` (N, 2^(2r+1)) uint8 with rules[n, v] the
next cell for neighbourhood value v (leftmost cell most significant). Three encodings of the same arrays, all read
by `load`:

    stored (default)  an uncompressed .npz: written as fast as the orbits are generated
    compressed        the same entries deflated (`--compress`): smaller, for small shared files
    bit-packed        `states_packed` (N, T, ceil(W / 8)) uint8 (np.packbits along the cells, big-endian bit order)
                      and `states_width` () int64 = W instead of `states` (`--pack`): 8x smaller, still fast;
                      meta.json records `"packing": {"states": "bits", "width": W}`

Files are untrusted: arrays are read without pickle, and every array header is checked against the bytes the file
really holds before anything is allocated.
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
from pathlib import Path

import numpy as np

from .errors import ConfigError

FORMAT = "testbed-interchange/2"
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
    if parent.exists() and not parent.is_dir():
        raise ConfigError(f"cannot write {str(path)!r}: {str(parent)!r} is not a directory")
    if not parent.is_dir():
        raise ConfigError(f"cannot write {str(path)!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"cannot write {str(path)!r}: directory {str(parent)!r} is not writable")
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clear_stale(path: Path) -> None:
    """Remove the temporary files of earlier writes of `path` whose process is gone (killed mid-write)."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        parts = tmp.name[len(path.name) + 2:].split(".")
        if parts and parts[0].isdigit() and int(parts[0]) != os.getpid() and not _pid_alive(int(parts[0])):
            tmp.unlink(missing_ok=True)


def _temporary(path: Path, write) -> Path:
    """write(file_object) into a fresh temporary file next to `path` (named after this process); its path."""
    _clear_stale(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):  # name the user's path, not the temporary one
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise
    return tmp


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call write(file_object) on a temporary file next to `path`, then rename it into place."""
    atomic_write_all([(path, write)])


def atomic_write_all(items) -> None:
    """Write several files so that they appear together or not at all: every temporary file is written first,
    then all are renamed; a rename that fails takes back the ones already made."""
    items = [(Path(p), w) for p, w in items]
    temps: list[tuple[Path, Path]] = []
    try:
        for path, write in items:
            temps.append((_temporary(path, write), path))
        done = []
        try:
            for tmp, path in temps:
                os.replace(tmp, path)
                done.append(path)
        except OSError as e:
            for path in done:
                path.unlink(missing_ok=True)
            raise OSError(e.errno, e.strerror, str(path)) from None
    finally:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)


def write_npz(f, arrays: dict[str, np.ndarray], compress: bool = False) -> None:
    """An .npz, byte-for-byte reproducible (zip entries get a fixed timestamp); stored unless `compress`."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(f, "w", compression=method) as z:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            with z.open(info, "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.ascontiguousarray(array), allow_pickle=False)


def pack_states(arrays: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict]:
    """Bit-pack the `states` of a cellular-automata export: (arrays to write, the meta.json packing entry)."""
    states = arrays["states"]
    width = states.shape[-1]
    packed = {k: v for k, v in arrays.items() if k != "states"}
    packed["states_packed"] = np.packbits(states, axis=-1)
    packed["states_width"] = np.asarray(width, np.int64)
    return packed, {"states": "bits", "width": int(width)}


def save(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict, compress: bool = False,
         pack: bool = False) -> tuple[Path, Path]:
    """Write arrays and sidecar together (both appear whole, or neither)."""
    path = check_writable(path)
    side = check_writable(meta_path(path))
    if pack:
        if "states" not in arrays:
            raise ConfigError("--pack bit-packs cellular-automata states; this generator's arrays hold none")
        arrays, packing = pack_states(arrays)
        meta = {**meta, "packing": packing}
    text = (json.dumps(meta, indent=2) + "\n").encode()
    atomic_write_all([(path, lambda f: write_npz(f, arrays, compress)), (side, lambda f: f.write(text))])
    return path, side


def export(generator, name: str, split: str, seed: int, n: int, out=None, compress: bool = False,
           pack: bool = False, producer: str = "") -> tuple[dict[str, np.ndarray], str]:
    """`testbed gen`: n examples of (split, seed) exported by the generator, written with their sidecar to `out` when
    given. Returns (the arrays, a line saying what was written or '')."""
    from .registry import to_dict

    arrays = generator.export(split, seed, n)
    if out is None:
        return arrays, ""
    meta = {"format": FORMAT, "generator": name, "version": generator.version, "config": to_dict(generator.config),
            "split": split, "seed": seed, "n": n,
            "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
            "testbed": producer}
    data_file, meta_file = save(out, arrays, meta, compress=compress, pack=pack)
    shapes = ", ".join(f"{k} {tuple(v.shape)} {v.dtype}" for k, v in arrays.items())
    return arrays, f"wrote {data_file} ({shapes}{', bit-packed' if pack else ''}) and {meta_file}"


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, max_bytes: int | None) -> np.ndarray:
    """One array of an .npz, its header checked against the bytes the entry really holds."""
    with z.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, _, dtype = read_header(f)
        except ValueError as e:
            raise ConfigError(f"{where}: entry {info.filename!r} is not a .npy array ({e})") from None
        if dtype.hasobject:
            raise ConfigError(f"{where}: entry {info.filename!r} holds Python objects; only plain arrays are read")
        header = f.tell()
        need = int(np.prod(shape, dtype=object)) * dtype.itemsize
        have = info.file_size - header
        if need != have:
            raise ConfigError(f"{where}: entry {info.filename!r} claims shape {tuple(shape)} {dtype} ({need:,} bytes) "
                              f"but holds {have:,} bytes: the file is damaged")
        if max_bytes is not None and need > max_bytes:
            raise ConfigError(f"{where}: entry {info.filename!r} ({need / 2**30:.1f} GiB) exceeds the memory cap "
                              f"({max_bytes / 2**30:.1f} GiB; raise it with --max-memory)")
    with z.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def load(path: str | os.PathLike, max_bytes: int | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays and sidecar metadata ({} if the sidecar is absent) of an interchange file, never unpickling; bit-packed
    states come back unpacked as `states`."""
    path = Path(path)
    where = repr(str(path))
    if path.is_dir():
        raise ConfigError(f"data file {where} is a directory; give an .npz file")
    if not path.is_file():
        raise ConfigError(f"data file {where} does not exist")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            npy = f.read(6) == b"\x93NUMPY"
        kind = "it is a single .npy array" if npy else "it is not an .npz archive"
        raise ConfigError(f"cannot read {where}: {kind}; testbed reads .npz files (testbed gen --out FILE.npz, "
                          "or np.savez)")
    try:
        with zipfile.ZipFile(path) as z:
            members = [i for i in z.infolist() if i.filename.endswith(".npy")]
            arrays = {i.filename[: -len(".npy")]: _read_member(z, i, where, max_bytes) for i in members}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise ConfigError(f"cannot read {where} as an .npz data file ({type(e).__name__}: {e})") from None
    meta = {}
    side = meta_path(path)
    if side.is_file():
        try:
            meta = json.loads(side.read_text())
        except (ValueError, OSError) as e:
            raise ConfigError(f"cannot read sidecar {str(side)!r} as JSON ({e})") from None
        if not isinstance(meta, dict):
            raise ConfigError(f"sidecar {str(side)!r} is not a JSON object")
    if "states_packed" in arrays:
        arrays = unpack_states(arrays, meta, where)
    return arrays, meta


def unpack_states(arrays: dict[str, np.ndarray], meta: dict, where: str) -> dict[str, np.ndarray]:
    """`states` from `states_packed`, the width read from the file and checked against meta.json's."""
    packed, width = arrays.pop("states_packed"), arrays.pop("states_width", None)
    if packed.dtype != np.uint8 or packed.ndim != 3:
        raise ConfigError(f"{where}: states_packed must be an (N, T, bytes) uint8 array, got {packed.shape} "
                          f"{packed.dtype}")
    width = int(width) if width is not None and width.ndim == 0 and width.dtype.kind in "iu" else None
    declared = (meta.get("packing") or {}).get("width")
    if width is not None and declared is not None and declared != width:
        raise ConfigError(f"{where}: meta.json declares bit-packed states of width {declared}, the file {width}; "
                          "one of them is damaged")
    width = width if width is not None else declared
    n_bytes = packed.shape[-1]
    if not isinstance(width, int) or not 8 * (n_bytes - 1) < width <= 8 * n_bytes:
        raise ConfigError(f"{where}: bit-packed states of {n_bytes} bytes per state cannot have width {width!r}; "
                          "the file or its meta.json is damaged")
    arrays["states"] = np.unpackbits(packed, axis=-1, count=width)
    return arrays


def check_orbits(arrays: dict[str, np.ndarray], path: str = "the file") -> tuple[np.ndarray, np.ndarray]:
    """(states (N, T, W), rules (N, 2^(2r+1))) of a cellular-automata file's arrays, validated."""
    missing = {"states", "rules"} - set(arrays)
    if missing:
        missing = ", ".join(sorted(missing))
        raise ConfigError(f"{path} is not a cellular-automata file: missing array(s) {missing}")
    states, rules = arrays["states"], arrays["rules"]
    if states.ndim != 3 or rules.ndim != 2 or len(states) != len(rules):
        raise ConfigError(
            f"{path}: expected states (N, T, W) and rules (N, 2^(2r+1)), got {states.shape} and {rules.shape}"
        )
    if not len(states):
        raise ConfigError(f"{path} holds no orbits (N = 0)")
    size = rules.shape[1]
    if size not in (8, 32, 128, 512):
        raise ConfigError(f"{path}: rules have {size} columns; a radius 1..4 rule table has 8, 32, 128 or 512")
    if states.dtype != np.uint8 or rules.dtype != np.uint8 or states.max(initial=0) > 1 or rules.max(initial=0) > 1:
        raise ConfigError(f"{path}: states and rules must be uint8 arrays of 0 and 1")
    return states, rules


def load_orbits(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict]:
    """(states (N, T, W), rules (N, 2^(2r+1)), meta) of a cellular-automata file, validated."""
    arrays, meta = load(path)
    return (*check_orbits(arrays, repr(str(path))), meta)
