"""Bad input to every command: exit code 2, one line on stderr, no traceback, and nothing left behind."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY, run, to_toml

BIG = str(10**12)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny finished run, its spec and a shared workspace (copied per test, so tests cannot damage each other)."""
    root = tmp_path_factory.mktemp("trained")
    spec = root / "tiny.toml"
    spec.write_text(to_toml(TINY) + "\n")
    res = run("train", spec, "--out", root / "runs")
    assert res.exit_code == 0, res.output
    return root, Path(res.output.split()[1]).name


@pytest.fixture
def work(trained, tmp_path, monkeypatch):
    root, run_id = trained
    shutil.copytree(root, tmp_path / "w")
    monkeypatch.chdir(tmp_path / "w")
    return tmp_path / "w", run_id


def files(root: Path) -> set:
    return {p.relative_to(root) for p in root.rglob("*")}


def write_npz(path, **arrays):
    np.savez(path, **arrays)


# (arguments, expected fragment of the message); {spec}, {run} and {dir} are filled in per test
CASES = [
    # list
    (["list", "models", "--rule", "110"], "--rule applies to `testbed list rules`"),
    # gen
    (["gen", "ca", "--n", BIG, "--out", "x.npz"], "memory cap"),
    (["gen", "ca", "--width", str(10**9), "--out", "x.npz"], "memory cap"),
    (["gen", "ca", "--steps", str(10**9), "--out", "x.npz"], "memory cap"),
    (["gen", "mqar", "--vocab-size", BIG], "vocab_size = 1,000,000,000,000"),
    (["gen", "zipf_memory", "--alpha", "nan"], "must be a finite number"),
    (["gen", "zipf_memory", "--n-tokens", BIG], "n_tokens"),
    (["gen", "kv_segments", "--key-len", "40"], "n_symbols ** key_len"),
    (["gen", "ca", "--n", "0"], "--n must be a positive"),
    (["gen", "ca", "--show", "-1"], "--show must be >= 0"),
    (["gen", "ca", "--split", "holdout"], "unknown split"),
    (["gen", "life"], "unknown generator 'life'"),
    (["gen", "ca", "--out", "."], "is a directory"),
    (["gen", "ca", "--out", "missing/x.npz"], "does not exist"),
    (["gen", "ca", "--out", "tiny.toml/x.npz"], "is not a directory"),
    (["gen", "mqar", "--pack", "--out", "x.npz"], "--pack bit-packs cellular-automata states"),
    (["gen", "ca", "--width", "twenty"], "must be an integer"),
    (["gen", "ca", "stray"], "unexpected argument"),
    (["gen", "ca", "--radius", "1", "--rule", "256"], "out of range"),
    # train
    (["train", "missing.toml"], "does not exist"),
    (["train", "runs"], "is a directory"),
    (["train", "{spec}", "--set", f"model.d_model={10**9}"], "memory cap"),
    (["train", "{spec}", "--set", "model.n_layer=100000"], "n_layer must be in 1..1024"),
    (["train", "{spec}", "--set", f"data.width={10**9}"], "sequences of that many tokens"),
    (["train", "{spec}", "--set", f"train.batch_size={10**8}"], "memory cap"),
    (["train", "{spec}", "--set", "train.accelerator=tpu"], "not available on this machine"),
    (["train", "{spec}", "--set", "train.precision=banana"], "unknown train.precision 'banana'"),
    (["train", "{spec}", "--strategy", "nosuch"], "unknown train.strategy 'nosuch'"),
    (["train", "{spec}", "--set", "train.lr=nan"], "must be a finite number"),
    (["train", "{spec}", "--set", "train.max_time_s=-1"], "must be >= 0"),
    (["train", "{spec}", "--logger", "mlflow"], "unknown train.logger"),
    (["train", "{spec}", "--set", "model.n_layer"], "malformed --set"),
    (["train", "{spec}", "--set", "model.n_layers=2"], "did you mean 'n_layer'"),
    (["train", "{spec}", "--set", "data=5"], "malformed --set"),
    (["train", "data5.toml"], "[data] of spec"),
    (["train", "{spec}", "--seed", "-1"], "seed must be an integer"),
    (["train", "{spec}", "--seed", str(2**32)], "seed of a run must be below 2^32"),
    (["train", "{spec}", "--num-nodes", BIG], "needs a launcher that starts every node"),
    (["train", "{spec}", "--set", f"train.threads={BIG}"], "train.threads must be in 0..1024"),
    (["train", "{spec}", "--set", f"train.num_workers={BIG}"], "train.num_workers must be in 0..64"),
    (["train", "{spec}", "--bogus"], "No such option"),
    # eval
    (["eval", "."], "is not a run directory"),
    (["eval", "tiny.toml"], "is a file, not a run directory"),
    (["eval", "nowhere"], "does not exist"),
    (["eval", "{run}", "--size", "0"], "--size must be positive"),
    (["eval", "{run}", "--size", str(10**9)], "memory cap"),
    (["eval", "{run}", "--k", "0"], "--k values must be at least 1"),
    (["eval", "{run}", "--k", "9"], "cannot evaluate k = 9"),
    (["eval", "{run}", "--iterations", "2"], "is not weight-tied"),
    (["eval", "{run}", "--rollout", "-1"], "--rollout must be at least 1"),
    (["eval", "{run}", "--baseline", "oracle"], "has no baseline 'oracle'"),
    (["eval", "{run}", "--data", "arr.npy"], "single .npy array"),
    (["eval", "{run}", "--data", "empty.npz"], "holds no orbits"),
    (["eval", "{run}", "--data", "noise.npz"], "not an .npz archive"),
    (["eval", "{run}", "--data", "liar.npz"], "claims shape"),
    (["eval", "{run}", "--data", "packed.npz"], "meta.json declares bit-packed states of width 13"),
    (["eval", "{run}", "--data", "runs"], "is a directory"),
    (["eval", "{run}", "--by", "colour"], "cannot slice by 'colour'"),
    # collect, plot
    (["collect", "nowhere"], "does not exist"),
    (["collect", "runs", "--against", "model"], "--against takes COLUMN=VALUE"),
    (["collect", "runs", "--against", "colour=red"], "unknown column 'colour'"),
    (["plot", "depth", "results.csv", "--by", "loops"], "--by picks the heatmap's rows"),
    (["plot", "depth", "noise.csv"], "not a CSV results table"),
    (["plot", "depth", "zz.csv"], "holds 'zz', not a number"),
    (["plot", "depth", "short.csv"], "fewer cells than the header"),
    (["plot", "depth", "old.csv"], "predates intervals"),
    (["plot", "depth", "old.csv", "--out", "fig.xyz"], "must end in .png, .pdf or .svg"),
    (["plot", "depth", "runs"], "is a directory"),
    (["plot", "widths", "old.csv"], "unknown view"),
    # sweep, reproduce, quickstart
    (["sweep", "{spec}", "--seeds", ""], "--seeds is empty"),
    (["sweep", "{spec}", "--seeds", "-1"], "non-negative"),
    (["sweep", "{spec}", "--seeds", "0,0"], "lists a seed twice"),
    (["sweep", "{spec}", "--jobs", "0"], "--jobs must be at least 1"),
    (["sweep", "{spec}", "--jobs", BIG], "--jobs must be at most 1,024"),
    (["sweep", "{spec}", "--partition", "gpu"], "--partition applies to --launcher submitit"),
    (["sweep", "{spec}", "--seeds", BIG], "seed of a run must be below 2^32"),
    (["sweep", "{spec}", "--launcher", "slurmish"], "unknown launcher"),
    (["reproduce", "p2-lookahed"], "did you mean 'p2-lookahead'"),
    (["reproduce", "p2-lookahead", "--preset", "gpu"], "has no preset 'gpu'"),
    (["reproduce", "p2-lookahead", "--seeds", "x"], "must be an integer"),
    (["quickstart", "--jobs", "-1"], "--jobs must be at least 1"),
    (["quickstart", "--seeds", "1,1"], "lists a seed twice"),
    # closed-form memories, benchmarks, listings, the root
    (["memory-law", "error-vs-d", "--alpha", "nan"], "a finite alpha"),
    (["memory-law", "error-vs-d", "--n", BIG], "memory cap"),
    (["memory-law", "joint", "--d", "0"], "--d must be positive"),
    (["capacity", "--d", str(10**9)], "memory cap"),
    (["capacity", "--trials", "0"], "must be at least 1"),
    (["bench", "generators", "--width", str(10**9)], "memory cap"),
    (["bench", "generators", "--n", "0"], "--n must be positive"),
    (["bench", "train", "--budget", "-1"], "--budget must be a finite positive number"),
    (["bench", "train", "--seeds", "0,x"], "--seeds"),
    (["bench", "train", "--threads", BIG], "threads must be in 0..1024"),
    # the second battery (issue 33): newer commands held to the same standard
    (["probe", "{run}", "--out", "map.xyz"], "must end in .png, .pdf or .svg"),
    (["probe", "{run}", "--out", "nowhere/map.png"], "does not exist"),
    (["probe", "{run}", "--k", str(10**9)], "--k"),
    (["probe", "{run}", "--ridge", "inf"], "--ridge must be a positive finite number"),
    (["memory-law", "error-vs-d", "--plot", "fig.xyz"], "must end in .png, .pdf or .svg"),
    (["memory-law", "error-vs-d", "--trials", BIG], "memory cap"),
    (["capacity", "--plot", "fig.xyz"], "must end in .png, .pdf or .svg"),
    (["capacity", "--floor", "1.5"], "--floor must be a share in (0, 1]"),
    (["capacity", "--floor", "0"], "--floor must be a share in (0, 1]"),
    (["docs", "rep-damaged", "--to", "pages"], "is not a reproduction's meta.json"),
    (["docs", "rep-list", "--to", "pages"], "not a JSON object"),
    (["docs", "rep-binary", "--to", "pages"], "is not a CSV table"),
    (["docs", "rep-variant", "--to", "pages"], "is not a reproduction's meta.json"),
    (["plot", "capacity", "nosplit.csv"], "no 'split' column"),
    (["plot", "memory", "nosplit.csv"], "no 'split' column"),
    (["plot", "depth", "k15.csv"], "k holds '1.5', not a whole number"),
    (["plot", "heatmap", "kbig.csv"], "not a whole number"),
    (["plot", "iterations", "kinf.csv"], "not a whole number"),
    (["plot", "depth", "knan.csv"], "not a whole number"),
    (["plot", "memory", "depth.csv"], "no linear-memory rows"),
    (["reproduce", "cabannes-joint", "--set", "model.nosuch=1"], "computed in closed form"),
    (["reproduce", "p2-lookahead", "--max-parallel", "0"], "--max-parallel must be at least 1"),
    (["reproduce", "p2-lookahead", "--set", "train.init_from=nowhere"], "train.init_from"),
    (["collect", "damaged-runs"], "no run could be collected"),
    (["bench", "train", "--budget", "nan"], "--budget must be a finite positive number"),
    (["gen", "ca", "--n-input", "30", "--steps", "20"], "n_input"),
    (["gen", "facts", "--n-entities", str(10**9), "--name-tokens", "2"], "memory cap"),
    (["train", "{spec}", "--set", "train.update=sparse"], "memory slots"),
    (["train", "{spec}", "--set", "train.algorithm=grpo", "--set", "train.init_from=broken-run"], "model.pt"),
    (["train", "{spec}", "--set", "train.max_steps=5", "--logger", "wandb"], "needs the wandb package"),
    (["train", "{spec}", "--set", "train.plateau_steps=100"], "train.plateau_steps (100) must lie between"),
    (["train", "{spec}", "--set", "train.plateau_steps=4", "--set", "train.plateau_delta=-0.1"],
     "plateau_delta finite"),
    (["gen", "ca", "--n", "3", "{env:TESTBED_MAX_MEMORY=banana}"], "'banana' ($TESTBED_MAX_MEMORY)"),
    (["list", "colours"], "unknown listing"),
    (["list", "rules", "--radius", "9"], "radius must be in 1..4"),
    (["--max-memory", "banana", "list"], "not a positive size"),
]


def prepare(root: Path, run_id: str) -> None:
    (root / "data5.toml").write_text('data = 5\n[model]\nname = "transformer"\n')
    np.save(root / "arr.npy", np.zeros(3))
    write_npz(root / "empty.npz", states=np.zeros((0, 5, 6), np.uint8), rules=np.zeros((0, 8), np.uint8))
    (root / "noise.npz").write_bytes(np.random.default_rng(0).bytes(300))
    import io
    import zipfile

    lie = io.BytesIO()  # a well-formed archive whose array header claims (10^12, 8, 12) over 96 bytes
    np.lib.format.write_array_header_1_0(lie, {"descr": "|u1", "fortran_order": False, "shape": (10**12, 8, 12)})
    with zipfile.ZipFile(root / "liar.npz", "w") as z:
        z.writestr("states.npy", lie.getvalue() + bytes(96))
    write_npz(root / "packed.npz", states_packed=np.zeros((2, 5, 1), np.uint8), states_width=np.asarray(6),
              rules=np.zeros((2, 8), np.uint8))
    (root / "packed.meta.json").write_text(json.dumps({"packing": {"states": "bits", "width": 13}}))
    (root / "noise.csv").write_bytes(b"\xff\xfe\x00garbage\x81")
    header = "config_id,model,split,slice,value,k,exact_match,cell_accuracy,exact_match_nontrivial,exact_match_lo," \
             "exact_match_hi,n_seeds\n"
    (root / "zz.csv").write_text(header + "a,transformer,test,k,1,1,zz,0.5,0.5,0.4,0.6,3\n")
    (root / "short.csv").write_text(header + "a,transformer,test,k,1,1\n")
    (root / "old.csv").write_text("run_id,model,split,slice,value,k,exact_match,cell_accuracy\n"
                                  "a,transformer,test,k,1,1,0.5,0.9\n")
    depth = header.replace("exact_match_hi,", "exact_match_hi,exact_match_nontrivial_lo,exact_match_nontrivial_hi,"
                           "d_model,iterations,layers,")
    for name, k in (("k15", "1.5"), ("kbig", "1e400"), ("kinf", "inf"), ("knan", "nan")):
        (root / f"{name}.csv").write_text(depth + f"a,transformer,test,k,1,{k},0.5,0.5,0.5,0.4,0.6,0.4,0.6,64,2,2,3\n")
    (root / "depth.csv").write_text(depth + "a,transformer,test,k,1,1,0.5,0.5,0.5,0.4,0.6,0.4,0.6,64,,2,3\n")
    (root / "nosplit.csv").write_text("config_id,model,slice,value,k,exact_match,cell_accuracy,d_model\n"
                                      "a,transformer,n_pairs,2,,0.5,0.9,64\n")
    meta = {"figure": "quickstart", "preset": "cpu", "wall_minutes": 1.0, "runs": 6, "cores": 2, "torch": "2",
            "git_commit": "abc", "finished": "2026-12-05T03:00:00"}
    for name, content in (("rep-damaged", "{not json"), ("rep-list", "[1, 2]"), ("rep-binary", json.dumps(meta)),
                          ("rep-variant", json.dumps(meta))):
        (root / name / "quickstart").mkdir(parents=True)
        (root / name / "quickstart" / "meta.json").write_text(content)
    (root / "rep-binary" / "quickstart" / "comparison.csv").write_bytes(b"\xff\xfe\x00garbage\x81")
    (root / "rep-variant" / "quickstart+bad").mkdir()
    (root / "rep-variant" / "quickstart+bad" / "meta.json").write_text("{}")
    damaged = root / "damaged-runs" / run_id
    shutil.copytree(root / "runs" / run_id, damaged)
    (damaged / "outcomes.npz").write_bytes(b"not an archive")
    broken = root / "broken-run"
    shutil.copytree(root / "runs" / run_id, broken)
    (broken / "model.pt").write_bytes(b"not a checkpoint")


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(work, args, message, monkeypatch):
    root, run_id = work
    prepare(root, run_id)
    before = files(root)
    for env in [a for a in args if a.startswith("{env:")]:  # an environment variable the case sets
        monkeypatch.setenv(*env[5:-1].split("=", 1))
    args = [a.format(spec="tiny.toml", run=f"runs/{run_id}", dir=".") for a in args if not a.startswith("{env:")]
    res = run(*args)
    assert res.exit_code == 2, res.output
    assert message in res.output, res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert files(root) == before, files(root) ^ before  # nothing written, not even a run directory or a temp file


def test_a_blocked_sidecar_writes_neither_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.meta.json").mkdir()
    res = run("gen", "ca", "--n", "4", "--out", "x.npz")
    assert res.exit_code == 2 and "is a directory" in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.npz").exists()


def test_the_temp_file_of_a_killed_write_is_removed_by_the_next_write(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process id that no longer runs
    stale = tmp_path / f".x.npz.{dead.pid}.0badc0de.tmp"
    stale.write_bytes(b"half an archive")
    alive = tmp_path / f".x.npz.{__import__('os').getpid()}.1111.tmp"  # ours (alive): left alone
    alive.write_bytes(b"in progress")
    assert run("gen", "ca", "--n", "4", "--out", "x.npz").exit_code == 0
    assert not stale.exists() and alive.exists() and (tmp_path / "x.npz").is_file()
