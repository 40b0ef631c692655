"""Grid search: the grid configs, validation-only selection, ranking.md and best.yaml."""

from __future__ import annotations

import json

import yaml
from conftest import CONF, TINY, unpadded
from hydra import compose, initialize_config_dir
from test_report import write_job

from pairmnist.analysis.report import rank, write_report


def test_grids_are_the_original_reports_over_tuning_seeds():
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        deep = compose("config", overrides=["hparams_search=deep_grid"], return_hydra_config=True)
        shallow = compose("config", overrides=["hparams_search=shallow_grid"], return_hydra_config=True)
    assert dict(deep.hydra.sweeper.params) == {
        "model": "twin,siamese",
        "model.optimizer.lr": "1e-4,1e-3,1e-2",
        "model.net.nb_hidden": "100,300,500",
        "model.aux_weight": "0,0.5,1",
        "seed": "1000,1001,1002",
    }
    assert set(shallow.hydra.sweeper.params) == {"model", "model.optimizer.lr", "model.net.nb_hidden", "seed"}
    assert not {0, 1, 2, 3, 4, 5, 6, 7, 8, 9} & {int(s) for s in deep.hydra.sweeper.params.seed.split(",")}


def test_selection_follows_validation_not_test(tmp_path):
    # lr 1e-2 wins on validation; lr 1e-3 would win on test. The choice must be 1e-2.
    for seed in (1000, 1001):
        write_job(tmp_path, f"a{seed}", seed=seed, lr=1e-2, val_acc=0.95, test_acc=0.80)
        write_job(tmp_path, f"b{seed}", seed=seed, lr=1e-3, val_acc=0.90, test_acc=0.99)
        write_job(tmp_path, f"c{seed}", seed=seed, lr=1e-4, aux_weight=1.0, val_acc=0.50, test_acc=0.50)
    report = write_report(tmp_path)
    assert report.best["siamese"]["overrides"] == ["model=siamese", "model.aux_weight=0.5", "model.optimizer.lr=0.01"]
    assert report.best["siamese"]["settings"] == {"aux_weight": 0.5, "lr": 0.01}  # by short name
    assert report.best["siamese"]["n_runs"] == 2 and report.best["siamese"]["val_acc_mean"] == 0.95
    text = (tmp_path / "best.yaml").read_text()
    (line,) = [line for line in text.splitlines() if "command:" in line]
    assert line.endswith("'seed=range(10)'")  # one line, pasted as it reads
    saved = yaml.safe_load(text)
    assert saved["siamese"]["command"] == (
        "python src/run.py -m model=siamese model.aux_weight=0.5 model.optimizer.lr=0.01 'seed=range(10)'"
    )
    ranking = unpadded((tmp_path / "ranking.md").read_text())
    assert "not used for selection" in ranking and "test acc % (not used)" in ranking
    assert "no gradient at aux_weight=1" in ranking  # shown, not dropped


def test_a_tie_on_validation_is_broken_without_test_numbers_and_everything_agrees_on_the_winner(tmp_path):
    # lr 1e-2 and 1e-3 tie on mean validation accuracy; 1e-3 has the better test accuracy and comes first in
    # the key order, 1e-2 the smaller validation std, so 1e-2 wins. 1e-4 and 3e-4 tie on mean and std: the
    # key order (1e-4 first) decides, though 3e-4 tests better. Seven groups: the comparisons have one reference.
    vals = {1e-2: (0.95, 0.95, 0.90), 1e-3: (0.94, 0.96, 0.99), 1e-4: (0.90, 0.90, 0.85), 3e-4: (0.90, 0.90, 0.95)}
    vals |= {lr: (0.8, 0.8 + lr, 0.8) for lr in (2e-5, 3e-5, 5e-5)}
    for lr, (val0, val1, test) in vals.items():
        for seed, val in ((1000, val0), (1001, val1)):
            write_job(tmp_path, f"{lr}_{seed}", seed=seed, lr=lr, val_acc=val, test_acc=test)
    report = write_report(tmp_path)
    summary = report.summary.set_index("lr")
    winner = summary.loc[1e-2, "identity"]
    assert summary["test_acc_mean"].idxmax() != 1e-2  # the test set would have picked another
    assert report.best["siamese"]["identity"] == winner
    assert yaml.safe_load((tmp_path / "best.yaml").read_text())["siamese"]["identity"] == winner
    assert set(report.comparisons["identity_a"]) == {winner} and len(report.comparisons) == 6
    assert rank(report.summary, report.keys)["lr"].tolist()[:4] == [1e-2, 1e-3, 1e-4, 3e-4]


def test_rank_reads_only_keys_and_validation_columns(tmp_path):
    for seed in (1, 2):
        write_job(tmp_path, f"a{seed}", seed=seed, lr=1e-2, val_acc=0.9 + seed / 100)
        write_job(tmp_path, f"b{seed}", seed=seed, lr=1e-3, val_acc=0.8)
    summary = write_report(tmp_path).summary
    keys = ["model", "lr"]
    blind = summary.drop(columns=[c for c in summary if c.startswith(("test_", "digit_"))])
    assert rank(blind, keys)["lr"].tolist() == [1e-2, 1e-3]


def test_miniature_grid_through_the_real_configs(run_cli, tmp_path):
    sweep = tmp_path / "grid"
    proc = run_cli(
        "-m",
        "hparams_search=deep_grid",
        "model=siamese",
        "model.optimizer.lr=1e-3,1e-2",
        "model.net.nb_hidden=20",
        "model.aux_weight=0.5",
        "seed=1000",
        f"hydra.sweep.dir={sweep}",
        *TINY,
    )
    assert len(list(sweep.glob("*/metrics.json"))) == 2
    best = yaml.safe_load((sweep / "best.yaml").read_text())["siamese"]
    assert best["overrides"][1] in ("model.optimizer.lr=0.001", "model.optimizer.lr=0.01") and best["n_runs"] == 1
    assert "debug=tiny" in best["overrides"]  # fixed settings kept
    assert not any(o.startswith(("seed=", "hparams_search=", "hydra.", "~")) for o in best["overrides"])
    assert "## siamese" in (sweep / "ranking.md").read_text()
    assert best["command"] in proc.stdout


def test_an_experiment_compares_its_settings_and_selects_none(tmp_path):
    for seed in (0, 1):
        for w in (0.0, 0.5):
            job = write_job(tmp_path, f"w{w}_s{seed}", seed=seed, aux_weight=w, val_acc=0.8 + w / 10 + seed / 100)
            record = json.loads((job / "metrics.json").read_text())
            record["overrides"].append("experiment=ablation")
            (job / "metrics.json").write_text(json.dumps(record))
    report = write_report(tmp_path)
    assert report.best == {} and not (tmp_path / "best.yaml").exists() and not (tmp_path / "ranking.md").exists()
    assert report.markdown.startswith("# Study summary") and len(report.comparisons) == 1
