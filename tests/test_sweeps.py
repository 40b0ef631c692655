"""Multiruns through src/run.py in a subprocess, as users start them."""

from __future__ import annotations

import json
import re
import shlex
import signal

import pandas as pd
import pytest
import yaml
from conftest import CONF, QUIET, TINY, unpadded, wait_for
from hydra import compose, initialize_config_dir

from pairmnist.record import identity_id
from pairmnist.train import study_config


def test_multirun_two_models_two_seeds_ends_with_the_report(run_cli, tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", "model=shallow,siamese", "seed=0,1", f"hydra.sweep.dir={sweep}", *TINY)
    jobs = sorted(p.parent.name for p in sweep.glob("*/metrics.json"))
    suffix = "_debugtiny_seed"  # TINY's override
    assert jobs == [f"{m}{suffix}{s}" for m in ("shallow", "siamese") for s in (0, 1)]
    records = [json.loads((sweep / j / "metrics.json").read_text()) for j in jobs]
    assert [(r["model"], r["seed"]) for r in records] == [(m, s) for m in ("shallow", "siamese") for s in (0, 1)]
    assert records[0]["test_acc"] != records[1]["test_acc"] or records[0]["history"] != records[1]["history"]
    summary = pd.read_csv(sweep / "summary.csv")  # written by the Hydra callback, no other command
    assert sorted(summary.model) == ["shallow", "siamese"] and summary.n_runs.tolist() == [2, 2]
    assert all((sweep / f).stat().st_size > 0 for f in ("summary.md", "curves.png", "test_acc.png"))
    assert "| shallow |" in unpadded(proc.stdout)  # the table is printed


def test_optuna_search_survives_a_diverging_trial_and_selects_on_validation(run_cli, tmp_path):
    sweep = tmp_path / "search"
    proc = run_cli(
        "-m", "hparams_search=deep_optuna", "model=siamese", "hydra.sweeper.n_trials=6", "tuning_seeds=[1000,1001]",
        "model.optimizer.lr=choice(1e-3,1e30)", "trainer.max_epochs=2", f"hydra.sweep.dir={sweep}", *TINY, check=False,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "training diverged (optimizer.lr=1e+30)" in output  # recorded, not hidden
    assert "failed (its job left no value)" in output  # told to Optuna as FAIL
    trials = [p for p in sweep.iterdir() if p.is_dir() and (p / ".hydra").is_dir()]
    assert len(trials) >= 2  # the search went on after the diverged trial (equal trials share a folder)
    best = yaml.safe_load((sweep / "best.yaml").read_text())["siamese"]
    assert "model.optimizer.lr=0.001" in best["overrides"] and best["command"] in proc.stdout
    records = [json.loads(p.read_text()) for p in sweep.glob("*/seed*/metrics.json")]
    winner = [r for r in records if identity_id(r["config"]) == best["identity"]]
    assert sorted(r["seed"] for r in winner) == [1000, 1001]
    assert best["val_acc_mean"] == pytest.approx(sum(r["val_acc"] for r in winner) / 2)  # validation only
    assert not (sweep / "optimization_results.yaml").exists()  # one winner: best.yaml
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        again = compose("config", overrides=[*shlex.split(best["command"])[3:-1], "seed=0"])
    assert identity_id(study_config(again)) == best["identity"]  # the printed command re-runs the winner


def test_a_search_whose_trials_all_fail_ends_like_a_grid(run_cli, tmp_path):
    sweep = tmp_path / "search"
    args = ["-m", "hparams_search=deep_optuna", "model=siamese", "tuning_seeds=[1000]", "hydra.sweeper.n_trials=2"]
    proc = run_cli(*args, *TINY, "model.optimizer.lr=choice(1e30)", f"hydra.sweep.dir={sweep}", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-4].startswith("2 job(s) failed or left no result: ")  # the failed list, then the report
    assert lines[-1].endswith(f"resume=true hydra.sweep.dir={sweep}")  # the finishing command


def test_a_stored_search_stopped_after_its_first_trial_continues_without_retraining_it(start_cli, tmp_path):
    sweep, db = tmp_path / "S", tmp_path / "search.db"
    args = ["-m", "hparams_search=deep_optuna", "model=siamese", "hydra.sweeper.n_trials=4", *QUIET]
    args += ["tuning_seeds=[1000,1001]", "trainer.max_epochs=20", "callbacks.progress_bar=null"]
    args += [f"hydra.sweeper.storage=sqlite:///{db}"]
    proc = start_cli(*args, f"hydra.sweep.dir={sweep}")
    wait_for(lambda: any(sweep.glob("*/seed1001/metrics.json")), proc)  # the first trial is complete
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    (first,) = [p.parent for p in sweep.glob("*/seed1001/metrics.json")]
    stamps = {p: p.stat().st_mtime_ns for p in first.glob("seed*/metrics.json")}
    again = start_cli(*args, f"hydra.sweep.dir={sweep}", "resume=true")
    assert again.wait(timeout=600) == 0, again.output.read_text()[-3000:]
    assert {p: p.stat().st_mtime_ns for p in first.glob("seed*/metrics.json")} == stamps  # not retrained
    trials = {p.parent.parent.name for p in sweep.glob("*/seed*/metrics.json")}
    assert len(trials) == 4 and len(list(sweep.glob("*/seed*/metrics.json"))) == 8
    ranked = re.findall(r"^\| (\d+) \|", unpadded((sweep / "ranking.md").read_text()), flags=re.MULTILINE)
    assert ranked == ["1", "2", "3", "4"]  # the final ranking covers every trial of the stored study
