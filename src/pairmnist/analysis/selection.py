"""Hyperparameter selection on validation accuracy only.

Everything here reads the group keys and the validation columns of the report's summary
(:data:`SELECTION_COLUMNS`) and nothing else, so the test pairs cannot influence a choice.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from pairmnist.jobs.naming import settings

SELECTION_COLUMNS = ["n_runs", "val_acc_mean", "val_acc_std"]


def rank(summary: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rank the groups of each model by mean validation accuracy, highest first.

    Ties go to the smaller validation std, then to the key order. Returns ``group``, the
    group keys, :data:`SELECTION_COLUMNS` and ``rank`` (1 = selected), rows ordered by model
    then rank.
    """
    view = summary[["group", *keys, *SELECTION_COLUMNS]]
    view = view.sort_values(keys, na_position="last", kind="mergesort")
    by_score = ["val_acc_mean", "val_acc_std"]
    view = view.sort_values(by_score, ascending=[False, True], na_position="last", kind="mergesort")
    view = view.sort_values("model", kind="mergesort").reset_index(drop=True)
    return view.assign(rank=view.groupby("model").cumcount() + 1)


def best(ranked: pd.DataFrame, job_overrides: dict[int, list[str]]) -> dict[str, dict[str, Any]]:
    """Per model with more than one group: the winner's settings, its score and the 10-seed command.

    Args:
        ranked: the output of :func:`rank`, with ``group`` ids.
        job_overrides: group id -> the command-line overrides of one of its jobs.

    Returns:
        ``{model: {"overrides": [...], "val_acc_mean": float, "val_acc_std": float | None,
        "n_runs": int, "command": str}}``. ``overrides`` are the winner's command-line
        settings (:func:`pairmnist.jobs.naming.settings`: everything but the seed, sweep presets
        and bookkeeping), so ``command`` re-runs exactly that setting on seeds 0-9.
    """
    chosen = {}
    for model, rows in ranked.groupby("model", sort=True):
        if len(rows) < 2:
            continue
        top = rows[rows["rank"] == 1].iloc[0]
        kept = [f"{k}={v}" for k, v in settings(job_overrides.get(int(top["group"]), [])) if k != "model"]
        overrides = [f"model={model}", *kept]
        chosen[str(model)] = {
            "overrides": overrides,
            "val_acc_mean": float(top["val_acc_mean"]),
            "val_acc_std": None if pd.isna(top["val_acc_std"]) else float(top["val_acc_std"]),
            "n_runs": int(top["n_runs"]),
            "command": "python src/run.py -m " + " ".join(overrides) + " 'seed=range(10)'",
        }
    return chosen
