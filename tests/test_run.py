"""Jobs through the real configs: metrics.json, TensorBoard, checkpoints, bad values."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
import torch
from conftest import CONF, ROOT, TINY
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from pairmnist.jobs.hydra_callbacks import CheckJobs
from pairmnist.record import Record
from pairmnist.train import accelerator, check, explain, launch_path
from pairmnist.train import run as run_job


@pytest.mark.parametrize("model", ["shallow", "twin", "siamese", "siamese_plus"])
def test_each_model_writes_a_complete_metrics_json(make_cfg, model):
    cfg = make_cfg(f"model={model}", "seed=0")
    val_acc = run_job(cfg)
    out = Path(cfg.paths.output_dir)
    record = json.loads((out / "metrics.json").read_text())
    assert record.keys() == Record.__annotations__.keys()  # the schema, field for field
    assert record["model"] == model and record["seed"] == 0 and record["epochs"] == 1
    assert record["val_acc"] == val_acc
    assert 0 <= record["test_acc"] <= 1 and 0 <= record["val_acc"] <= 1 and record["fit_seconds"] > 0
    assert (record["test_digit_acc"] is None) == (model == "shallow")
    assert {k: len(v) for k, v in record["history"].items()} == dict.fromkeys(
        ["train_loss", "train_acc", "val_loss", "val_acc"], 1
    )
    assert record["history"]["val_acc"][-1] == record["val_acc"]
    assert record["n_params"] == {"shallow": 197_502, "twin": 47_570, "siamese": 24_936, "siamese_plus": 258_170}[model]
    checkpoint = torch.load(out / "checkpoints" / "final.ckpt", weights_only=True)  # torch's safe loader
    plain = {"aux_weight": cfg.model.aux_weight, "label_smoothing": cfg.model.label_smoothing}
    assert checkpoint["hyper_parameters"] == {**plain, "ema_decay": cfg.model.ema_decay, "ensemble": 1}
    assert checkpoint["state_dict"].keys() == {f"nets.0.{k}" for k in instantiate(cfg.model.net)().state_dict()}
    assert list(out.glob("events.out.tfevents.*")) and (out / "hparams.yaml").is_file()


def test_model_defaults_are_the_original_reports(make_cfg):
    shallow, twin = make_cfg("model=shallow"), make_cfg("model=twin")
    assert (shallow.model.optimizer.lr, shallow.model.net.nb_hidden, shallow.model.aux_weight) == (1e-4, 500, 0)
    assert (twin.model.optimizer.lr, twin.model.net.nb_hidden, twin.model.aux_weight) == (1e-3, 100, 0.5)
    assert twin.model.net._target_.endswith("PairNet") and twin.model.net.share_weights is False
    assert twin.model.scheduler is None and twin.model.scheduler_config.interval == "epoch"
    assert twin.trainer.max_epochs == 1
    assert make_cfg(tiny=False).trainer.max_epochs == 25


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.aux_weight=1.5", r"^model.aux_weight=1.5: must be within \[0, 1\]$"),
        ("model=shallow model.aux_weight=0.5", r"^model.aux_weight=0.5: allowed: 0 \(this net has no digit outputs\)$"),
        ("model.net.head=digits", r"^model.aux_weight=0.5: allowed: 1 \(the comparison has no gradient"),
        ("model.net.head=mlp", "^model.net.head=mlp: allowed: learned, digits, probabilistic$"),
        ("model.net.nb_hidden=0", "^model.net.nb_hidden=0: must be an integer >= 1$"),
        ("model=shallow model.net.nb_hidden=-5", "^model.net.nb_hidden=-5: must be an integer >= 1$"),
        ("model.net.share_weights=flase", "^model.net.share_weights=flase: must be true or false$"),
        ("model.net.tta_shift=-1", r"^model.net.tta_shift=-1: must be an integer in \[0, 3\]"),
        ("model.optimizer.lr=0", "^model.optimizer.lr=0: must be a finite number > 0$"),
        ("model.optimizer.lr=inf", "^model.optimizer.lr=inf: must be a finite number > 0$"),
        ("model.optimizer.lr=abc", "^model.optimizer.lr=abc: must be a finite number > 0$"),
        ("model.ema_decay=1.5", r"^model.ema_decay=1.5: must be null \(off\) or in \[0, 1\)$"),
        ("model.label_smoothing=2", r"^model.label_smoothing=2: must be in \[0, 1\)$"),
        ("model.scheduler=3", "^model.scheduler=3: must be null or make a scheduler$"),
        ("model.scheduler_config.interval=batch", "^model.scheduler_config.interval=batch: allowed: epoch, step$"),
        ("+model.scheduler_config.foo=1", "^model.scheduler_config.foo=1: unknown key; allowed: interval, frequency"),
        ("model=siamese_plus model.net.branch.width=0", "^model.net.branch.width=0: must be an integer >= 1$"),
        ("model=siamese_plus model.net.branch.dropout=1.5", r"^model.net.branch.dropout=1.5: must be in \[0, 1\)$"),
        ("+model.net.width=64", "^model.net.width: unknown key: PairNet.* unexpected keyword argument 'width'$"),
        ("+model.optimizer.foo=1", "^model.optimizer.foo: unknown key: .*unexpected keyword argument 'foo'$"),
        ("data.n_pairs=0", "^data.n_pairs=0: must be an integer >= 1$"),
        ("data.n_val_pairs=0", "^data.n_val_pairs=0: must be an integer >= 1$"),
        ("data.n_pairs=5001", r"^data.n_pairs=5001: 2\*n_pairs must be at most 10000"),
        ("data.n_pairs=4000 data.n_val_pairs=27000", "^data.n_val_pairs=27000: .*must be at most 60000"),
        ("+data.n_test_pairs=abc", r"^data.n_test_pairs=abc: must be null \(= n_pairs\) or an integer >= 1$"),
        ("data.batch_size=0", "^data.batch_size=0: must be an integer >= 1$"),
        ("data.source=mnist", "^data.source=mnist: allowed: packaged, torchvision$"),
        ("data.augment.shift=9", r"^data.augment.shift=9: must be an integer in \[0, 7\]"),
        ("data.augment.mix=2", r"^data.augment.mix=2: must be in \[0, 1\]"),
        ("+data.augment.foo=1", "^data.augment.foo=1: unknown key; allowed: swap, shift, rotate, scale, mix$"),
        ("data.num_workers=2", "^data.num_workers=2: must be 0"),
        ("data.num_workers=false", "^data.num_workers=False: must be 0"),
        ("data.normalize=1", "^data.normalize=1: must be true or false$"),
        ("+data.foo=1", "^data.foo: unknown key: PairMNISTDataModule.* unexpected keyword argument 'foo'$"),
        ("seed=-1", "^seed=-1: must be an integer in"),
        ("trainer.max_epochs=-2", "^trainer: "),  # Lightning's own check, named by its node
        ("+trainer.limit_val_batches=0", "^trainer.limit_val_batches=0: must be > 0"),
        ("tuning_seeds=abc", "^tuning_seeds=abc: must be null or a non-empty list"),
        ("tuning_seeds=1", "^tuning_seeds=1: must be null or a non-empty list"),
        ("tuning_seeds=[]", r"^tuning_seeds=\[\]: must be null or a non-empty list"),
        ("tuning_seeds=[1,1]", r"^tuning_seeds=\[1, 1\]: must be null or a non-empty list of distinct seeds"),
        ("threads=0", r"^threads=0: must be null \(measured\) or an integer >= 1$"),
        ("resume=no", "^resume=no: must be true or false$"),
    ],
)
def test_bad_values_and_unknown_keys_are_one_line_naming_the_key(make_cfg, override, message):
    cfg = make_cfg(*override.split())
    with pytest.raises(Exception) as info:
        check(cfg)
    line = explain(info.value, cfg)
    assert re.search(message, line) and "\n" not in line, line


def test_cli_bad_value_is_one_line_without_traceback(run_cli, tmp_path):
    proc = run_cli("model.aux_weight=1.5", f"hydra.run.dir={tmp_path}/run", check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert lines == ["model.aux_weight=1.5: must be within [0, 1]"], proc.stderr
    assert not (tmp_path / "run").exists()  # nothing started


@pytest.mark.parametrize(
    "override, message",
    [("model=resnet", "Could not find 'model/resnet'"), ("model.aux_wieght=0.3", "aux_wieght")],
)
def test_cli_unknown_model_or_misspelled_key(run_cli, tmp_path, override, message):
    proc = run_cli(override, f"hydra.run.dir={tmp_path}/run", check=False)
    assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr


def test_a_stray_model_yaml_key_the_same_plus_key_and_a_bad_swept_value_stop_before_any_job(run_cli, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "mine.yaml").write_text("defaults:\n  - siamese\n  - _self_\n\nwd: 1.0e-4\n")
    from_yaml = run_cli("--config-dir", str(tmp_path), "model=mine", f"hydra.run.dir={tmp_path}/a", check=False)
    from_cli = run_cli("+model.wd=1e-4", f"hydra.run.dir={tmp_path}/b", check=False)
    assert from_yaml.returncode == from_cli.returncode == 1
    assert from_yaml.stderr.strip().splitlines() == from_cli.stderr.strip().splitlines()
    (line,) = from_cli.stderr.strip().splitlines()
    assert line.startswith("model.wd: unknown key") and "'wd'" in line
    swept = run_cli("-m", *TINY, "model.optimizer.lr=1e-3,-1", f"hydra.sweep.dir={tmp_path}/c", check=False)
    assert swept.returncode == 1
    assert swept.stderr.strip().splitlines() == ["model.optimizer.lr=-1: must be a finite number > 0"]
    assert not any((tmp_path / d).exists() for d in "abc")  # no folder made, no job trained
    assert "training" not in swept.stdout + swept.stderr


def test_cli_key_a_constructor_reads_runs_and_the_run_prints_its_folders(run_cli, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli("model=shallow", *TINY, "+trainer.gradient_clip_val=1.0", f"hydra.run.dir={run_dir}")
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == f"run folder: {run_dir}" and lines[-1] == f"metrics: {run_dir / 'metrics.json'}"
    assert json.loads((run_dir / "metrics.json").read_text())["config"]["trainer"]["gradient_clip_val"] == 1.0


def test_learned_head_without_gradient_is_warned(make_cfg):
    with pytest.warns(UserWarning, match="comparison head gets no gradient"):
        instantiate(make_cfg("model.aux_weight=1").model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        instantiate(make_cfg("model.aux_weight=1", "model.net.head=digits").model)  # nothing to learn: no warning


def test_siamese_plus_recipe_and_the_ablation_experiment(make_cfg):
    plus = make_cfg("model=siamese_plus")
    assert plus.model.net.head == "probabilistic" and plus.data.augment.swap and plus.data.augment.shift == 1
    assert plus.model.net.branch._target_.endswith("DigitConvNetPlus") and plus.model.net.branch._partial_
    assert (
        plus.model.scheduler.max_lr == plus.model.optimizer.lr == 3e-3
        and plus.model.scheduler_config.interval == "step"
    )
    assert plus.trainer.max_epochs == 1 and make_cfg("model=siamese_plus", tiny=False).trainer.max_epochs == 25
    assert make_cfg("model=siamese_plus", tiny=False).data.n_pairs == 1000  # the strict protocol
    ablation = make_cfg("experiment=ablation")
    assert dict(ablation.hydra.sweeper.params) == {
        "model": "twin,siamese",
        "model.aux_weight": "0,0.5",
        "seed": "range(10)",
    }


def test_cli_failed_run_is_one_line_with_the_traceback_in_error_txt(run_cli, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(
        "model.optimizer.lr=1e30", "trainer.max_epochs=2", "data.n_pairs=100", f"hydra.run.dir={run_dir}", check=False
    )
    assert proc.returncode == 1
    message = "FloatingPointError: train/loss is nan at epoch 1: training diverged (optimizer.lr=1e+30)"
    assert proc.stderr.strip().splitlines()[-1] == f"{message} (traceback: {run_dir / 'error.txt'})"
    assert "HYDRA_FULL_ERROR" not in proc.stderr and "Error executing job" not in proc.stderr  # the line only
    error = (run_dir / "error.txt").read_text()
    assert error.startswith("FloatingPointError: train/loss is nan") and "Traceback (most recent call last)" in error


@pytest.mark.skipif(torch.cuda.is_available(), reason="the check is for machines without a GPU")
def test_gpu_trainer_without_a_gpu_is_one_line_naming_the_trainer(make_cfg):
    cfg = make_cfg("trainer=gpu")
    with pytest.raises(Exception) as info:
        check(cfg)
    assert explain(info.value, cfg).startswith("trainer: MisconfigurationException: ")


def test_resume_without_an_existing_folder_is_warned(tmp_path, data_dir, caplog):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        overrides = [*TINY, "resume=true", f"hydra.sweep.dir={tmp_path}/missing", f"paths.data_dir={data_dir}"]
        CheckJobs().on_multirun_start(compose("config", overrides=overrides, return_hydra_config=True))
    assert "nothing to resume" in caplog.text


def test_early_stopping_as_the_docs_show(make_cfg):
    """docs/models.md's `+callbacks.early_stopping=...` example monitors val/acc and stops a tiny run early."""
    (override,) = re.findall(r"'(\+callbacks\.early_stopping=\{[^']+\})'", (ROOT / "docs" / "models.md").read_text())
    cfg = make_cfg("model=shallow", "model.optimizer.lr=1e-3", "trainer.max_epochs=20", override)
    run_job(cfg)
    record = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert record["epochs"] < 20 and len(record["history"]["val_acc"]) == record["epochs"]


def test_auto_accelerator_is_cuda_or_cpu_never_apples_mps(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)  # a Mac
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert accelerator("auto") == "cpu" and accelerator("mps") == "mps"  # MPS only when asked by name
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert accelerator("auto") == "cuda"


def test_relative_paths_are_anchored_at_the_launch_folder(make_cfg, monkeypatch, tmp_path):
    monkeypatch.setenv("PAIRMNIST_ROOT", "elsewhere")
    cfg = make_cfg()
    cfg.paths.data_dir = "${paths.root_dir}/data"  # the default (make_cfg points it at the session cache)
    monkeypatch.chdir(tmp_path)  # as hydra.job.chdir=true does to a job
    assert launch_path(cfg, cfg.paths.data_dir) == Path(cfg.hydra.runtime.cwd) / "elsewhere" / "data"
    assert launch_path(cfg, tmp_path / "abs") == tmp_path / "abs"


def test_siamese_plus_without_weight_sharing_trains_two_plus_branches(make_cfg):
    unshared = make_cfg("model=siamese_plus", "model.net.share_weights=false")
    run_job(unshared)
    record = json.loads((Path(unshared.paths.output_dir) / "metrics.json").read_text())
    branch = sum(p.numel() for p in instantiate(unshared.model.net.branch)().parameters())
    assert record["n_params"] == 258_170 + branch and record["config"]["model"]["net"]["share_weights"] is False


def test_hparams_show_every_key_of_the_identity_by_its_short_name(make_cfg):
    cfg = make_cfg("+trainer.gradient_clip_val=1.0", "+model.optimizer.betas=[0.8,0.99]")
    run_job(cfg)
    out = Path(cfg.paths.output_dir)
    events = b"".join(p.read_bytes() for p in out.glob("events.out.tfevents.*"))  # TensorBoard's HPARAMS tab
    for key in (b"gradient_clip_val", b"betas", b"n_pairs", b"lr", b"optimizer._target_", b"net._target_"):
        assert key in events, key
    assert b"model/" not in events and b"model.optimizer" not in events
