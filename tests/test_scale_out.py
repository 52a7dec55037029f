"""Scaling out with existing engines: Lightning DDP over two CPU processes (gloo) and submitit's local executor."""

import json

import pytest
import torch
from helpers import one_line_error, run

from testbed.data import StepBatches


@pytest.fixture
def spec(tiny_spec):
    return tiny_spec(filename="scale.toml", name="scale",
                     data={"width": 8, "steps": 4, "n_input": 2, "task": "RO-S", "k": 1, "mixed_k": False},
                     train={"batch_size": 8, "max_steps": 12, "val_every": 6, "val_size": 16, "accelerator": "cpu"},
                     eval={"k": [], "batch_size": 512}, sweep={"grid": {"model.n_layer": [1, 2, 3]}})


def weights(runs_dir):
    (run_dir,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    return torch.load(run_dir / "model.pt", weights_only=True), json.loads((run_dir / "result.json").read_text())


def test_ranks_split_the_single_process_batch():
    """Rank r of w takes its own slice of every step's examples; together the ranks see the single-process batch."""
    single = list(StepBatches(8, 3, lambda: 0))
    ranks = [list(StepBatches(4, 3, lambda: 0, rank=r, world=2)) for r in (0, 1)]
    for step in range(3):
        assert not set(ranks[0][step]) & set(ranks[1][step])
        assert sorted(ranks[0][step] + ranks[1][step]) == single[step]


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(spec, tmp_path):
    """Two gloo ranks of 4 examples each reproduce one process of 8: the same data split in two and the gradients
    averaged. Had both ranks seen the same examples, the weights would follow a batch of 4 instead (checked too)."""
    ddp = run("train", spec, "--out", tmp_path / "ddp", "--devices", "2", "--strategy", "ddp_spawn",
              "--set", "train.batch_size=4")
    assert ddp.exit_code == 0, ddp.output
    single = run("train", spec, "--out", tmp_path / "single")
    assert single.exit_code == 0, single.output
    half = run("train", spec, "--out", tmp_path / "half", "--set", "train.batch_size=4")
    assert half.exit_code == 0, half.output
    (w_ddp, r_ddp), (w_one, r_one), (w_half, _) = (weights(tmp_path / d) for d in ("ddp", "single", "half"))
    assert r_ddp["steps"] == r_one["steps"] == 12
    for name in w_one:
        torch.testing.assert_close(w_ddp[name], w_one[name], atol=1e-5, rtol=1e-4)
    assert any(not torch.allclose(w_half[n], w_one[n], atol=1e-4) for n in w_one)
    for a, b in zip(r_ddp["test"], r_one["test"]):
        assert a["exact_match"] == pytest.approx(b["exact_match"], abs=1 / 32)


@pytest.mark.slow
def test_submitit_local_reports_a_failed_job_and_a_recorded_divergence_and_finishes_the_others(spec, tmp_path):
    pytest.importorskip("submitit")
    out = tmp_path / "runs"
    ids = [line.split()[0] for line in run("sweep", spec, "--dry-run", "--out", out).output.splitlines()[:3]]
    (out / ids[0]).mkdir(parents=True)
    (out / ids[0] / "result.json").write_text(json.dumps(  # a recorded outcome: reported, not resubmitted
        {"run_id": ids[0], "status": "diverged", "error": "training loss became nan at step 3", "test": []}))
    (out / ids[1] / "checkpoints").mkdir(parents=True)
    (out / ids[1] / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")  # this job fails when it resumes
    res = run("sweep", spec, "--out", out, "--launcher", "submitit", "--cluster", "local", "--max-parallel", "3")
    assert res.exit_code == 2, res.output
    assert f"diverged {ids[0]}" in res.output and "submitted 2 runs" in res.output
    assert "failed" in res.output and "corrupt or truncated" in res.output, res.output
    assert "1 of 3 runs failed" in res.output
    assert (out / ids[2] / "result.json").is_file() and not (out / ids[1] / "result.json").exists()
    again = run("sweep", spec, "--out", out, "--launcher", "submitit", "--cluster", "local", "--force")
    assert again.exit_code == 0, again.output
    assert all(json.loads((out / i / "result.json").read_text())["status"] == "done" for i in ids)


def test_launcher_bad_input(spec, tmp_path):
    one_line_error(run("sweep", spec, "--launcher", "slurmish", "--out", tmp_path), "unknown launcher 'slurmish'")
    one_line_error(run("sweep", spec, "--launcher", "submitit", "--cluster", "nowhere", "--out", tmp_path),
                   "submitit cannot use cluster 'nowhere'")


def test_a_refused_submission_is_reported_in_one_line(spec, tmp_path, monkeypatch):
    submitit = pytest.importorskip("submitit")

    def refuse(self, *args, **kwargs):
        raise RuntimeError("sbatch: error: invalid partition specified: gpu")

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", refuse)
    res = run("sweep", spec, "--out", tmp_path / "runs", "--launcher", "submitit", "--cluster", "local")
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "submission of 3 runs failed: sbatch: error: invalid partition" in res.output
    assert res.output.strip().splitlines()[-1].startswith("error: 3 of 3 runs failed")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["killed", "interrupted"])
def test_a_pool_worker_leaves_no_run_training_once_its_sweep_stops(monkeypatch, how):
    """A sweep killed outright (the worker is re-parented) or interrupted by a signal that reached it alone (`kill
    -INT PID`, not Ctrl-C to the whole group: it sets its stop event) leaves no worker training on: the guard sends
    the worker the Ctrl-C its run stops on, waits for the run to save, and the worker leaves."""
    import os
    import signal
    import threading
    import time

    from testbed import sweep

    def wait_for(n):
        for _ in range(200):
            if len(got) >= n:
                break
            time.sleep(0.01)
        time.sleep(0.1)

    got = []
    monkeypatch.setattr(sweep, "_ORPHANED", [])  # this process's own state left as it was after the test
    monkeypatch.setattr(sweep, "_BUSY", [])
    previous = signal.signal(signal.SIGINT, lambda *_: got.append("interrupted"))
    try:
        parent, stop = os.getppid(), threading.Event()
        monkeypatch.setattr(os, "getppid", lambda: parent)
        sweep._BUSY.append("a run")
        sweep.orphan_guard(stop, poll_s=0.01, leave=lambda: got.append("left"))
        time.sleep(0.1)
        assert not got  # the sweep is alive and running: nothing happens
        if how == "killed":
            monkeypatch.setattr(os, "getppid", lambda: 1)  # re-parented: the sweep that started the worker is gone
        else:
            stop.set()
        wait_for(1)
        assert got == ["interrupted"]  # the run is saving: the worker waits for it
        sweep._BUSY.clear()
        wait_for(2)
        assert got == ["interrupted", "left"] and sweep._ORPHANED  # and no further run would start here
    finally:
        signal.signal(signal.SIGINT, previous)
