"""A job folder back in memory: ``load_job`` and ``src/evaluate.py``, for a run and for a search trial."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, TINY

from pairmnist.jobs.load import NotAJob, load_job

EVALUATE = ROOT / "src" / "evaluate.py"


def evaluate_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EVALUATE), *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def trial(tmp_path_factory, data_dir):
    """A finished tiny search trial of twin, run as users run it: its folder (with Hydra's .hydra/config.yaml) holds
    one job folder per tuning seed, seed3/ and seed4/."""
    sweep = tmp_path_factory.mktemp("evaluate") / "search"
    cmd = [sys.executable, str(ROOT / "src" / "run.py"), "-m", "hparams_search=deep_optuna", "model=twin", *TINY]
    cmd += ["hydra.sweeper.n_trials=1", "tuning_seeds=[3,4]", f"paths.data_dir={data_dir}", f"hydra.sweep.dir={sweep}"]
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT, timeout=300)
    (folder,) = sweep.glob("trial0_*")
    return folder


@pytest.fixture(scope="module")
def job(trial):
    """A finished tiny twin job of seed 3."""
    return trial / "seed3"


def test_evaluate_prints_each_jobs_test_acc_exactly_one_line_per_tuning_seed_of_a_trial(trial):
    records = [json.loads((trial / f"seed{s}" / "metrics.json").read_text()) for s in (3, 4)]
    proc = evaluate_cli(str(trial))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"test_acc {r['test_acc']}, test_digit_acc {r['test_digit_acc']} (60 test pairs of seed {r['seed']})"
        for r in records
    ]
    one = evaluate_cli("--device", "cpu", str(trial / "seed4"), "seed=4")  # a seed's folder; options in any order
    assert one.returncode == 0 and one.stdout.splitlines() == proc.stdout.splitlines()[1:], one.stderr


def test_load_job_gives_the_trained_module_and_the_data_of_any_seed(job):
    module, datamodule = load_job(job)
    trained = torch.load(job / "checkpoints" / "final.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(v, trained[f"nets.0.{k}"]) for k, v in module.nets[0].state_dict().items())
    assert len(module.nets[0].branches) == 2 and datamodule.seed == 3 and datamodule.n_pairs == 60
    _, other = load_job(job, seed=4)
    datamodule.setup("test"), other.setup("test")
    assert other.seed == 4 and not torch.equal(other.test.classes, datamodule.test.classes)


def test_folders_without_a_trained_job_and_missing_devices_are_one_line_errors(job, trial, tmp_path):
    proc = evaluate_cli(str(tmp_path / "does" / "not" / "exist"))
    assert proc.returncode == 1 and proc.stderr.splitlines() == [f"{tmp_path}/does/not/exist: does not exist"]
    lacking = "mps" if not torch.backends.mps.is_available() else "cuda"
    proc = evaluate_cli("--device", lacking, str(job), "seed=7")
    assert proc.returncode == 1 and proc.stderr.splitlines() == [
        f"--device {lacking}: not on this machine; available: auto, cpu{', cuda' if torch.cuda.is_available() else ''}"
    ]
    with pytest.raises(NotAJob, match=r": not a job folder \(no .hydra/config.yaml\)$"):
        load_job(tmp_path)
    untrained = tmp_path / "untrained"
    shutil.copytree(trial / ".hydra", untrained / ".hydra")
    (untrained / "seed3").mkdir()
    (untrained / "seed5").mkdir()
    with pytest.raises(NotAJob, match=r"seed5: not a job folder"):  # not one of the trial's tuning seeds
        load_job(untrained / "seed5")
    with pytest.raises(NotAJob, match=r"seed3: no checkpoints/final.ckpt \(the job did not finish training\)"):
        load_job(untrained / "seed3")
