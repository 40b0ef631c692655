"""Hyperparameter selection on validation accuracy only.

Everything here reads the group keys and the validation columns of the report's summary
(:data:`SELECTION_COLUMNS`), the per-seed validation accuracies and the winners' command-line
overrides, and nothing else, so the test pairs cannot influence a choice.
"""

from __future__ import annotations

import shlex
from typing import Any

import pandas as pd

from pairmnist.analysis.stats import paired
from pairmnist.record import settings

SELECTION_COLUMNS = ["identity", "n_runs", "val_acc_mean", "val_acc_std"]


def sort_key(column: pd.Series) -> pd.Series:
    """A key that sorts a column mixing numbers and text ("null"): numbers by value, then text, then missing."""

    def key(v: Any) -> tuple:
        if isinstance(v, str):
            return (1, v)
        return (2, "") if pd.isna(v) else (0, v)

    return column.map(key)


def rank(summary: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rank the groups of each model by mean validation accuracy, highest first.

    Ties go to the smaller validation std, then to the key order. Returns ``group``, the
    group keys, :data:`SELECTION_COLUMNS` and ``rank`` (1 = selected), rows ordered by model
    then rank.
    """
    view = summary[["group", *keys, *SELECTION_COLUMNS]]
    view = view.sort_values(keys, na_position="last", kind="mergesort", key=sort_key)
    by_score = ["val_acc_mean", "val_acc_std"]
    view = view.sort_values(by_score, ascending=[False, True], na_position="last", kind="mergesort")
    view = view.sort_values("model", kind="mergesort").reset_index(drop=True)
    return view.assign(rank=view.groupby("model").cumcount() + 1)


def versus_winner(ranked: pd.DataFrame, val_by_group: dict[int, dict[int, float]]) -> pd.DataFrame:
    """Add ``vs_winner``: is each group's validation accuracy distinguishable from its model's winner's?

    Paired over the seeds both ran (:func:`pairmnist.analysis.stats.paired`): "lower" when the
    95 % CI of winner − group excludes 0, else "not distinguishable", with the difference in
    points and the paired t-test p-value; "not comparable" below 2 shared seeds.

    Args:
        ranked: the output of :func:`rank`.
        val_by_group: group -> {seed: validation accuracy (fraction)}.
    """
    marks = []
    for r in ranked.to_dict("records"):
        winner = ranked[(ranked["model"] == r["model"]) & (ranked["rank"] == 1)]["group"].iloc[0]
        if r["group"] == winner:
            marks.append("winner")
            continue
        result = paired(val_by_group[winner], val_by_group[r["group"]])
        if result is None:
            marks.append("not comparable (< 2 shared seeds)")
            continue
        if result.ci_low == result.ci_high:  # the same gap on every seed: no interval to judge by
            verdict = "same gap on every seed, no interval"
        else:
            verdict = "lower" if result.ci_low > 0 else "not distinguishable"
        p = "" if pd.isna(result.p_ttest) else f", p={result.p_ttest:.2g}"
        marks.append(f"{verdict} ({-100 * result.mean_diff:+.2f} points, {result.n_seeds} seeds{p})")
    return ranked.assign(vs_winner=marks)


def best(
    ranked: pd.DataFrame, job_overrides: dict[int, list[str]], identities: dict[int, str]
) -> dict[str, dict[str, Any]]:
    """Per model with more than one group: the winner's settings, its score and the 10-seed command.

    Args:
        ranked: the output of :func:`rank`, with ``group`` ids.
        job_overrides: group -> the command-line overrides of its newest job (every job of a
            group has the same identity, so any of them re-creates it).
        identities: group -> identity id.

    Returns:
        ``{model: {"identity": str, "overrides": [...], "val_acc_mean": float, "val_acc_std":
        float | None, "n_runs": int, "command": str}}``. ``overrides`` are the winner's
        command-line settings (:func:`pairmnist.jobs.naming.settings`: everything but the seed,
        sweep presets and bookkeeping); ``command`` re-runs exactly that identity on seeds
        0-9, each override one shell word (``shlex.quote``: a value with braces, commas, spaces or
        quotes is quoted, so bash neither expands nor splits it).
    """
    chosen = {}
    for model, rows in ranked.groupby("model", sort=True):
        if len(rows) < 2:
            continue
        top = rows[rows["rank"] == 1].iloc[0]
        kept = [o for o in job_overrides.get(int(top["group"]), []) if settings([o]) and not o.startswith("model=")]
        overrides = [f"model={model}", *kept]
        chosen[str(model)] = {
            "identity": identities[int(top["group"])],
            "overrides": overrides,
            "val_acc_mean": float(top["val_acc_mean"]),
            "val_acc_std": None if pd.isna(top["val_acc_std"]) else float(top["val_acc_std"]),
            "n_runs": int(top["n_runs"]),
            "command": "python src/run.py -m " + " ".join(map(shlex.quote, overrides)) + " 'seed=range(10)'",
        }
    return chosen
