"""SIGTERM and SIGINT sent to real run.py processes: non-zero exit, error.txt, report, resume."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import CLI_ENV, QUIET, ROOT, children, wait_for

from pairmnist.jobs.hydra_callbacks import finish_command


def test_sigterm_stops_a_single_run_with_143_and_error_txt(start_cli, tmp_path):
    run_dir = tmp_path / "R"
    proc = start_cli("model=shallow", *QUIET, "trainer.max_epochs=100000", f"hydra.run.dir={run_dir}")
    wait_for(lambda: any(run_dir.glob("events.out.tfevents.*")), proc)  # the Trainer has started fitting
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    first = (run_dir / "error.txt").read_text().splitlines()[0]
    assert first.startswith("Interrupted: SIGTERM at epoch ") and first.endswith(" of 100000"), first
    assert not (run_dir / "metrics.json").exists() and not list(run_dir.rglob("*.tmp*"))
    output = proc.output.read_text().splitlines()
    assert output[0] == f"run folder: {run_dir}"
    assert output[-1] == f"{first} (traceback: {run_dir / 'error.txt'})"


def test_sigint_ends_a_serial_sweep_with_its_report_and_the_command_that_finishes_it(start_cli, tmp_path):
    sweep = tmp_path / "sweep"
    serial = "hydra/launcher=basic"
    proc = start_cli(
        "-m", "model=shallow", "seed=0,1,2", *QUIET, "trainer.max_epochs=150", serial, f"hydra.sweep.dir={sweep}"
    )
    wait_for(lambda: any(sweep.glob("*seed0/metrics.json")) and any(sweep.glob("*seed1/events.out.*")), proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    output = proc.output.read_text().splitlines()
    assert output[0] == f"sweep folder: {sweep}"
    (done,), (stopped,), (skipped,) = (sweep.glob(f"*seed{s}") for s in (0, 1, 2))
    assert (done / "metrics.json").is_file() and not (stopped / "metrics.json").exists()
    assert (stopped / "error.txt").read_text().startswith("Interrupted: SIGINT at epoch ")
    assert (skipped / "error.txt").read_text().startswith("Interrupted: SIGINT before training")
    assert pd.read_csv(sweep / "summary.csv").n_runs.tolist() == [1]  # the finished job, summarised
    assert f"`{stopped.name}`: failed: Interrupted: SIGINT at epoch" in (sweep / "summary.md").read_text()
    assert output[-2] == f"SIGINT received; to finish the sweep, run from {ROOT}:"
    command = output[-1]
    assert command.endswith(f" resume=true hydra.sweep.dir={sweep}")

    finish = subprocess.run(["bash", "-c", command], cwd=ROOT, env=CLI_ENV, capture_output=True, text=True)
    assert finish.returncode == 0, finish.stderr[-3000:]
    assert "not retrained" in finish.stdout + finish.stderr  # the finished job is kept
    assert len(list(sweep.glob("*/metrics.json"))) == 3 and not list(sweep.glob("*/error.txt"))
    assert pd.read_csv(sweep / "summary.csv").n_runs.tolist() == [3]


def test_finish_command_quotes_and_replaces_resume_and_the_sweep_folder(tmp_path):
    argv = ["src/run.py", "-m", "seed=range(3)", "resume=false", "hydra.sweep.dir=old", "model.optimizer.lr=1e-3,1e-2"]
    command = finish_command(tmp_path / "my sweep, (1)", argv)
    words = shlex.split(command)
    assert words[0] in ("python", sys.executable) and words[1:] == [
        "src/run.py",
        "-m",
        "seed=range(3)",
        "model.optimizer.lr=1e-3,1e-2",
        "resume=true",
        f"hydra.sweep.dir='{tmp_path / 'my sweep, (1)'}'",  # quoted for Hydra too: its grammar splits at commas
    ]
    assert "'seed=range(3)'" in command  # bash would choke on the bare parentheses
    assert finish_command(tmp_path, argv).endswith(f" hydra.sweep.dir={tmp_path}")  # quoted only where needed


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_default_parallel_multirun_stops_every_job_and_writes_the_report(start_cli, tmp_path, sig):
    sweep = tmp_path / "sweep"
    epochs = "trainer.max_epochs=1,100000,100001,100002"  # one job that finishes, two that train, one waiting
    proc = start_cli("-m", "model=shallow", epochs, *QUIET, "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}")
    training = lambda: len(list(sweep.glob("*max_epochs10000[01]*/events.out.*"))) == 2  # noqa: E731
    wait_for(lambda: any(sweep.glob("*/metrics.json")) and training(), proc)
    workers = children(proc.pid)
    assert len(workers) == 2
    proc.send_signal(sig)
    assert proc.wait(timeout=120) == 128 + sig
    time.sleep(5)
    assert not [w for w in workers if Path(f"/proc/{w}").exists()]  # no worker left behind
    first = {
        n: next(sweep.glob(f"*max_epochs{n}_*/error.txt")).read_text().splitlines()[0] for n in range(100000, 100003)
    }
    assert first[100000].startswith(f"Interrupted: {sig.name} at epoch ")
    assert first[100001].startswith(f"Interrupted: {sig.name} at epoch ")
    assert first[100002] == f"Interrupted: {sig.name} before training"
    assert pd.read_csv(sweep / "summary.csv").n_runs.tolist() == [1]  # the report of the finished job
    output = proc.output.read_text().splitlines()
    assert output[-2] == f"{sig.name} received; to finish the sweep, run from {ROOT}:"
    assert output[-1].endswith(f" resume=true hydra.sweep.dir={sweep}")


def test_a_killed_worker_fails_its_job_only(start_cli, tmp_path):
    sweep = tmp_path / "sweep"
    args = ("-m", "model=shallow", "seed=0,1,2", *QUIET, "trainer.max_epochs=400", "hydra.launcher.n_jobs=2")
    proc = start_cli(*args, f"hydra.sweep.dir={sweep}")
    wait_for(lambda: len(list(sweep.glob("*/events.out.*"))) == 2, proc)
    os.kill(children(proc.pid)[0], signal.SIGKILL)
    assert proc.wait(timeout=300) == 1
    killed = [d for d in sweep.glob("*seed*") if not (d / "metrics.json").exists()]
    assert len(killed) == 1
    assert (killed[0] / "error.txt").read_text().startswith("WorkerDied: the job's process ended (killed by SIGKILL)")
    assert pd.read_csv(sweep / "summary.csv").n_runs.tolist() == [2]  # the other two finished
    assert f"1 job(s) failed or left no result: {killed[0].name} (see summary.md)" in proc.output.read_text()


def test_jobs_stop_when_the_command_is_killed_outright(start_cli, tmp_path):
    sweep = tmp_path / "sweep"
    args = ("-m", "model=shallow", "seed=0,1", *QUIET, "trainer.max_epochs=100000", "hydra.launcher.n_jobs=2")
    proc = start_cli(*args, f"hydra.sweep.dir={sweep}")
    wait_for(lambda: len(list(sweep.glob("*/events.out.*"))) == 2, proc)
    workers = children(proc.pid)
    proc.kill()  # SIGKILL: the command cannot pass anything on
    proc.wait(timeout=30)
    deadline = time.monotonic() + 60  # the jobs are told (SIGTERM) and stop as a signalled job does
    while [w for w in workers if Path(f"/proc/{w}").exists()] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert workers and not [w for w in workers if Path(f"/proc/{w}").exists()]  # they stopped with it
