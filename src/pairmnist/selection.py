"""Hyperparameter selection on validation accuracy only.

Everything here reads the group keys and the validation columns of the report's summary
(:data:`SELECTION_COLUMNS`) and nothing else, so the test pairs cannot influence a choice.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

SELECTION_COLUMNS = ["n_runs", "val_acc_mean", "val_acc_std"]
# Report column -> the command-line key that sets it.
OVERRIDE_KEYS = {k: f"model.{k}" for k in ("aux_weight", "lr", "nb_hidden", "head")}


def rank(summary: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rank the groups of each model by mean validation accuracy, highest first.

    Ties go to the smaller validation std, then to the key order. Returns the group keys,
    :data:`SELECTION_COLUMNS` and ``rank`` (1 = selected), plus the ``group`` id when
    ``summary`` has one, rows ordered by model then rank.
    """
    view = summary[[c for c in ("group",) if c in summary] + keys + SELECTION_COLUMNS]
    view = view.sort_values(keys, na_position="last", kind="mergesort")
    by_score = ["val_acc_mean", "val_acc_std"]
    view = view.sort_values(by_score, ascending=[False, True], na_position="last", kind="mergesort")
    view = view.sort_values("model", kind="mergesort").reset_index(drop=True)
    return view.assign(rank=view.groupby("model").cumcount() + 1)


def swept_keys(summary: pd.DataFrame, keys: list[str], model: str) -> list[str]:
    """The keys (other than ``model``) that take several values among ``model``'s groups."""
    rows = summary[summary["model"] == model]
    return [k for k in keys[1:] if rows[k].nunique(dropna=False) > 1]


def _value(value: Any) -> str:
    """A config value as typed on the command line (1.0 -> 1, 0.001 -> 0.001)."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def best(ranked: pd.DataFrame, keys: list[str]) -> dict[str, dict[str, Any]]:
    """Per model with more than one group: the winner's overrides, its score and the 10-seed command.

    Returns ``{model: {"overrides": [...], "val_acc_mean": float, "val_acc_std": float | None,
    "n_runs": int, "command": str}}``; ``overrides`` set the keys swept for that model.
    """
    chosen = {}
    for model, rows in ranked.groupby("model", sort=True):
        if len(rows) < 2:
            continue
        top = rows[rows["rank"] == 1].iloc[0]
        overrides = [f"model={model}"] + [
            f"{OVERRIDE_KEYS.get(k, k)}={_value(top[k])}" for k in swept_keys(ranked, keys, model)
        ]
        chosen[str(model)] = {
            "overrides": overrides,
            "val_acc_mean": float(top["val_acc_mean"]),
            "val_acc_std": None if pd.isna(top["val_acc_std"]) else float(top["val_acc_std"]),
            "n_runs": int(top["n_runs"]),
            "command": "python src/run.py -m " + " ".join(overrides) + " 'seed=range(10)'",
        }
    return chosen
