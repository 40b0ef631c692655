"""Multiruns through src/run.py in a subprocess, as users start them; the search's sweeper on its own."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from conftest import CLI_ENV, CONF, QUIET, ROOT, TINY, children, unpadded, wait_for
from hydra import compose, initialize_config_dir
from hydra.types import HydraContext
from hydra.utils import instantiate

from pairmnist.jobs.hydra_callbacks import hydra_override
from pairmnist.record import identity_id
from pairmnist.train import study_config

# The model keys the searches below sweep (one place to rename them)
LR, NB_HIDDEN, AUX_WEIGHT = "model.optimizer.lr", "model.net.nb_hidden", "model.aux_weight"
SEARCH = ["-m", "hparams_search=deep_optuna", "model=siamese", "tuning_seeds=[1000,1001]"]
# Trials slow enough to be acted on while they train: two of them, each of 2 seeds x 20 short epochs
SLOW_SEARCH = [*SEARCH, "hydra.sweeper.n_trials=2", *QUIET, "trainer.max_epochs=20", "callbacks.progress_bar=null"]


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


def test_a_search_with_a_diverging_value_and_repeated_draws_selects_on_validation(run_cli, tmp_path):
    sweep = tmp_path / "search"
    # 5 trials, 2 at a time, of 6 settings: with the preset's sampler seed, trial 4 draws trial 2's values
    space = [f"{LR}=choice(1e-3,2e-3,1e30)", f"{NB_HIDDEN}=int(interval(50,50))", f"{AUX_WEIGHT}=choice(0.3,0.5)"]
    args = [*SEARCH, *space, "hydra.sweeper.n_trials=5", "hydra.sweeper.n_jobs=2", "trainer.max_epochs=2"]
    proc = run_cli(*args, f"hydra.sweep.dir={sweep}", *TINY, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "training diverged (optimizer.lr=1e+30)" in output  # recorded, not hidden
    assert "failed (its job left no value)" in output  # told to Optuna as FAIL
    trials = sorted(p.name for p in sweep.glob("trial*") if (p / ".hydra").is_dir())
    assert [t.split("_")[0] for t in trials] == [f"trial{k}" for k in range(5)]  # one folder per trial, duplicates too
    diverged = next(t for t in trials if "lr1e+30" in t)
    assert f"job {diverged}/seed1000 failed: FloatingPointError" in output  # the line names the trial and the seed
    records = [json.loads(p.read_text()) for p in sweep.glob("*/seed*/metrics.json")]
    assert all(type(r["nb_hidden"]) is int for r in records)  # int(interval(...)) gives integers
    finished = {p.parent.parent.name for p in sweep.glob("*/seed1001/metrics.json")}
    repeated = len(finished) - len({identity_id(r["config"]) for r in records})  # trials that drew finished values
    assert repeated >= 1 and f"set aside {2 * repeated} duplicate job(s)" in proc.stdout  # reported ...
    ranking = pd.read_csv(sweep / "summary.csv")
    assert ranking.n_runs.tolist() == [2] * len(ranking)  # ... and counted once
    best = yaml.safe_load((sweep / "best.yaml").read_text())["siamese"]
    assert f"{LR}=1e+30" not in best["overrides"] and best["command"] in proc.stdout and best["n_runs"] == 2
    winner = [r for r in records if identity_id(r["config"]) == best["identity"]]
    assert {r["seed"] for r in winner} == {1000, 1001}
    assert best["val_acc_mean"] == pytest.approx(sum(r["val_acc"] for r in winner) / len(winner))  # validation only
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        again = compose("config", overrides=[*shlex.split(best["command"])[3:-1], "seed=0"])
    assert identity_id(study_config(again)) == best["identity"]  # the printed command re-runs the winner


def test_a_search_whose_trials_all_fail_ends_like_a_grid(run_cli, tmp_path):
    sweep = tmp_path / "search"
    args = ["-m", "hparams_search=deep_optuna", "model=siamese", "tuning_seeds=[1000]", "hydra.sweeper.n_trials=2"]
    proc = run_cli(*args, *TINY, f"{LR}=choice(1e30)", f"hydra.sweep.dir={sweep}", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-4].startswith("2 job(s) failed or left no result: ")  # the failed list, then the report
    assert lines[-1].endswith(f"resume=true hydra.sweep.dir={sweep}")  # the finishing command


def training(folder: Path) -> bool:
    """Whether the run in ``folder`` has started training and not finished."""
    return any(folder.glob("events.out.*")) and not (folder / "metrics.json").exists()


def finish(proc) -> subprocess.CompletedProcess:
    """Run the last line ``proc`` printed (the command that finishes its sweep) in bash, from the repository."""
    command = proc.output.read_text().strip().splitlines()[-1]
    return subprocess.run(["bash", "-c", command], cwd=ROOT, env=CLI_ENV, capture_output=True, text=True, timeout=600)


def test_a_search_whose_worker_is_killed_mid_trial_is_finished_by_its_printed_command(start_cli, tmp_path):
    sweep = tmp_path / "a b (c),{d}=e 'q\""  # the shell's and Hydra's special characters
    proc = start_cli(*SLOW_SEARCH, hydra_override("hydra.sweep.dir", str(sweep)))
    trial = lambda: next(sweep.glob("trial0_*"), sweep / "none")  # noqa: E731
    wait_for(lambda: (trial() / "seed1000" / "metrics.json").exists() and training(trial() / "seed1001"), proc)
    (worker,) = children(proc.pid)
    os.kill(worker, signal.SIGKILL)  # as the out-of-memory killer would
    assert proc.wait(timeout=300) == 1
    assert (trial() / "error.txt").read_text().startswith("WorkerDied: the job's process ended (killed by SIGKILL)")
    kept = (trial() / "seed1000" / "metrics.json").stat().st_mtime_ns

    done = finish(proc)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (trial() / "seed1000" / "metrics.json").stat().st_mtime_ns == kept  # resumed, not retrained
    assert len(list(sweep.glob("trial[01]_*/seed100[01]/metrics.json"))) == 4 and not list(sweep.rglob("error.txt"))


def test_a_stored_search_killed_then_stopped_is_finished_by_its_printed_command(start_cli, tmp_path):
    sweep, db = tmp_path / "S", tmp_path / "search.db"
    unseeded = ["hydra.sweeper.sampler.seed=null", f"hydra.sweeper.storage=sqlite:///{db}"]  # the next draws differ
    proc = start_cli(*SLOW_SEARCH, *unseeded, f"hydra.sweep.dir={sweep}")
    trial = lambda k: next(sweep.glob(f"trial{k}_*"), sweep / "none")  # noqa: E731
    wait_for(lambda: (trial(0) / "seed1000" / "metrics.json").exists() and training(trial(0) / "seed1001"), proc)
    os.kill(children(proc.pid)[0], signal.SIGKILL)  # trial 0 is stored as failed
    wait_for(lambda: training(trial(1) / "seed1000"), proc)
    proc.send_signal(signal.SIGINT)  # trial 1 is left unfinished
    assert proc.wait(timeout=120) == 130
    stored = optuna.load_study(study_name="deep_optuna_siamese", storage=f"sqlite:///{db}").trials
    assert [t.state.name for t in stored] == ["FAIL", "RUNNING"]  # what the printed command must not count
    kept = (trial(0) / "seed1000" / "metrics.json").stat().st_mtime_ns

    done = finish(proc)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (trial(0) / "seed1000" / "metrics.json").stat().st_mtime_ns == kept  # resumed, not retrained
    assert len(list(sweep.glob("trial[01]_*/seed100[01]/metrics.json"))) == 4 and not list(sweep.rglob("error.txt"))
    ranked = re.findall(r"^\| (\d+) \|", unpadded((sweep / "ranking.md").read_text()), flags=re.MULTILINE)
    assert ranked == ["1", "2"]  # the final ranking covers both trials
    stored = optuna.load_study(study_name="deep_optuna_siamese", storage=f"sqlite:///{db}").trials
    assert sum(t.state.name == "COMPLETE" for t in stored) == 2


def search_sweeper(tmp_path, *overrides: str):
    """The search's sweeper as a multirun sets it up, with the real configs (no job is launched)."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose(
            "config",
            overrides=["hparams_search=deep_optuna", f"hydra.sweep.dir={tmp_path}", *overrides],
            return_hydra_config=True,
        )
    sweeper = instantiate(cfg.hydra.sweeper)
    sweeper.setup(hydra_context=HydraContext(config_loader=None, callbacks=None), task_function=None, config=cfg)
    return sweeper


@pytest.mark.parametrize(
    ("overrides", "arguments", "line"),
    [
        (["hydra.sweeper.n_jobs=0"], [], "hydra.sweeper.n_jobs=0: must be an integer >= 1"),
        (["hydra.sweeper.n_trials=-1"], [], "hydra.sweeper.n_trials=-1: must be an integer >= 1"),
        (["hydra.sweeper.direction=max"], [], "hydra.sweeper.direction=max: must be maximize or minimize"),
        ([], [f"{NB_HIDDEN}=interval(50,500)"], f"{NB_HIDDEN}=interval(50,500): gives floats, and {NB_HIDDEN} is an"),
        ([], [f"{LR}=interval(0.1,0.01)"], f"{LR}=interval(0.1,0.01): "),  # Optuna's low > high, in one line
        (["hydra.sweep.subdir=x"], [], "hydra.sweep.subdir=x: must hold ${hydra.job.num}"),
    ],
)
def test_a_bad_sweeper_setting_is_one_line_before_the_first_trial(tmp_path, overrides, arguments, line):
    with pytest.raises(SystemExit) as stop:
        search_sweeper(tmp_path, *overrides).sweep(arguments)
    assert str(stop.value).startswith(line) and "\n" not in str(stop.value)
    assert not list(tmp_path.iterdir())  # nothing was started


def test_a_search_with_n_jobs_below_one_stops_with_one_line(run_cli, tmp_path):
    proc = run_cli(*SEARCH, "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=-1", *TINY, check=False)
    assert proc.returncode == 1 and "Launching" not in proc.stdout + proc.stderr
    assert [line for line in proc.stderr.splitlines() if "hydra.sweeper.n_jobs" in line] == [
        "hydra.sweeper.n_jobs=-1: must be an integer >= 1"
    ]


def test_a_stored_study_holds_one_search(tmp_path):
    url = f"sqlite:///{tmp_path}/search.db"
    storage = f"hydra.sweeper.storage={url}"
    siamese = search_sweeper(tmp_path, "model=siamese", storage)
    space, _ = siamese.space([])
    study = siamese.study(space)
    for value in (0.8, 0.9):  # two finished trials of a siamese search
        study.tell(study.ask(space), value)
    twin = search_sweeper(tmp_path, "model=twin", storage)
    assert twin.study(space).trials == []  # another model, another study: nothing borrowed
    chosen = search_sweeper(tmp_path, "model=twin", storage, "hydra.sweeper.study_name=deep_optuna_siamese")
    assert len(chosen.study(space).trials) == 2  # a study named on purpose is the one continued
    for overrides, arguments, key in [
        (["hydra.sweeper.direction=minimize"], [], "hydra.sweeper.direction=minimize"),
        ([], [f"{NB_HIDDEN}=choice(64,128)"], NB_HIDDEN),
    ]:
        with pytest.raises(SystemExit, match=f"^{re.escape(key)}: the stored study deep_optuna_siamese"):
            search_sweeper(tmp_path, "model=siamese", storage, *overrides).sweep(arguments)
    states = [t.state for t in optuna.load_study(study_name="deep_optuna_siamese", storage=url).trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * 2  # the refused commands left no trial behind
