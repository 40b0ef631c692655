"""A job folder back in memory: ``load_job`` and ``src/evaluate.py``."""

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
def job(tmp_path_factory, data_dir):
    """A finished tiny twin job, run as users run it (Hydra writes its .hydra/config.yaml)."""
    folder = tmp_path_factory.mktemp("evaluate") / "job"
    cmd = [sys.executable, str(ROOT / "src" / "run.py"), *TINY, "model=twin", "seed=3", f"paths.data_dir={data_dir}"]
    subprocess.run([*cmd, f"hydra.run.dir={folder}"], check=True, capture_output=True, cwd=ROOT, timeout=300)
    return folder


def test_evaluate_prints_the_jobs_test_acc_exactly(job):
    record = json.loads((job / "metrics.json").read_text())
    proc = evaluate_cli(str(job))
    assert proc.returncode == 0, proc.stderr
    expected = f"test_acc {record['test_acc']}, test_digit_acc {record['test_digit_acc']} (60 test pairs of seed 3)"
    assert proc.stdout.splitlines() == [expected]


def test_load_job_gives_the_trained_module_and_the_data_of_any_seed(job):
    module, datamodule = load_job(job)
    trained = torch.load(job / "checkpoints" / "final.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(v, trained[f"nets.0.{k}"]) for k, v in module.nets[0].state_dict().items())
    assert len(module.nets[0].branches) == 2 and datamodule.seed == 3 and datamodule.n_pairs == 60
    _, other = load_job(job, seed=4)
    datamodule.setup("test"), other.setup("test")
    assert other.seed == 4 and not torch.equal(other.test.classes, datamodule.test.classes)


def test_folders_without_a_trained_job_are_one_line_errors(job, tmp_path):
    proc = evaluate_cli(str(tmp_path))
    assert proc.returncode == 1 and proc.stderr.splitlines() == [
        f"{tmp_path}: not a job folder (no .hydra/config.yaml)"
    ]
    untrained = tmp_path / "untrained"
    shutil.copytree(job / ".hydra", untrained / ".hydra")
    with pytest.raises(NotAJob, match=r"untrained: no checkpoints/final.ckpt \(the job did not finish training\)"):
        load_job(untrained)
