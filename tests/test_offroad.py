"""Off the main road: Trainer options, statistics at their edges, selection seeds, devices, user nets."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
from conftest import ROOT, TINY, unpadded
from test_report import write_job

from pairmnist.analysis import stats
from pairmnist.analysis.report import write_report
from pairmnist.analysis.results import main

EVALUATE = ROOT / "src" / "evaluate.py"


@pytest.mark.parametrize(
    ("options", "val_epoch", "epochs"),
    [
        (["trainer.max_epochs=3", "+trainer.max_steps=5"], 1, 2),  # stops in epoch 2, before its validation
        (["trainer.max_epochs=3", "+trainer.check_val_every_n_epoch=2"], 2, 3),
        (["+trainer.check_val_every_n_epoch=2"], None, 1),  # never validated
    ],
)
def test_a_run_whose_last_epoch_was_not_validated_says_which_epoch_its_figures_come_from(
    run_cli, tmp_path, options, val_epoch, epochs
):
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", "seed=0,1", *TINY, *options, f"hydra.sweep.dir={sweep}")
    records = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    assert len(records) == 2
    run_cli(*TINY, *options, f"hydra.run.dir={tmp_path}/single")  # and as a single run
    records.append(json.loads((tmp_path / "single" / "metrics.json").read_text()))
    for record in records:
        assert record["epochs"] == epochs and record["val_epoch"] == val_epoch
        assert record["val_acc"] == (None if val_epoch is None else record["history"]["val_acc"][-1])
        assert record["test_acc"] is not None
    assert "was not validated" in proc.stderr + proc.stdout


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_a_zero_batch_limit_is_refused_before_training(run_cli, tmp_path, split):
    for mode in ([], ["-m", "seed=0,1"]) if split == "val" else ([],):  # the same check for all three
        out = tmp_path / f"out{len(mode)}"
        where = f"hydra.sweep.dir={out}" if mode else f"hydra.run.dir={out}"
        proc = run_cli(*mode, *TINY, f"+trainer.limit_{split}_batches=0", where, check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith(f"trainer.limit_{split}_batches=0")
        assert not out.exists()


def test_a_fractional_batch_limit_works_end_to_end(run_cli, tmp_path):
    run_cli(*TINY, "+trainer.limit_train_batches=0.5", f"hydra.run.dir={tmp_path}/run")  # 1 of 3 batches
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["val_epoch"] == 1 and record["val_acc"] is not None


def test_a_constant_difference_is_constant_despite_float_noise():
    a = {0: 0.915, 1: 0.925, 2: 0.935, 3: 0.905, 4: 0.945}
    result = stats.paired(a, {k: round(v - 0.01, 6) for k, v in a.items()})
    assert result.mean_diff == pytest.approx(0.01) and result.ci_low == result.ci_high
    assert result.p_ttest != result.p_ttest  # NaN: no spread to test against, as without the noise


@pytest.mark.parametrize(
    ("low", "high", "n", "caveat"),
    [
        (0.3415, 1.0785, 2, "2 seeds: uninformative"),
        (0.80, 1.02, 5, "past 0–100 %: uninformative"),
        (-0.01, 0.2, 4, "past 0–100 %: uninformative"),
        (0.9, 0.9, 3, "no spread: no interval"),
        (0.90, 0.93, 10, ""),
    ],
)
def test_an_interval_says_what_it_cannot_tell(low, high, n, caveat):
    assert stats.ci_caveat(low, high, n) == caveat


def test_a_two_seed_interval_is_marked_in_the_summary(tmp_path):
    write_job(tmp_path, "siamese_seed0", seed=0, test_acc=0.55)
    write_job(tmp_path, "siamese_seed1", seed=1, test_acc=0.90)
    write_report(tmp_path)
    assert "(2 seeds: uninformative)" in (tmp_path / "summary.md").read_text()


def test_a_sweep_on_evaluation_seeds_ranks_nothing_and_writes_no_best_yaml(tmp_path):
    write_job(tmp_path, "siamese_lr0.001_seed0", seed=0, lr=1e-3, val_acc=0.90)
    write_job(tmp_path, "siamese_lr0.01_seed0", seed=0, lr=1e-2, val_acc=0.92)
    report = write_report(tmp_path)
    assert not report.best and not (tmp_path / "best.yaml").exists()
    assert "No ranking" not in (tmp_path / "summary.md").read_text()  # nobody asked for one
    assert main([str(tmp_path), "--rank"]) == 0  # asked: it says why not
    assert "No ranking of siamese: its seeds include 0" in (tmp_path / "summary.md").read_text()
    metrics = tmp_path / "siamese_lr0.01_seed0" / "metrics.json"  # a grid preset asks too
    record = json.loads(metrics.read_text())
    metrics.write_text(json.dumps(record | {"overrides": [*record["overrides"], "hparams_search=deep_grid"]}))
    assert "No ranking of siamese: its seeds include 0" in write_report(tmp_path).markdown
    for seed in (1000, 1001):  # the same on tuning seeds: ranked, with best.yaml
        write_job(tmp_path / "tuned", f"siamese_lr0.001_seed{seed}", seed=seed, lr=1e-3, val_acc=0.90)
        write_job(tmp_path / "tuned", f"siamese_lr0.01_seed{seed}", seed=seed, lr=1e-2, val_acc=0.92)
    assert write_report(tmp_path / "tuned").best["siamese"]["overrides"][-1] == "model.optimizer.lr=0.01"


def test_a_batch_larger_than_the_training_pairs_gets_one_line(run_cli, tmp_path):
    proc = run_cli(*TINY, "data.batch_size=100000", f"hydra.run.dir={tmp_path}/run")
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if "data.batch_size=100000" in line]
    assert len(lines) == 1 and "60 training pairs" in lines[0]


def test_a_users_branch_beside_the_command_runs_shared_or_not_and_its_own_error_reaches_the_console(run_cli, tmp_path):
    (tmp_path / "mynets.py").write_text(  # a bare parameter, no reset_parameters(): built twice when unshared
        "import torch\n"
        "from torch import nn\n"
        "class Scaled(nn.Module):\n"
        "    def __init__(self, scale=1.0):\n"
        "        super().__init__()\n"
        "        if not isinstance(scale, float):\n"
        "            raise ValueError(f'scale must be a number, got {scale!r}')\n"
        "        self.weight = nn.Parameter(torch.randn(196, 10) * scale)\n"
        "    def forward(self, x):\n"
        "        return x.flatten(1) @ self.weight\n"
    )
    branch = "model.net.branch={_target_:mynets.Scaled,_partial_:true,scale:abc}"
    proc = run_cli(*TINY, branch, f"hydra.run.dir={tmp_path}/run", check=False, cwd=tmp_path)  # no PYTHONPATH for it
    assert proc.returncode == 1 and "scale must be a number, got 'abc'" in proc.stderr
    for share in ("true", "false"):  # a user's branch, with and without weight sharing, by config alone
        out = tmp_path / f"run_{share}"
        run_cli(
            *TINY,
            branch.replace("abc", "0.1"),
            f"model.net.share_weights={share}",
            f"hydra.run.dir={out}",
            cwd=tmp_path,
        )
        record = json.loads((out / "metrics.json").read_text())
        assert record["n_params"] == (1 if share == "true" else 2) * 196 * 10 + 20 * 100 + 100 + 100 * 2 + 2


def test_a_gpu_trained_job_evaluates_on_this_machines_device(run_cli, tmp_path):
    import subprocess

    run_cli(*TINY, f"hydra.run.dir={tmp_path}/job")
    config = tmp_path / "job" / ".hydra" / "config.yaml"
    config.write_text(config.read_text().replace("accelerator: auto", "accelerator: gpu"))  # as trainer=gpu writes it
    stored = json.loads((tmp_path / "job" / "metrics.json").read_text())
    proc = subprocess.run([sys.executable, str(EVALUATE), str(tmp_path / "job")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"test_acc {stored['test_acc']}")
    if shutil.which("nvidia-smi") is None:
        gpu = subprocess.run(
            [sys.executable, str(EVALUATE), str(tmp_path / "job"), "--device", "gpu"], capture_output=True, text=True
        )
        assert gpu.returncode == 1 and len(gpu.stderr.strip().splitlines()) == 1


def test_a_null_value_shows_as_null(tmp_path):
    for seed in (1000, 1001):
        write_job(tmp_path, f"siamese_ema_null_seed{seed}", seed=seed, model_keys={"ema_decay": None}, val_acc=0.91)
        write_job(tmp_path, f"siamese_ema_0.99_seed{seed}", seed=seed, model_keys={"ema_decay": 0.99}, val_acc=0.90)
    write_report(tmp_path)
    summary = unpadded((tmp_path / "summary.md").read_text())
    assert "| null |" in summary and "| 0.99 |" in summary  # in the ranking and the groups, not a blank


def test_mixed_numbers_text_and_missing_values_sort():
    import pandas as pd

    from pairmnist.analysis.report import sort_key

    column = pd.Series([3.0, float("nan"), 1.0, "null", 2.0], dtype=object)
    assert column.sort_values(key=sort_key, kind="mergesort").tolist()[:4] == [1.0, 2.0, 3.0, "null"]
