"""Job identity: folder names, resume, report groups and duplicates follow what a job computes."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pandas as pd
import yaml
from conftest import CONF, ROOT
from hydra import compose, initialize_config_dir
from test_report import write_job

from pairmnist.analysis.report import write_report
from pairmnist.jobs.hydra_callbacks import MAX_NAME, job_name
from pairmnist.record import identity_id
from pairmnist.train import study_config

# The tiny size.
SMALL = ["trainer.max_epochs=1", "data.n_pairs=100", "data.n_val_pairs=100", "data.batch_size=20"]
SMALL += ["~callbacks.progress_bar"]


def _config(**changes):
    config = {"seed": 0, "model": {"optimizer": {"lr": 0.001}, "aux_weight": 0.5}, "data": {"n_pairs": 1000}}
    config["trainer"] = {}
    config["callbacks"] = {}
    for part, values in changes.items():
        config[part] = {**config[part], **values} if isinstance(values, dict) else values
    return config


def test_identity_ignores_the_seed_number_forms_and_display_only_keys():
    base = identity_id(_config())
    assert len(base) == 10 and int(base, 16) >= 0
    assert identity_id(_config(seed=7)) == base
    assert identity_id(_config(model={"aux_weight": 0.5, "optimizer": {"lr": 1e-3}})) == base  # order, 1e-3 == 0.001
    assert identity_id(_config(data={"n_pairs": 1000.0})) == base  # 1000.0 is 1000
    assert identity_id(_config(trainer={"enable_model_summary": False, "log_every_n_steps": 5})) == base
    assert identity_id(_config(model={"scheduler": {"_target_": "torch.optim.lr_scheduler.StepLR"}})) != base
    assert identity_id(_config(trainer={"max_epochs": 3})) != base
    saving = {"_target_": "pairmnist.train.FinalCheckpoint", "dirpath": "/a/job/folder"}
    assert identity_id(_config(callbacks={"final_checkpoint": saving, "progress_bar": None})) == base
    stopping = {"_target_": "pytorch_lightning.callbacks.EarlyStopping", "monitor": "val/acc"}
    assert identity_id(_config(callbacks={"final_checkpoint": saving, "early_stopping": stopping})) != base


def test_override_order_and_resume_and_duplicates_by_identity(run_cli, tmp_path):
    sweep = tmp_path / "S"
    run_cli(
        "-m", "model.optimizer.lr=0.01,0.001", "model.net.nb_hidden=100", "seed=0", *SMALL, f"hydra.sweep.dir={sweep}"
    )
    first = sorted(p.parent for p in sweep.glob("*/metrics.json"))
    assert len(first) == 2
    first[0].rename(sweep / "renamed-by-hand")  # names are never read from disk: that job trains again...
    proc = run_cli(  # ...while the other, its overrides typed in another order, is found in its folder and resumed
        "-m",
        "model.net.nb_hidden=100",
        "model.optimizer.lr=0.01,0.001",
        "seed=0",
        *SMALL,
        "resume=true",
        f"hydra.sweep.dir={sweep}",
    )
    assert (proc.stdout + proc.stderr).count("not retrained") == 1
    assert sorted(p.parent for p in sweep.glob("*/metrics.json")) == sorted([*first, sweep / "renamed-by-hand"])
    summary = pd.read_csv(sweep / "summary.csv")  # ...and the report counts it once, by identity and seed
    assert summary.n_runs.tolist() == [1, 1] and sorted(summary["lr"]) == [0.001, 0.01]
    assert "renamed-by-hand" in (sweep / "summary.md").read_text().partition("## Duplicates set aside")[2]


def test_duplicates_across_sweeps_count_once_and_are_named(run_cli, tmp_path):
    for sweep in ("a", "b"):
        run_cli("-m", "model=shallow", "seed=0,1", *SMALL, f"hydra.sweep.dir={tmp_path / 'X' / sweep}")
    proc = run_cli_report(tmp_path / "X")
    summary = pd.read_csv(tmp_path / "X" / "summary.csv")
    assert summary.n_runs.tolist() == [2]
    assert "set aside 2 duplicate job(s)" in proc
    md = (tmp_path / "X" / "summary.md").read_text()
    assert "## Duplicates set aside (2" in md and "`a/shallow_" in md and "(kept: `b/shallow_" in md


def run_cli_report(folder):
    """``python src/report.py <folder>`` in a subprocess; its stdout."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "src" / "report.py"), str(folder)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_net_override_makes_its_own_group_with_its_short_column(run_cli, tmp_path):
    sweep = tmp_path / "S"
    run_cli("-m", "model=siamese", "model.net.nb_hidden=20,30", "seed=0,1", *SMALL, f"hydra.sweep.dir={sweep}")
    summary = pd.read_csv(sweep / "summary.csv")
    assert summary.n_runs.tolist() == [2, 2] and sorted(summary["nb_hidden"]) == [20, 30]
    records = [json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")]
    assert {r["nb_hidden"] for r in records} == {20, 30} == {r["config"]["model"]["net"]["nb_hidden"] for r in records}
    names = sorted(p.parent.name for p in sweep.glob("*/metrics.json"))  # settings by short name
    assert [n for n in names if "_nb_hidden20_" in n or "_nb_hidden30_" in n] == names and len(names) == 4


def test_a_schedule_override_is_a_column_of_its_own(tmp_path):
    for seed in (0, 1):
        for schedule in (None, "torch.optim.lr_scheduler.StepLR"):
            write_job(
                tmp_path, f"{schedule}_{seed}", seed=seed, model_keys={"scheduler": schedule and {"_target_": schedule}}
            )
    summary = write_report(tmp_path).summary
    assert summary.n_runs.tolist() == [2, 2] and "scheduler._target_" in summary.columns  # the shortest name


def test_many_overrides_give_a_short_folder_name(run_cli, tmp_path):
    sweep = tmp_path / "S"
    many = [
        "data.batch_size=50", "data.eval_batch_size=100", "model.net.head=probabilistic", "data.augment.swap=true",
        "data.augment.shift=1", "trainer.log_every_n_steps=5", "model.optimizer.lr=0.002", "model.net.nb_hidden=64",
        "model.aux_weight=0.4", "data.n_pairs=100", "data.n_val_pairs=100", "trainer.max_epochs=1",
        "data.normalize=false", "trainer.deterministic=true", "data.source=packaged", "trainer.devices=1",
        "trainer.num_sanity_val_steps=0", "seed=0",
    ]  # fmt: skip
    run_cli("-m", *many, "~callbacks.progress_bar", f"hydra.sweep.dir={sweep}")
    (job,) = [p.parent for p in sweep.glob("*/metrics.json")]
    assert len(job.name) <= MAX_NAME and job.name.startswith("siamese_") and job.name.endswith("_seed0")
    assert "data.augment.shift=1" in json.loads((job / "metrics.json").read_text())["overrides"]
    overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())  # as Hydra passed them to the job
    assert job_name("siamese", overrides[::-1], 0) == job.name  # a pure function of the overrides, in any order
    assert job_name("siamese", [*overrides, "model.optimizer.lr=0.003"], 0) != job.name


def test_a_folder_name_lists_the_settings_sorted_and_never_the_seed():
    assert job_name("twin", ["seed=3", "model.optimizer.lr=0.01", "data.n_pairs=100", "experiment=ablation"], 3) == (
        "twin_n_pairs100_lr0.01_seed3"
    )
    two_targets = ["model.net._target_=a.B", "model.optimizer._target_=c.D"]  # shortest names that stay apart
    assert job_name("siamese", two_targets, 0, [1000, 1002]) == (
        "siamese_net._target_a.B_optimizer._target_c.D_seeds1000+1002"
    )


def test_best_yaml_command_with_a_braced_value_reruns_the_same_identity(tmp_path):
    settings = {
        "a": ["model.optimizer.lr=0.01", "data.augment={swap:false,shift:0}"],
        "b": ["model.optimizer.lr=0.001"],
    }
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        for name, overrides in settings.items():
            for seed in (1000, 1001):
                cfg = compose("config", overrides=["model=siamese", *overrides, f"seed={seed}"])
                job = write_job(tmp_path, f"{name}{seed}", seed=seed, val_acc=0.95 if name == "a" else 0.9)
                record = json.loads((job / "metrics.json").read_text())
                record.update(config=study_config(cfg), overrides=["model=siamese", *overrides, f"seed={seed}"])
                (job / "metrics.json").write_text(json.dumps(record))
        winner = write_report(tmp_path).best["siamese"]
        words = shlex.split(winner["command"])  # what bash passes to run.py
        assert words[:4] == ["python", "src/run.py", "-m", "model=siamese"] and words[-1] == "seed=range(10)"
        assert "data.augment={swap:false,shift:0}" in words  # one word, not brace-expanded
        again = compose("config", overrides=[*words[3:-1], "seed=0"])
    assert identity_id(study_config(again)) == winner["identity"]


def test_settings_that_differ_only_in_replaced_characters_or_callbacks_get_their_own_folders():
    names = {
        job_name("siamese", ["model.net.branch={_target_:a.B}"], 0),
        job_name("siamese", ["model.net.branch={_target_:a-B}"], 0),
        job_name("siamese", ["+callbacks.es={_target_:X,patience:1}"], 0),
        job_name("siamese", ["+callbacks.es={_target_:X,patience:5}"], 0),
        job_name("siamese", [], 0, [1, 2, 3]),
        job_name("siamese", [], 0, [1, 4, 3]),
    }
    assert len(names) == 6
    wide = job_name("siamese", ["model.net.head=" + "\U00020000" * 70], 0)  # 4 bytes a character
    assert len(wide.encode()) <= MAX_NAME
