"""The report on synthetic job folders: statistics, grouping, failures, files."""

from __future__ import annotations

import json
import statistics

import pandas as pd
import pytest
from conftest import unpadded

from pairmnist.analysis.report import REPORT_FILES, write_report
from pairmnist.analysis.results import main
from pairmnist.record import Record


def write_job(
    root, name, model="siamese", seed=0, test_acc=0.9, val_acc=0.9, aux_weight=0.5, lr=1e-3, finished=None, **config
):
    """A job folder as run.py leaves it, with a metrics.json of the given values.

    ``data={...}`` and ``model_keys={...}`` (keys of the ``model`` node) change the resolved config.
    """
    job = root / name
    (job / ".hydra").mkdir(parents=True)
    data = {"n_pairs": 1000, "batch_size": 100, **config.pop("data", {})}
    head = None if model == "shallow" else "learned"
    overrides = [f"model={model}", f"model.aux_weight={aux_weight}", f"model.optimizer.lr={lr}", f"seed={seed}"]
    overrides += [f"data.{k}={v}" for k, v in data.items() if v != {"n_pairs": 1000, "batch_size": 100}.get(k)]
    net = {"_target_": f"pairmnist.models.nets.{model.title()}", "_partial_": True, "nb_hidden": 100, "head": head}
    optimizer = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": lr}
    node = {"_target_": "pairmnist.models.module.PairModule", "aux_weight": aux_weight, "optimizer": optimizer}
    node["net"] = net
    node.update(config.pop("model_keys", {}))
    overrides += [f"model.{k}={v}" for k, v in node.items() if k not in ("_target_", "optimizer", "aux_weight", "net")]
    record = {
        "model": model,
        "seed": seed,
        "identity": "",
        "aux_weight": aux_weight,
        "lr": lr,
        "nb_hidden": 100,
        "head": head,
        "n_params": 24_936,
        "n_pairs": data["n_pairs"],
        "n_test_pairs": data["n_pairs"],
        "epochs": 3,
        "test_acc": test_acc,
        "test_loss": 0.3,
        "test_digit_acc": None if model == "shallow" else 0.95,
        "val_acc": val_acc,
        "val_loss": 0.3,
        "val_digit_acc": None if model == "shallow" else 0.95,
        "val_epoch": 3,
        "fit_seconds": 4.0 + seed,
        "history": {
            "train_loss": [1.0, 0.5, 0.2],
            "train_acc": [0.6, 0.8, 0.9],
            "val_loss": [1, 0.6, 0.3],
            "val_acc": [0.6, 0.8, val_acc],
        },
        "device": "cpu",
        "cpu": "a CPU",
        "threads": 1,
        "torch": "2",
        "python": "3",
        "finished": finished or f"2026-11-30T10:00:{seed % 60:02d}+00:00",
        "overrides": overrides,
        "config": {"seed": seed, "model": node, "data": data, "trainer": {"max_epochs": 3}},
    }
    assert record.keys() == Record.__annotations__.keys()  # a record as the schema has it
    (job / "metrics.json").write_text(json.dumps(record))
    return job


def test_means_and_sample_std_per_group(tmp_path):
    accs = {"siamese": [0.91, 0.93, 0.95], "twin": [0.88, 0.90]}
    for model, values in accs.items():
        for seed, acc in enumerate(values):
            write_job(tmp_path, f"{model}_seed{seed}", model=model, seed=seed, test_acc=acc, val_acc=acc - 0.01)
    report = write_report(tmp_path)
    s = report.summary.set_index("model")
    assert list(report.summary.model) == ["siamese", "twin"]  # sorted by mean test accuracy
    for model, values in accs.items():
        assert s.loc[model, "n_runs"] == len(values)
        assert s.loc[model, "test_acc_mean"] == pytest.approx(statistics.mean(values))
        assert s.loc[model, "test_acc_std"] == pytest.approx(statistics.stdev(values))  # ddof=1
        assert s.loc[model, "test_acc_median"] == pytest.approx(statistics.median(values))
        assert s.loc[model, "val_acc_mean"] == pytest.approx(statistics.mean(values) - 0.01)
    assert s.loc["siamese", "fit_seconds_mean"] == pytest.approx(5.0)
    assert "93.00 ± 2.00" in report.markdown  # percent, mean ± sample std
    assert "Finished jobs: 5, in 2 group(s)" in report.markdown
    for name in REPORT_FILES:
        assert (tmp_path / name).stat().st_size > 0


def test_groups_follow_every_swept_key_but_seed(tmp_path):
    for seed in range(2):
        for w in (0.0, 0.5):
            write_job(tmp_path, f"w{w}_s{seed}", seed=seed, aux_weight=w, test_acc=0.9 + w / 10)
        write_job(tmp_path, f"big_s{seed}", seed=seed, data={"n_pairs": 2000})
    summary = write_report(tmp_path).summary
    assert len(summary) == 3 and list(summary.n_runs) == [2, 2, 2]
    assert "n_pairs" in summary.columns  # a swept key beyond the standard ones, by its short name
    assert "batch_size" not in summary.columns  # the same everywhere: no column
    groups = sorted(zip(summary["aux_weight"], summary["n_pairs"], strict=True))
    assert groups == [(0, 1000), (0.5, 1000), (0.5, 2000)]


def test_a_setting_that_differs_is_shown_even_when_another_column_separates_the_rows(tmp_path):
    write_job(tmp_path, "a", lr=1e-3)
    write_job(tmp_path, "b", lr=1e-4, data={"batch_size": 50})  # lr alone tells the rows apart
    summary = write_report(tmp_path).summary.set_index("lr")
    assert summary.loc[1e-4, "batch_size"] == 50 and summary.loc[1e-3, "batch_size"] == 100


def test_failed_and_missing_jobs_are_named_not_dropped(tmp_path, capsys):
    write_job(tmp_path, "siamese_seed0", seed=0, test_acc=0.92)
    write_job(tmp_path, "siamese_seed1", seed=1, test_acc=0.94)
    crashed = write_job(tmp_path, "siamese_seed2", seed=2)
    (crashed / "error.txt").write_text("FloatingPointError: train/loss is nan\n")
    (tmp_path / "siamese_seed3" / ".hydra").mkdir(parents=True)  # interrupted before metrics.json
    assert main([str(tmp_path)]) == 0
    report = write_report(tmp_path)
    assert report.summary.n_runs.tolist() == [2]
    assert set(report.jobs.failed) == {"siamese_seed2", "siamese_seed3"}
    md = (tmp_path / "summary.md").read_text()
    assert "`siamese_seed2`: failed: FloatingPointError: train/loss is nan" in md
    assert "`siamese_seed3`: no metrics.json" in md
    assert "siamese_seed3" in capsys.readouterr().out


def test_single_run_group_has_empty_std(tmp_path):
    write_job(tmp_path, "shallow_seed0", model="shallow", test_acc=0.8)
    report = write_report(tmp_path)
    row = pd.read_csv(tmp_path / "summary.csv").iloc[0]
    assert pd.isna(row.test_acc_std) and pd.isna(row.digit_acc_mean)
    assert ",0.8,," in (tmp_path / "summary.csv").read_text()  # empty cells, not 0 or "nan"
    assert "| 80.00 |" in unpadded(report.markdown) and "nan" not in report.markdown.lower()


def test_cli_rewrites_identical_summary_and_reads_several_sweeps(tmp_path):
    for sweep in ("a", "b"):
        for seed in range(2):
            write_job(tmp_path / sweep, f"siamese_seed{seed}", seed=seed, lr=1e-3 if sweep == "a" else 1e-2)
    write_report(tmp_path / "a")
    first = (tmp_path / "a" / "summary.csv").read_bytes()
    assert main([str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "summary.csv").read_bytes() == first
    both = write_report(tmp_path).summary  # the parent of both sweeps
    assert sorted(both["lr"]) == [1e-3, 1e-2] and both.n_runs.tolist() == [2, 2]


def test_cli_errors_on_a_folder_without_jobs(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main([str(tmp_path)])
    assert info.value.code != 0 and "no finished job" in capsys.readouterr().err
