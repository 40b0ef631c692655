"""Parallel (joblib) and cluster (SLURM, and submitit_local, its tested stand-in) launchers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pandas as pd
from conftest import CONF, TINY
from hydra import compose, initialize_config_dir
from hydra.utils import get_class


def test_joblib_runs_jobs_in_parallel_processes_with_one_thread(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    run_cli(
        "-m",
        "model=shallow",
        "seed=0,1",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={sweep}",
        *TINY,
    )
    records = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    assert [r["seed"] for r in records] == [0, 1]
    assert all(r["threads"] == 1 for r in records)  # hydra.job.env_set reached the workers
    assert pd.read_csv(sweep / "summary.csv").n_runs.tolist() == [2]


def test_default_launcher_runs_jobs_side_by_side_with_the_cores_shared_out(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    run_cli("-m", "model=shallow", "seed=0,1", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}", *TINY)
    records = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    assert [r["threads"] for r in records] == [max(1, len(os.sched_getaffinity(0)) // 2)] * 2
    run_cli("-m", "model=shallow", "seed=2", "threads=2", f"hydra.sweep.dir={sweep}", *TINY)
    assert json.loads(next(sweep.glob("*seed2/metrics.json")).read_text())["threads"] == 2


def test_a_bad_number_of_parallel_jobs_is_one_line(run_cli, tmp_path):
    proc = run_cli("-m", "seed=0,1", "hydra.launcher.n_jobs=0", f"hydra.sweep.dir={tmp_path}/s", *TINY, check=False)
    assert proc.returncode == 1 and not (tmp_path / "s").exists()
    assert proc.stderr.strip().splitlines() == [
        "hydra.launcher.n_jobs=0: must be null (one job per core) or an integer >= 1"
    ]


def test_a_single_run_takes_one_thread_per_idle_core():
    from pairmnist.train import idle_cores

    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.5)
        assert idle_cores() == 1  # every core busy: one thread, not a crowd spinning against the others
    finally:
        for hog in hogs:
            hog.kill()


def test_submitit_local_runs_a_sweep_end_to_end(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m", "model=shallow", "seed=0,1", "hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep}", *TINY
    )
    assert proc.stdout.startswith(f"sweep folder: {sweep}\n")
    records = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    assert [r["seed"] for r in records] == [0, 1]
    assert len({r["cpu"] for r in records}) == 1 and any(sweep.glob(".submitit/*/*_result.pkl"))  # through submitit
    assert pd.read_csv(sweep / "summary.csv").n_runs.tolist() == [2]


def test_submitit_local_records_a_failed_job_and_summarises_the_other(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "model=shallow",
        "model.optimizer.lr=1e-3,1e30",
        "hydra/launcher=submitit_local",
        f"hydra.sweep.dir={sweep}",
    ]
    proc = run_cli(*args, *TINY, "trainer.max_epochs=2", check=False)
    assert proc.returncode == 1
    (failed,) = sweep.glob("*lr1e+30*")
    assert (failed / "error.txt").read_text().startswith("FloatingPointError: train/loss is")
    assert f"1 job(s) failed or left no result: {failed.name} (see summary.md)" in proc.stderr.splitlines()
    (done,) = sweep.glob("*/metrics.json")
    assert json.loads(done.read_text())["lr"] == 1e-3
    assert pd.read_csv(sweep / "summary.csv").n_runs.tolist() == [1]  # the other job, summarised


def test_slurm_launcher_composes_and_is_importable():
    # No cluster here: check the config and the plugin, not a submission.
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose(
            "config",
            overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=1"],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher.partition == "gpu" and launcher.gpus_per_node == 1 and launcher.timeout_min == 30
    assert get_class(launcher._target_).__name__ == "SlurmLauncher"


def test_gpu_trainer_config_composes():
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose("config", overrides=["trainer=gpu"])
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.max_epochs == 25
