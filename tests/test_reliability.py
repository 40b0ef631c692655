"""Reproducibility, atomic writes, resuming a sweep, failing jobs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY

from pairmnist import atomic
from pairmnist.jobs.job import completed, run_job


def test_same_seed_gives_bitwise_equal_results(make_cfg, tmp_path):
    records = []
    for attempt in range(2):
        cfg = make_cfg("model=twin", "seed=3", "trainer.max_epochs=2")
        cfg.paths.output_dir = str(tmp_path / f"run{attempt}")
        run_job(cfg)
        records.append(json.loads((tmp_path / f"run{attempt}" / "metrics.json").read_text()))
    a, b = records
    assert a["test_acc"] == b["test_acc"] and a["test_loss"] == b["test_loss"]
    assert a["history"] == b["history"]  # every epoch's loss and accuracy, bit for bit
    other = make_cfg("model=twin", "seed=4", "trainer.max_epochs=2")
    other.paths.output_dir = str(tmp_path / "other")
    run_job(other)
    assert json.loads((tmp_path / "other" / "metrics.json").read_text())["history"] != a["history"]


def test_crash_mid_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    atomic.write_json(target, {"test_acc": 0.9})
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_text('{"test_acc": 0.')  # half written ...
        raise RuntimeError("killed")  # ... when the process dies
    assert json.loads(target.read_text()) == {"test_acc": 0.9}

    def crash(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        atomic.write_json(target, {"test_acc": 0.5})
    assert json.loads(target.read_text()) == {"test_acc": 0.9}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary files left


def test_resume_skips_finished_jobs_and_reruns_missing_ones(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "model=shallow", "seed=0,1,2", f"hydra.sweep.dir={sweep}", *TINY]
    run_cli(*args)
    files = sorted(sweep.glob("*/metrics.json"))
    assert len(files) == 3
    before = {f: f.stat().st_mtime_ns for f in files}
    files[1].unlink()
    proc = run_cli(*args, "resume=true")
    assert proc.stderr.count("not retrained") + proc.stdout.count("not retrained") == 2
    assert files[1].exists()  # the missing job trained again
    assert all(f.stat().st_mtime_ns == before[f] for f in (files[0], files[2]))  # the others did not
    assert pd.read_csv(sweep / "summary.csv").n_runs.tolist() == [3]


def test_resume_retrains_when_the_config_changed(make_cfg):
    cfg = make_cfg("model=shallow", "resume=true")
    run_job(cfg)
    out = Path(cfg.paths.output_dir)
    assert completed(out, cfg) is not None
    assert completed(out, make_cfg("model=shallow", "model.lr=1e-3")) is None


def test_failing_job_is_recorded_and_the_others_summarised(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        "model=siamese",
        "model.lr=1e-3,1e30,1e-2",
        f"hydra.sweep.dir={sweep}",
        *TINY,
        "trainer.max_epochs=2",
        check=False,
    )
    assert proc.returncode != 0
    (failed,) = sweep.glob("siamese_*_lr1e+30_*")
    assert "1 job(s) failed" in proc.stderr and failed.name in proc.stderr
    assert (failed / "error.txt").read_text().startswith("FloatingPointError: train/loss is nan")
    summary = pd.read_csv(sweep / "summary.csv")
    assert sorted(summary["model.lr"]) == [1e-3, 1e-2] and summary.n_runs.tolist() == [1, 1]
    assert f"`{failed.name}`: failed: FloatingPointError" in (sweep / "summary.md").read_text()


def test_cli_unwritable_output_folder(run_cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = run_cli(f"hydra.run.dir={blocker}/run", check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        f"hydra.run.dir={blocker}/run: not a writable folder ({blocker} is a file)"
    ]
