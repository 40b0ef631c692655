"""The study report: a sweep's ``metrics.json`` files -> table and figures.

Reads job folders only (never imports or re-runs training) and writes, in the folder it
is given: ``summary.csv`` (one row per group, fractions), ``summary.md`` (the same in
percent, with the jobs that failed), ``curves.png`` and ``test_acc.png``. Jobs are grouped
by every hyperparameter that differs between them except ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure

from pairmnist.analysis.selection import SELECTION_COLUMNS, best, rank
from pairmnist.atomic import atomic_path, write_text
from pairmnist.jobs.records import ERROR_FILE, METRICS_FILE, JobNotDone, load_record

BASE_KEYS = ["model", "head", "aux_weight", "lr", "nb_hidden"]
RESULTS = ["seed", "test_acc", "test_digit_acc", "val_acc", "n_params", "fit_seconds"]
# Config keys never shown as their own column: the seed, the wiring of knobs into objects,
# and the ones already in BASE_KEYS.
NOT_HYPERPARAMETERS = ("seed", "model.module.", "model.lr", "model.aux_weight", "model.nb_hidden", "model.head")
REPORT_FILES = ("summary.csv", "summary.md", "curves.png", "test_acc.png")
SELECTION_FILES = ("ranking.md", "best.yaml")  # when a model was run with several settings


@dataclass
class Jobs:
    """The job folders found under a root.

    Attributes:
        records: metrics.json records of the finished jobs, each with ``job`` (folder name).
        failed: folder name -> one-line reason, for jobs without a usable result.
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def collect(root: str | Path) -> Jobs:
    """Find every job folder under ``root`` (one sweep, several sweeps, or a single job).

    A job folder is one holding Hydra's ``.hydra/``, a ``metrics.json`` or an ``error.txt``.
    """
    root = Path(root)
    markers = (*root.rglob(".hydra"), *root.rglob(METRICS_FILE), *root.rglob(ERROR_FILE))
    jobs = Jobs()
    for folder in sorted({m.parent for m in markers}):
        name = folder.relative_to(root).as_posix() if folder != root else folder.name
        try:
            jobs.records.append({**load_record(folder), "job": name})
        except JobNotDone as e:
            jobs.failed[name] = str(e)
    return jobs


def job_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per finished job: BASE_KEYS, RESULTS, ``job``, ``overrides`` and the flattened config (``config.*``)."""
    df = pd.DataFrame([{k: r.get(k) for k in [*BASE_KEYS, *RESULTS, "job", "overrides"]} for r in records])
    config = pd.json_normalize([r["config"] for r in records]).add_prefix("config.")
    config = config.map(lambda v: str(v) if isinstance(v, list | dict) else v)
    return pd.concat([df, config], axis=1)


def group_keys(df: pd.DataFrame) -> list[str]:
    """BASE_KEYS, plus every other config key whose value differs between jobs (but seed).

    Extra keys are named without ``config.``: a sweep over ``data.n_pairs`` adds that
    column, and so does a setting that differs between two sweeps read together, even when
    another column already tells their rows apart.
    """
    keys = list(BASE_KEYS)
    for col in df.columns:
        name = col.removeprefix("config.")
        if col.startswith("config.") and not name.startswith(NOT_HYPERPARAMETERS) and df[col].nunique(dropna=False) > 1:
            df[name] = df[col]
            keys.append(name)
    return keys


def summarize(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per group of ``keys``, sorted by mean test accuracy (highest first).

    Accuracies are fractions; ``*_std`` are sample standard deviations (ddof=1), NaN for a
    group of one run; ``fit_seconds_*`` are wall-clock seconds of ``Trainer.fit``. Adds a
    ``group`` id column to ``df`` and to the summary (not written to summary.csv).
    """
    stats = {
        "n_runs": ("test_acc", "size"),
        "test_acc_mean": ("test_acc", "mean"),
        "test_acc_std": ("test_acc", "std"),
        "test_acc_median": ("test_acc", "median"),
        "test_acc_min": ("test_acc", "min"),
        "test_acc_max": ("test_acc", "max"),
        "digit_acc_mean": ("test_digit_acc", "mean"),
        "digit_acc_std": ("test_digit_acc", "std"),
        "val_acc_mean": ("val_acc", "mean"),
        "val_acc_std": ("val_acc", "std"),
        "n_params": ("n_params", "first"),
        "fit_seconds_mean": ("fit_seconds", "mean"),
        "fit_seconds_std": ("fit_seconds", "std"),
    }
    df["test_digit_acc"] = pd.to_numeric(df["test_digit_acc"])
    grouped = df.groupby(keys, dropna=False, sort=False)
    df["group"] = grouped.ngroup()
    summary = grouped.agg(**stats).reset_index()
    summary.insert(0, "group", range(len(summary)))  # ngroup numbers groups in this same order
    summary = summary.sort_values(keys, na_position="last", kind="mergesort")
    return summary.sort_values("test_acc_mean", ascending=False, kind="mergesort").reset_index(drop=True)


def _percent(mean: float, std: float) -> str:
    if pd.isna(mean):
        return ""
    return f"{100 * mean:.2f}" + ("" if pd.isna(std) else f" ± {100 * std:.2f}")


def _cell(value: Any) -> str:
    """A table cell: empty for a missing value, floats in their shortest form (0.001, 1e-05)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows])


def summary_markdown(summary: pd.DataFrame, keys: list[str], jobs: Jobs, root: Path) -> str:
    """summary.md: the groups in percent (mean ± sample std), then the failed jobs."""
    header = [*keys, "runs", "test acc %", "median", "min–max", "digit acc %", "val acc %", "params", "fit s"]
    rows = [
        [
            *(r[k] for k in keys),
            r["n_runs"],
            _percent(r["test_acc_mean"], r["test_acc_std"]),
            f"{100 * r['test_acc_median']:.2f}",
            f"{100 * r['test_acc_min']:.1f}–{100 * r['test_acc_max']:.1f}",
            _percent(r["digit_acc_mean"], r["digit_acc_std"]),
            _percent(r["val_acc_mean"], r["val_acc_std"]),
            int(r["n_params"]),
            f"{r['fit_seconds_mean']:.1f}",
        ]
        for r in summary.to_dict("records")
    ]
    n_ok = int(summary.n_runs.sum())
    text = [
        f"# Study summary: {root.name}",
        "",
        f"Finished jobs: {n_ok}, in {len(summary)} group(s). Accuracy in percent: mean ± sample std over seeds "
        "(final epoch, test pairs); sorted by mean test accuracy.",
        "",
        markdown_table(header, rows),
    ]
    if jobs.failed:
        text += ["", f"## Failed or unfinished jobs ({len(jobs.failed)}, not in the table)", ""]
        text += [f"- `{name}`: {reason}" for name, reason in jobs.failed.items()]
    return "\n".join(text) + "\n"


def group_labels(summary: pd.DataFrame, keys: list[str], sep: str = " ") -> list[str]:
    """A short label per group: the model, plus the keys that take several values for one model."""
    varying = [k for k in keys[1:] if summary.groupby("model", dropna=False)[k].nunique(dropna=False).max() > 1]
    return [sep.join([str(r["model"])] + [f"{k}={_cell(r[k])}" for k in varying]) for r in summary.to_dict("records")]


def _group_runs(df: pd.DataFrame, summary: pd.DataFrame) -> list[pd.DataFrame]:
    return [df[df["group"] == g] for g in summary["group"]]


def curves_figure(records: list[dict[str, Any]], df: pd.DataFrame, summary: pd.DataFrame, keys: list[str]) -> Figure:
    """Training loss and validation accuracy per epoch: mean over seeds with a ±1 std band."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    by_job = {r["job"]: r["history"] for r in records}
    for label, runs in zip(group_labels(summary, keys), _group_runs(df, summary), strict=True):
        for ax, key, scale in ((axes[0], "train_loss", 1), (axes[1], "val_acc", 100)):
            curves = [np.asarray(by_job[j][key], dtype=float) * scale for j in runs["job"]]
            table = np.full((len(curves), max(map(len, curves))), np.nan)
            for i, c in enumerate(curves):
                table[i, : len(c)] = c
            epochs = np.arange(1, table.shape[1] + 1)
            mean = np.nanmean(table, axis=0)
            (line,) = ax.plot(epochs, mean, marker="o", markersize=2.5, label=f"{label} (n={len(curves)})")
            if len(curves) > 1:
                std = np.nanstd(table, axis=0, ddof=1)
                ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    axes[0].set(title="Training loss", xlabel="epoch", ylabel="loss")
    axes[1].set(title="Validation accuracy", xlabel="epoch", ylabel="accuracy (%)")
    axes[1].legend(fontsize="small", loc="lower right")
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig


def test_acc_figure(df: pd.DataFrame, summary: pd.DataFrame, keys: list[str]) -> Figure:
    """Final test accuracy per group: a box plot with every seed as a point."""
    labels = group_labels(summary, keys, sep="\n")
    fig = Figure(figsize=(max(5, 1.4 * len(labels) + 2), 4.5), layout="constrained")
    ax = fig.subplots()
    values = [100 * runs["test_acc"].to_numpy() for runs in _group_runs(df, summary)]
    positions = np.arange(1, len(values) + 1)
    ax.boxplot(values, positions=positions, widths=0.5, showfliers=False)
    jitter = np.random.default_rng(0)  # fixed: the figure is the same every time
    for x, v in zip(positions, values, strict=True):
        ax.scatter(x + jitter.uniform(-0.12, 0.12, len(v)), v, s=14, alpha=0.7, zorder=3)
    ax.set_xticks(positions, labels, fontsize="small")
    ax.set(title="Final test accuracy per seed", ylabel="test accuracy (%)")
    ax.grid(axis="y", alpha=0.3)
    return fig


UNTRAINED_HEAD = "learned head gets no gradient at aux_weight=1: it stays at its random initialisation"


def ranking_markdown(ranked: pd.DataFrame, summary: pd.DataFrame, keys: list[str], chosen: dict, root: Path) -> str:
    """ranking.md: each tuned model's groups by mean validation accuracy, and the winner.

    Test accuracy is joined in after the ranking, for information, in a column marked as
    not used for selection.
    """
    table = ranked.merge(summary[["group", "test_acc_mean", "test_acc_std"]], on="group", how="left")
    text = [
        f"# Hyperparameter ranking: {root.name}",
        "",
        "Groups ranked by mean validation accuracy over their seeds (validation pairs come from MNIST "
        "training images the training pairs do not use). Test accuracy is shown for information only: "
        "it is **not used for selection**.",
    ]
    for model, rows in table.groupby("model", sort=True):
        if str(model) not in chosen:
            continue
        shown = [k for k in keys[1:] if rows[k].nunique(dropna=False) > 1]
        header = ["rank", *shown, "runs", "val acc %", "test acc % (not used)", "note"]
        body = [
            [
                r["rank"],
                *(r[k] for k in shown),
                r["n_runs"],
                _percent(r["val_acc_mean"], r["val_acc_std"]),
                _percent(r["test_acc_mean"], r["test_acc_std"]),
                UNTRAINED_HEAD if r["head"] == "learned" and r["aux_weight"] == 1 else "",
            ]
            for r in rows.to_dict("records")
        ]
        pick = chosen[str(model)]
        text += ["", f"## {model}", "", markdown_table(header, body), ""]
        text += [f"Selected: `{' '.join(pick['overrides'])}`. Evaluate it on seeds 0-9 with", ""]
        text += ["```bash", pick["command"], "```"]
    return "\n".join(text) + "\n"


@dataclass
class Report:
    """What :func:`write_report` produced (``best`` is empty when no model was tuned)."""

    summary: pd.DataFrame
    markdown: str
    jobs: Jobs
    files: list[Path]
    best: dict[str, dict[str, Any]] = field(default_factory=dict)
    ranking: str = ""


def write_report(root: str | Path) -> Report:
    """Read every job under ``root`` and write :data:`REPORT_FILES` there, atomically.

    When a model ran with several settings (a grid search), also rank them on validation
    accuracy and write :data:`SELECTION_FILES`: ``ranking.md`` and ``best.yaml`` (the
    winning overrides per model and the command that evaluates them on seeds 0-9).

    Raises:
        FileNotFoundError: ``root`` holds no job folder with a result.
    """
    root = Path(root)
    jobs = collect(root)
    if not jobs.records:
        failed = f"; {len(jobs.failed)} without a result" if jobs.failed else ""
        raise FileNotFoundError(f"no finished job (metrics.json) under {root}{failed}")
    df = job_table(jobs.records)
    keys = group_keys(df)
    summary = summarize(df, keys)
    markdown = summary_markdown(summary, keys, jobs, root)
    with atomic_path(root / "summary.csv") as tmp:
        summary.drop(columns="group").to_csv(tmp, index=False)
    write_text(root / "summary.md", markdown)
    for name, fig in (
        ("curves.png", curves_figure(jobs.records, df, summary, keys)),
        ("test_acc.png", test_acc_figure(df, summary, keys)),
    ):
        with atomic_path(root / name) as tmp:
            fig.savefig(tmp, dpi=120)
    report = Report(summary, markdown, jobs, [root / f for f in REPORT_FILES])
    ranked = rank(summary[["group", *keys, *SELECTION_COLUMNS]], keys)
    report.best = best(ranked, df.groupby("group")["overrides"].first().to_dict())
    if report.best:
        report.ranking = ranking_markdown(ranked, summary, keys, report.best, root)
        write_text(root / "ranking.md", report.ranking)
        header = "# Best settings per model, selected on mean validation accuracy (test accuracy not used).\n"
        write_text(root / "best.yaml", header + yaml.safe_dump(report.best, sort_keys=False, allow_unicode=True))
        report.files += [root / f for f in SELECTION_FILES]
    return report


def main(argv: list[str] | None = None) -> int:
    """``python src/report.py <folder>``: write the report and print its table."""
    import argparse

    parser = argparse.ArgumentParser(description="Summarise the jobs of a sweep (or several) in tables and figures.")
    parser.add_argument("folder", type=Path, help="a multirun folder, e.g. outputs/multirun/<timestamp>, or a parent")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    try:
        report = write_report(args.folder)
    except FileNotFoundError as e:
        parser.exit(1, f"error: {e}\n")
    print(report.markdown)
    if report.ranking:
        print(report.ranking)
    print("wrote " + ", ".join(str(f) for f in report.files))
    return 0
