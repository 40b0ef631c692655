"""Reproducibility, atomic writes, resuming a sweep, failing jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import CLI_ENV, RUN, TINY
from omegaconf import OmegaConf
from test_report import write_job

from pairmnist import atomic
from pairmnist.jobs.hydra_callbacks import WriteReport
from pairmnist.train import completed
from pairmnist.train import run as run_job


def test_same_seed_gives_bitwise_equal_results(make_cfg, tmp_path):
    records = []
    for attempt in range(2):
        cfg = make_cfg("model=twin", "seed=3", "trainer.max_epochs=2", "threads=1")  # bitwise: one thread count
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
    assert completed(out, make_cfg("model=shallow", "model.optimizer.lr=1e-3")) is None


def test_failing_job_is_recorded_and_the_others_summarised(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        "model=siamese",
        "model.optimizer.lr=1e-3,1e30,1e-2",
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
    assert sorted(summary["lr"]) == [1e-3, 1e-2] and summary.n_runs.tolist() == [1, 1]
    assert f"`{failed.name}`: failed: FloatingPointError" in (sweep / "summary.md").read_text()


def test_cli_unwritable_output_folder(run_cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = run_cli(f"hydra.run.dir={blocker}/run", check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        f"hydra.run.dir={blocker}/run: not a writable folder ({blocker} is a file)"
    ]


def test_report_that_cannot_be_written_ends_the_sweep_with_one_line_and_exit_1(tmp_path, capsys, monkeypatch):
    sweep = tmp_path / "sweep"
    write_job(sweep, "siamese_seed0")
    (sweep / "siamese_seed1").mkdir()
    (sweep / "siamese_seed1" / "error.txt").write_text("FloatingPointError: train/loss is nan\n")
    (sweep / "summary.csv").mkdir()  # something is in the way (as a full disk or a locked file would be)
    monkeypatch.setattr("sys.argv", ["src/run.py", "-m", "seed=0,1", f"hydra.sweep.dir={sweep}"])
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}, "runtime": {"cwd": str(tmp_path)}}})
    with pytest.raises(SystemExit) as info:
        WriteReport().on_multirun_end(config)  # Hydra would turn an exception into a warning and exit 0
    assert info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "1 job(s) failed or left no result: siamese_seed1"  # the failed job first
    assert [line for line in lines if line.startswith("report:")] == [lines[1]]  # then one line for the report
    assert lines[1].startswith(f"report: could not write {sweep / 'summary.csv'}: IsADirectoryError")
    assert lines[-1].endswith(f"src/run.py -m seed=0,1 resume=true hydra.sweep.dir={sweep}")


def test_chdir_true_changes_nothing_about_where_data_and_outputs_go(data_dir, tmp_path):
    launch = tmp_path / "launch"
    (launch / "data").mkdir(parents=True)  # the MNIST cache of this launch folder (the session's, to save time)
    (launch / "data" / "mnist-packaged-uint8.npz").symlink_to(data_dir / "mnist-packaged-uint8.npz")
    env = {k: v for k, v in CLI_ENV.items() if k != "PAIRMNIST_ROOT"}
    args = ["-m", "model=shallow", "seed=0", "hydra.job.chdir=true", *TINY]
    proc = subprocess.run([sys.executable, str(RUN), *args], cwd=launch, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = (launch / "outputs" / "multirun").iterdir()
    assert len(list(sweep.glob("*/metrics.json"))) == 1 and (sweep / "summary.csv").is_file()
    assert not list(sweep.rglob("mnist-*.npz"))  # no cache built inside the job folder
    assert [p.name for p in (launch / "data").iterdir()] == ["mnist-packaged-uint8.npz"]
