"""Multiruns through src/run.py in a subprocess, as users start them."""

from __future__ import annotations

import json

import pandas as pd
from conftest import TINY


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
    assert "| shallow |" in proc.stdout  # the table is printed
