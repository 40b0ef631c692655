"""Parallel (the default, joblib) and cluster (SLURM, submitit_local its stand-in) launchers; devices; a full disk."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pandas as pd
import pytest
from conftest import CLI_ENV, CONF, ROOT, RUN, TINY, unpadded
from hydra import compose, initialize_config_dir
from hydra.utils import get_class

from pairmnist.checks import BadValue
from pairmnist.train import check


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
    unset = {"OMP_NUM_THREADS": ""}  # the launcher's share reaches each job through this variable
    run_cli("-m", "model=shallow", "seed=0,1", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}", *TINY, env=unset)
    records = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    assert [r["threads"] for r in records] == [max(1, len(os.sched_getaffinity(0)) // 2)] * 2
    run_cli("-m", "model=shallow", "seed=2", "threads=2", f"hydra.sweep.dir={sweep}", *TINY)
    assert json.loads(next(sweep.glob("*seed2/metrics.json")).read_text())["threads"] == 2


def test_the_plugins_import_nothing_of_the_app():
    plugins = "hydra_plugins.pairmnist_launcher, hydra_plugins.pairmnist_optuna"
    code = f"import sys, {plugins}; print(sorted(m for m in sys.modules if m.startswith('pairmnist')))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_more_than_one_device_per_job_is_refused_in_one_line(make_cfg):
    check(make_cfg("trainer.devices=auto", "trainer.accelerator=cpu"))  # one device: allowed
    for devices in ("2", "[0,1]"):
        with pytest.raises(BadValue, match=r"^trainer.devices=.*: must be 1 .*one process per job$"):
            check(make_cfg(f"trainer.devices={devices}"))


def small_files(limit: int) -> Callable[[], None]:
    """A ``preexec_fn``: no file of the process and its children may grow past ``limit`` bytes (EFBIG)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_fails_each_job_in_one_line_and_the_sweep_still_ends(run_cli, tmp_path, data_dir):
    sweep = tmp_path / "sweep"
    run_cli("-m", "model=siamese", "seed=0", f"hydra.sweep.dir={sweep}", *TINY)  # a finished job
    (finished,) = sweep.glob("*/metrics.json")
    before = finished.read_bytes(), finished.stat().st_mtime_ns
    # No file may pass 24 KiB: no checkpoint fits, nor curves.png. And, as on a disk already full when Hydra
    # writes a job's config (.hydra is a file) or when not even error.txt fits (the job's folder is a file):
    (sweep / "shallow_debugtiny_seed0").mkdir()
    (sweep / "shallow_debugtiny_seed0" / ".hydra").write_text("")
    (sweep / "shallow_debugtiny_seed1").write_text("")
    command = [sys.executable, str(RUN), "-m", "model=shallow,siamese", "seed=0,1", "resume=true", *TINY]
    proc = subprocess.run(
        [*command, f"hydra.sweep.dir={sweep}", f"paths.data_dir={data_dir}"],
        capture_output=True, text=True, cwd=ROOT, env=CLI_ENV, timeout=600, preexec_fn=small_files(24 * 1024),
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in output
    failed = {
        "siamese_debugtiny_seed1": "OSError: [Errno 27] File too large",  # its checkpoint
        "shallow_debugtiny_seed0": "FileExistsError: ",  # Hydra could not save its config
        "shallow_debugtiny_seed1": "FileExistsError: ",  # ... nor could its error.txt be written
    }
    for name, reason in failed.items():
        assert len(re.findall(rf"job {name} failed: {re.escape(reason)}", output)) == 1, output[-3000:]  # one line
    assert (sweep / "siamese_debugtiny_seed1" / "error.txt").read_text().startswith(failed["siamese_debugtiny_seed1"])
    assert (sweep / "shallow_debugtiny_seed0" / "error.txt").read_text().startswith("FileExistsError: ")
    assert "error.txt not written" in output
    lines = proc.stderr.strip().splitlines()
    assert lines[-4].startswith("3 job(s) failed or left no result: ") and all(n in lines[-4] for n in failed)
    assert lines[-3].startswith(f"report: could not write {sweep / 'curves.png'}: OSError: [Errno 27]")
    assert lines[-1].endswith(f" resume=true hydra.sweep.dir={sweep}")  # the finishing command
    assert "| siamese |" in unpadded(proc.stdout)  # the report, on the console at least
    assert (finished.read_bytes(), finished.stat().st_mtime_ns) == before  # nothing finished is damaged

    single = subprocess.run(
        [sys.executable, str(RUN), *TINY, f"hydra.run.dir={tmp_path}/single", f"paths.data_dir={data_dir}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=CLI_ENV,
        timeout=600,
        preexec_fn=small_files(4 * 1024),
    )  # fmt: skip  a single run on a disk already full
    assert single.returncode == 1 and len(single.stderr.strip().splitlines()) == 1 and "File too large" in single.stderr


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
