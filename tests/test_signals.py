"""SIGTERM and SIGINT sent to real run.py processes: non-zero exit, error.txt, report, resume."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys

import pandas as pd
from conftest import CLI_ENV, QUIET, ROOT, wait_for

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


def test_sigint_ends_a_sweep_with_its_report_and_the_command_that_finishes_it(start_cli, tmp_path):
    sweep = tmp_path / "sweep"
    proc = start_cli("-m", "model=shallow", "seed=0,1,2", *QUIET, "trainer.max_epochs=150", f"hydra.sweep.dir={sweep}")
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
    argv = ["src/run.py", "-m", "seed=range(3)", "resume=false", "hydra.sweep.dir=old", "model.lr=1e-3,1e-2"]
    command = finish_command(tmp_path / "my sweep", argv)
    words = shlex.split(command)
    assert words[0] in ("python", sys.executable) and words[1:] == [
        "src/run.py",
        "-m",
        "seed=range(3)",
        "model.lr=1e-3,1e-2",
        "resume=true",
        f"hydra.sweep.dir={tmp_path / 'my sweep'}",
    ]
    assert "'seed=range(3)'" in command  # bash would choke on the bare parentheses
