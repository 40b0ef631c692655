"""The study report: a sweep's ``metrics.json`` files -> tables, statistics and figures.

Reads job folders only (never imports or re-runs training) and writes, in the folder it is
given: ``summary.csv`` (one row per group, fractions, with the 95 % CI of the mean),
``comparisons.csv`` (paired comparisons between groups, in percentage points),
``summary.md`` (the same in percent, with duplicates and failed jobs), ``curves.png`` and
``test_acc.png``; for a grid also ``ranking.md`` and ``best.yaml``. Jobs are grouped by
identity (:mod:`pairmnist.record`: the resolved config without the seed), and a job
seen twice (same identity and seed) counts once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure

from pairmnist.analysis import stats
from pairmnist.analysis.selection import SELECTION_COLUMNS, best, rank, sort_key, versus_winner
from pairmnist.atomic import atomic_path
from pairmnist.record import (
    ERROR_FILE,
    METRICS_FILE,
    JobNotDone,
    identity,
    identity_id,
    load_record,
    settings,
    trained_hyperparameters,
)

RESULTS = ["seed", "test_acc", "test_digit_acc", "val_acc", "n_params", "fit_seconds"]
# Hydra's instantiation keys: shown only when they tell apart two groups of the same model.
INSTANTIATION_KEYS = ("_target_", "_partial_", "_convert_", "_recursive_")
REPORT_FILES = ("summary.csv", "summary.md", "comparisons.csv", "curves.png", "test_acc.png")
SELECTION_FILES = ("ranking.md", "best.yaml")  # when a model was run with several settings
MAX_ALL_PAIRS = 6  # up to this many groups every pair is compared; beyond, each against the best


class ReportError(Exception):
    """A report file could not be written; the message is one line naming it and why."""


@contextmanager
def _report_file(path: Path) -> Iterator[Path]:
    """:func:`~pairmnist.atomic.atomic_path` for a report file, any failure raised as :class:`ReportError`."""
    try:
        with atomic_path(path) as tmp:
            yield tmp
    except Exception as e:
        raise ReportError(f"could not write {path}: {type(e).__name__}: {' '.join(str(e).split())}") from e


def _write_text(path: Path, text: str) -> None:
    with _report_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@dataclass
class Jobs:
    """The job folders found under a root.

    Attributes:
        records: metrics.json records of the finished jobs, one per (identity, seed), each with
            ``job`` (folder, relative to the root) and ``identity`` (recomputed from its config).
        failed: folder -> one-line reason, for jobs without a usable result.
        duplicates: folder set aside -> the folder kept for the same identity and seed (the
            newest ``finished``).
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    duplicates: dict[str, str] = field(default_factory=dict)


def collect(root: str | Path) -> Jobs:
    """Find every job folder under ``root`` (one sweep, several sweeps, or a single job).

    A job folder is one holding a ``metrics.json`` or an ``error.txt``, or Hydra's ``.hydra/``
    without job folders below it (a search trial's ``seed<N>/`` runs are its jobs).
    A job whose identity and seed were already seen counts once: the newest ``finished`` is
    kept (the later folder name on a tie), the others are listed in ``duplicates``.
    """
    root = Path(root)
    done = {m.parent for m in (*root.rglob(METRICS_FILE), *root.rglob(ERROR_FILE))}
    started = {m.parent for m in root.rglob(".hydra")}
    # A search trial's folder holds one run per tuning seed (seed<N>/): those are its jobs.
    started = {f for f in started if not any(f in d.parents for d in done)}
    records, failed = [], {}
    for folder in sorted(done | started):
        name = folder.relative_to(root).as_posix() if folder != root else folder.name
        try:
            records.append({**load_record(folder), "job": name})
        except JobNotDone as e:
            failed[name] = str(e)
    return dedupe(records, failed)


def dedupe(records: list[dict[str, Any]], failed: dict[str, str] | None = None) -> Jobs:
    """Keep one record per (identity, seed): the newest ``finished`` (the later ``job`` on a tie).

    Each record gets ``identity``, recomputed from its config (:func:`pairmnist.record.identity_id`).
    """
    jobs = Jobs(failed=dict(failed or {}))
    kept: dict[tuple[str, int], dict[str, Any]] = {}
    for record in sorted(records, key=lambda r: r["job"]):
        record = {**record, "identity": identity_id(record["config"])}
        key = (record["identity"], int(record["seed"]))
        if key in kept:
            older, newer = sorted([kept[key], record], key=lambda r: str(r.get("finished", "")))
            jobs.duplicates[older["job"]] = newer["job"]
            record = newer
        kept[key] = record
    jobs.duplicates = {a: _final(b, jobs.duplicates) for a, b in jobs.duplicates.items()}
    jobs.records = sorted(kept.values(), key=lambda r: r["job"])
    return jobs


def _final(job: str, replaced: dict[str, str]) -> str:
    while job in replaced:
        job = replaced[job]
    return job


NULL = "null"  # a config value set to null, shown as such (a key a group lacks stays blank)


def _nulls_shown(value: Any) -> Any:
    """``value`` with every None leaf replaced by :data:`NULL`, recursively."""
    if isinstance(value, dict):
        return {k: _nulls_shown(v) for k, v in value.items()}
    return NULL if value is None else value


def job_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per finished job: ``model``, RESULTS, ``job``, ``overrides``, ``identity`` and
    the flattened identity config (``model.lr``, ``data.n_pairs``, ...; the seed is not part of it)."""
    df = pd.DataFrame([{k: r.get(k) for k in ["model", *RESULTS, "job", "overrides", "identity"]} for r in records])
    config = pd.json_normalize([_nulls_shown(identity(r["config"])) for r in records])
    config = config.map(lambda v: str(v) if isinstance(v, list | dict) else v)
    return pd.concat([df, config], axis=1)


def group_keys(df: pd.DataFrame) -> list[str]:
    """``model``, then every config key whose value differs between identities, shallow keys first.

    No prefix is excluded: a ``model.module.schedule`` column appears when two groups differ
    in it. A key whose values equal those of an earlier key (``model.module.lr`` following the
    knob ``model.lr``) is not repeated, and an instantiation key (``_target_``) is shown only
    when it tells apart two groups of one model.
    """
    groups = df.drop_duplicates("identity").set_index("identity")
    keys, seen = ["model"], []
    # The flattened config (model.lr, data.n_pairs, ...), shallow keys first: a knob before the
    # node it feeds (model.nb_hidden before model.module.net.nb_hidden).
    for col in sorted((c for c in df.columns if "." in c), key=lambda c: c.count(".")):
        # null, a missing key and NaN are values too, one and the same for "repeats an earlier key"
        values = groups[col].map(lambda v: "None" if v == NULL or (isinstance(v, float) and np.isnan(v)) else repr(v))
        if values.nunique() < 2 or any(values.equals(v) for v in seen):
            continue
        if col.split(".")[-1] in INSTANTIATION_KEYS and groups.groupby("model")[col].nunique(dropna=False).max() < 2:
            continue
        seen.append(values)
        keys.append(col)
    return keys


def seed_text(seeds: list[int]) -> str:
    """Seeds as short text: ``0–9`` for a run of consecutive seeds, else ``1, 4, 7``."""
    seeds = sorted(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def summarize(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per identity, sorted by mean test accuracy (highest first).

    Accuracies are fractions; ``*_std`` are sample standard deviations (ddof=1), NaN for a
    group of one run; ``test_acc_ci_low``/``_high`` bound the 95 % Student-t confidence
    interval of the mean test accuracy over seeds (:func:`pairmnist.analysis.stats.t_interval`);
    ``test_noise`` is the binomial standard error of one run's test accuracy at the group's
    mean, on its ``n_test_pairs`` test pairs (:func:`pairmnist.analysis.stats.binomial_se`);
    ``fit_seconds_*`` are wall-clock seconds of ``Trainer.fit``. Adds a ``group`` number
    column to ``df`` and to the summary (not written to summary.csv).
    """
    stats_spec = {
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
    grouped = df.groupby("identity", sort=False)
    summary = grouped.agg(**stats_spec)
    firsts = grouped[keys].first()
    summary = pd.concat([firsts, summary], axis=1).reset_index()
    ci = [stats.t_interval(grouped.get_group(i)["test_acc"]) for i in summary["identity"]]
    summary["test_acc_ci_low"], summary["test_acc_ci_high"] = zip(*ci, strict=True) if ci else ((), ())
    summary["seeds"] = [seed_text(grouped.get_group(i)["seed"].tolist()) for i in summary["identity"]]
    n_test = pd.to_numeric(grouped["data.n_pairs"].first(), errors="coerce") if "data.n_pairs" in df else None
    if n_test is not None and "data.n_test_pairs" in df:  # set: the test pairs; unset (NaN): n_pairs
        n_test = pd.to_numeric(grouped["data.n_test_pairs"].first(), errors="coerce").fillna(n_test)
    summary["n_test_pairs"] = [None if n_test is None else n_test.get(i) for i in summary["identity"]]
    summary["test_noise"] = [
        stats.binomial_se(m, int(n)) if n is not None and not pd.isna(n) else np.nan
        for m, n in zip(summary["test_acc_mean"], summary["n_test_pairs"], strict=True)
    ]
    summary = summary.sort_values(keys, na_position="last", kind="mergesort", key=sort_key)
    summary = summary.sort_values("test_acc_mean", ascending=False, kind="mergesort").reset_index(drop=True)
    summary.insert(0, "group", range(len(summary)))
    df["group"] = df["identity"].map(dict(zip(summary["identity"], summary["group"], strict=True)))
    order = ["group", *keys, "n_runs", "seeds", "test_acc_mean", "test_acc_std", "test_acc_ci_low", "test_acc_ci_high"]
    return summary[order + [c for c in summary.columns if c not in order]]


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
    """A GitHub-flavoured Markdown table (pandas' ``to_markdown``), its cells as :func:`_cell` writes them."""
    table = pd.DataFrame([[_cell(v) for v in row] for row in rows], columns=header, dtype=object)
    return table.to_markdown(index=False, disable_numparse=True)


def points_text(value: float, signed: bool = False) -> str:
    """A fraction as percentage points with 2 decimals (``+1.25`` when ``signed``); empty for NaN."""
    if pd.isna(value):
        return ""
    return f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"


def ci_text(low: float, high: float, signed: bool = False) -> str:
    """A confidence interval of fractions as ``[low, high]`` in points (:func:`points_text`); empty for NaN."""
    return "" if pd.isna(low) else f"[{points_text(low, signed)}, {points_text(high, signed)}]"


def p_text(value: float) -> str:
    """A p-value with 2 significant digits, ``<0.001`` below that; empty for NaN (no test possible)."""
    if pd.isna(value):
        return ""
    return f"{value:.2g}" if value >= 0.001 else "<0.001"


def _ci_cell(low: float, high: float, n: int) -> str:
    """:func:`ci_text` followed by :func:`~pairmnist.analysis.stats.ci_caveat`'s note, if any."""
    caveat = stats.ci_caveat(low, high, n)
    return f"{ci_text(low, high)} ({caveat})" if caveat else ci_text(low, high)


def group_table(summary: pd.DataFrame, keys: list[str]) -> str:
    """The groups in percent: mean ± sample std, 95 % CI, test-set noise, and the rest."""
    header = [*keys, "runs", "seeds", "test acc %", "95 % CI", "test-set noise ±", "min–max"]
    header += ["digit acc %", "val acc %", "params", "fit s", "identity"]
    rows = [
        [
            *(r[k] for k in keys),
            r["n_runs"],
            r["seeds"],
            _percent(r["test_acc_mean"], r["test_acc_std"]),
            _ci_cell(r["test_acc_ci_low"], r["test_acc_ci_high"], r["n_runs"]),
            points_text(r["test_noise"]),
            f"{100 * r['test_acc_min']:.1f}–{100 * r['test_acc_max']:.1f}",
            _percent(r["digit_acc_mean"], r["digit_acc_std"]),
            _percent(r["val_acc_mean"], r["val_acc_std"]),
            int(r["n_params"]),
            f"{r['fit_seconds_mean']:.1f}",
            f"`{r['identity']}`",
        ]
        for r in summary.to_dict("records")
    ]
    return markdown_table(header, rows)


def comparisons(df: pd.DataFrame, summary: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Paired comparisons of test accuracy between groups (:func:`pairmnist.analysis.stats.paired`).

    With up to :data:`MAX_ALL_PAIRS` groups every pair, a above b in the summary's order (higher
    mean test accuracy first); with more (a grid), the group with the best mean validation
    accuracy against each other group, so the reference is never chosen on test data.
    Differences and their CI are in percentage points; ``p_*_holm`` are Holm-adjusted over the
    rows compared (:func:`pairmnist.analysis.stats.holm`). Pairs sharing fewer than 2 seeds
    get a row with ``n_seeds`` and the note "not comparable" and no statistics.
    """
    labels = dict(zip(summary["group"], group_labels(summary, keys), strict=True))
    ids = dict(zip(summary["group"], summary["identity"], strict=True))
    by_group = {g: dict(zip(runs["seed"], runs["test_acc"], strict=True)) for g, runs in df.groupby("group")}
    if len(summary) <= MAX_ALL_PAIRS:
        pairs = list(itertools.combinations(summary["group"], 2))
    else:
        reference = summary.sort_values("val_acc_mean", ascending=False, kind="mergesort")["group"].iloc[0]
        pairs = [(reference, g) for g in summary["group"] if g != reference]
    rows = []
    for a, b in pairs:
        result = stats.paired(by_group[a], by_group[b])
        row = {"a": labels[a], "b": labels[b], "identity_a": ids[a], "identity_b": ids[b]}
        if result is None:
            shared = len(set(by_group[a]) & set(by_group[b]))
            rows.append({**row, "n_seeds": shared, "note": "not comparable: fewer than 2 shared seeds"})
            continue
        r = result.as_dict()
        points = {k: 100 * r.pop(k) for k in ("mean_diff", "ci_low", "ci_high")}
        rows.append(
            {
                **row,
                "n_seeds": r.pop("n_seeds"),
                "diff_points": points["mean_diff"],
                "ci_low_points": points["ci_low"],
                "ci_high_points": points["ci_high"],
                **r,
                "note": "",
            }
        )
    table = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    for test in ("p_ttest", "p_wilcoxon"):
        table[f"{test}_holm"] = stats.holm(table[test].astype(float).tolist()) if len(table) else []
    return table[COMPARISON_COLUMNS + ["p_ttest_holm", "p_wilcoxon_holm"]]


COMPARISON_COLUMNS = [
    "a",
    "b",
    "n_seeds",
    "seeds",
    "diff_points",
    "ci_low_points",
    "ci_high_points",
    "p_ttest",
    "p_wilcoxon",
    "wins_a",
    "wins_b",
    "ties",
    "identity_a",
    "identity_b",
    "note",
]


def comparison_table(table: pd.DataFrame) -> str:
    """comparisons.csv as Markdown, in percentage points."""
    header = ["a", "b", "seeds", "a − b (points)", "95 % CI", "p (t)", "p (Wilcoxon)", "p Holm (t)", "wins a:b"]
    rows = [
        [r["a"], r["b"], r["n_seeds"]]
        + (
            [r["note"], "", "", "", "", ""]
            if r["note"]
            else [
                f"{r['diff_points']:+.2f}",
                f"[{r['ci_low_points']:+.2f}, {r['ci_high_points']:+.2f}]",
                p_text(r["p_ttest"]),
                p_text(r["p_wilcoxon"]),
                p_text(r["p_ttest_holm"]),
                f"{r['wins_a']}:{r['wins_b']}" + (f" ({r['ties']} tied)" if r["ties"] else ""),
            ]
        )
        for r in table.to_dict("records")
    ]
    return markdown_table(header, rows)


def summary_markdown(
    summary: pd.DataFrame, keys: list[str], compared: pd.DataFrame, jobs: Jobs, title: str, ranking: str = ""
) -> str:
    """summary.md: the validation ranking first for a grid, then the groups, the paired
    comparisons, the duplicates set aside and the failed jobs."""
    n_ok = int(summary.n_runs.sum())
    text = [ranking, "---", ""] if ranking else []
    text += [
        f"# Study summary: {title}",
        "",
        f"Finished jobs: {n_ok}, in {len(summary)} group(s) (one per identity: the resolved config "
        "without the seed). Test accuracy in percent after the final epoch: mean ± sample std over the "
        "seeds, and the 95 % confidence interval of the mean (Student t over seeds). Test-set noise: the "
        "binomial standard error sqrt(p(1 − p)/n) of a single run's accuracy on its n test pairs, the "
        "spread that the test pairs alone would cause. Sorted by mean test accuracy"
        + (" (for information: the choice above uses validation only)." if ranking else "."),
        "",
        group_table(summary, keys),
        "",
        "## Paired comparisons of test accuracy",
        "",
        "Per seed, a − b in percentage points on the seeds both groups ran (the same seed gives both the "
        "same data), its 95 % CI (Student t), the paired t-test and Wilcoxon signed-rank p-values, the "
        "t-test p-value Holm-adjusted over the rows below, and the seeds each side won.",
        "",
        comparison_table(compared) if len(compared) else "Only one group: nothing to compare.",
    ]
    if jobs.duplicates:
        text += ["", f"## Duplicates set aside ({len(jobs.duplicates)}: same identity and seed as a newer job)", ""]
        text += [f"- `{old}` (kept: `{new}`)" for old, new in jobs.duplicates.items()]
    if jobs.failed:
        text += ["", f"## Failed or unfinished jobs ({len(jobs.failed)}, not in the table)", ""]
        text += [f"- `{name}`: {reason}" for name, reason in jobs.failed.items()]
    return "\n".join(text) + "\n"


def group_labels(summary: pd.DataFrame, keys: list[str], sep: str = " ") -> list[str]:
    """A short label per group: the model, plus the keys that take several values for one model."""
    varying = [k for k in keys[1:] if summary.groupby("model", dropna=False)[k].nunique(dropna=False).max() > 1]
    return [
        sep.join([str(r["model"])] + [f"{k.split('.')[-1]}={_cell(r[k])}" for k in varying])
        for r in summary.to_dict("records")
    ]


MAX_LABEL = 60  # characters of a figure's group label; longer ones are replaced by the command's settings


def figure_labels(report: Report, sep: str = " ") -> list[str]:
    """:func:`group_labels`, or, when one is longer than :data:`MAX_LABEL`, the model plus the
    command-line settings of each group that not every group shares (``siamese_plus without=plus_branch``)."""
    labels = group_labels(report.summary, report.keys, sep)
    if max(map(len, labels)) <= MAX_LABEL:
        return labels
    newest = report.df.sort_values("job").groupby("group").last()
    groups = report.summary["group"]
    own = {g: [f"{k.split('.')[-1]}={v}" for k, v in settings(newest.loc[g, "overrides"])] for g in groups}
    shared = set.intersection(*(set(v) for v in own.values()))
    models = dict(zip(report.summary["group"], report.summary["model"], strict=True))
    return [sep.join([str(models[g]), *(o for o in own[g] if o not in shared)]) for g in groups]


def _group_runs(df: pd.DataFrame, summary: pd.DataFrame) -> list[pd.DataFrame]:
    return [df[df["group"] == g] for g in summary["group"]]


def curves_figure(report: Report) -> Figure:
    """Training loss and validation accuracy per epoch: mean over seeds with a ±1 std band."""
    df, summary = report.df, report.summary
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    by_job = {r["job"]: r["history"] for r in report.jobs.records}
    for label, runs in zip(figure_labels(report), _group_runs(df, summary), strict=True):
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


def test_acc_figure(report: Report) -> Figure:
    """Final test accuracy per group: a box plot, each seed a point, a thin line per seed across groups.

    The lines show the pairing: a seed gives every group the same data, so a line that rises
    from one group to the next is that seed's paired difference.
    """
    df, summary = report.df, report.summary
    labels = figure_labels(report, sep="\n")
    fig = Figure(figsize=(max(5, 1.4 * len(labels) + 2), 4.5), layout="constrained")
    ax = fig.subplots()
    runs = _group_runs(df, summary)
    positions = np.arange(1, len(runs) + 1)
    ax.boxplot([100 * r["test_acc"].to_numpy() for r in runs], positions=positions, widths=0.5, showfliers=False)
    table = pd.DataFrame({x: r.set_index("seed")["test_acc"] * 100 for x, r in zip(positions, runs, strict=True)})
    for _, row in table.sort_index().iterrows():
        ax.plot(row.index, row.to_numpy(), color="grey", alpha=0.35, linewidth=0.8, zorder=2)
    for x, r in zip(positions, runs, strict=True):
        ax.scatter(np.full(len(r), x), 100 * r["test_acc"], s=14, alpha=0.8, zorder=3)
    ax.set_xticks(positions, labels, fontsize="small")
    ax.set(title="Final test accuracy per seed (a grey line joins one seed's runs)", ylabel="test accuracy (%)")
    ax.grid(axis="y", alpha=0.3)
    return fig


UNTRAINED_HEAD = "learned head gets no gradient at aux_weight=1: it stays at its random initialisation"


def untrained_head(record: dict[str, Any]) -> bool:
    """Whether a job trained a learned comparison head with aux_weight 1 (no gradient reaches it)."""
    trained = trained_hyperparameters(record["config"])
    return trained["head"] == "learned" and trained["aux_weight"] == 1


def ranking_markdown(
    ranked: pd.DataFrame, summary: pd.DataFrame, keys: list[str], chosen: dict, title: str, untrained: set[int]
) -> str:
    """ranking.md: each tuned model's groups by mean validation accuracy, and the winner.

    Each group is marked whether its validation accuracy is distinguishable from the
    winner's (paired over the tuning seeds, 95 %); groups in ``untrained`` get a note that
    their learned head stayed untrained (:func:`untrained_head`). Test accuracy is joined in after the
    ranking, for information, in a column marked as not used for selection.
    """
    table = ranked.merge(summary[["group", "test_acc_mean", "test_acc_std"]], on="group", how="left")
    text = [
        f"# Hyperparameter ranking: {title}",
        "",
        "Groups ranked by mean validation accuracy over their seeds (validation pairs come from MNIST "
        "training images the training pairs do not use). 'vs winner' compares each group's validation "
        "accuracy with the winner's seed by seed (paired t-test, 95 %): 'not distinguishable' means these "
        "seeds cannot tell the two apart. Test accuracy is shown for information only: it is **not used "
        "for selection**.",
    ]
    for model, rows in table.groupby("model", sort=True):
        if str(model) not in chosen:
            continue
        shown = [k for k in keys[1:] if rows[k].nunique(dropna=False) > 1]
        header = ["rank", *shown, "runs", "val acc %", "vs winner (validation)", "test acc % (not used)", "note"]
        body = [
            [
                r["rank"],
                *(r[k] for k in shown),
                r["n_runs"],
                _percent(r["val_acc_mean"], r["val_acc_std"]),
                r["vs_winner"],
                _percent(r["test_acc_mean"], r["test_acc_std"]),
                UNTRAINED_HEAD if r["group"] in untrained else "",
            ]
            for r in rows.to_dict("records")
        ]
        pick = chosen[str(model)]
        text += ["", f"## {model}", "", markdown_table(header, body), ""]
        text += [f"Selected: identity `{pick['identity']}`. Evaluate it on seeds 0-9 with", ""]
        text += ["```bash", pick["command"], "```"]
    return "\n".join(text) + "\n"


@dataclass
class Report:
    """The analysis of a set of jobs (``best`` is empty when no model was tuned).

    Attributes:
        df: one row per job (:func:`job_table`) with its ``group``.
        keys: the group columns (:func:`group_keys`).
        summary: one row per group (:func:`summarize`).
        comparisons: paired comparisons (:func:`comparisons`).
        markdown: summary.md's text.
        files: the files written (empty until :func:`write_report` writes them).
    """

    jobs: Jobs
    df: pd.DataFrame
    keys: list[str]
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    markdown: str
    best: dict[str, dict[str, Any]] = field(default_factory=dict)
    ranking: str = ""
    files: list[Path] = field(default_factory=list)


EVALUATION_SEEDS = frozenset(range(10))  # the seeds best.yaml's command evaluates a winner on


def not_selectable(df: pd.DataFrame, summary: pd.DataFrame) -> dict[str, str]:
    """Models run with several settings that must not be ranked, with the reason.

    A choice made on a seed of :data:`EVALUATION_SEEDS` would be evaluated on the data it was
    chosen on; a group without validation figures (``val_acc`` null) cannot be ranked.
    """
    reasons = {}
    for model, runs in df.groupby("model"):
        if (summary["model"] == model).sum() < 2:
            continue
        overlap = sorted(EVALUATION_SEEDS & set(runs["seed"]))
        if overlap:
            seeds = seed_text(overlap)
            reasons[str(model)] = (
                f"its seeds include {seeds}, which the winner would be evaluated on (use tuning seeds)"
            )
        elif runs["val_acc"].isna().any():
            reasons[str(model)] = "some runs have no validation figures (val_acc null)"
    return reasons


def analyse(jobs: Jobs, title: str) -> Report:
    """Group, summarise, compare and (for a grid) rank the finished jobs; writes nothing.

    A model run with several settings is a selection (ranking, best.yaml), unless its jobs
    ran under an ``experiment=`` preset (the ablation), which compares settings and picks none.

    Raises:
        FileNotFoundError: no finished job.
    """
    if not jobs.records:
        failed = f"; {len(jobs.failed)} without a result" if jobs.failed else ""
        raise FileNotFoundError(f"no finished job (metrics.json) under {title}{failed}")
    records = {r["job"]: r for r in jobs.records}
    df = job_table(jobs.records)
    keys = group_keys(df)
    summary = summarize(df, keys)
    compared = comparisons(df, summary, keys)
    experiments = {r["model"] for r in jobs.records if any(str(o).startswith("experiment=") for o in r["overrides"])}
    unranked = {m: why for m, why in not_selectable(df, summary).items() if m not in experiments}
    selectable = summary[~summary["model"].isin(experiments | set(unranked))]  # an experiment selects nothing
    val_by_group = {g: dict(zip(r["seed"], r["val_acc"], strict=True)) for g, r in df.groupby("group")}
    ranked = versus_winner(rank(selectable[["group", *keys, *SELECTION_COLUMNS]], keys), val_by_group)
    newest = df.sort_values("job").groupby("group").last()
    chosen = best(ranked, newest["overrides"].to_dict(), summary.set_index("group")["identity"].to_dict())
    untrained = {int(g) for g, job in zip(df["group"], df["job"], strict=True) if untrained_head(records[job])}
    ranking = ranking_markdown(ranked, summary, keys, chosen, title, untrained) if chosen else ""
    if unranked:
        ranking = "\n".join([ranking, *(f"No ranking of {m}: {why}." for m, why in unranked.items())]).strip()
    markdown = summary_markdown(summary, keys, compared, jobs, title, ranking)
    return Report(jobs, df, keys, summary, compared, markdown, chosen, ranking)


def write_report(root: str | Path) -> Report:
    """Read every job under ``root`` and write :data:`REPORT_FILES` there, atomically.

    When a model ran with several settings (a grid search), also rank them on validation
    accuracy and write :data:`SELECTION_FILES`: ``ranking.md`` and ``best.yaml`` (the
    winning overrides per model and the command that evaluates them on seeds 0-9); then
    summary.md and the console lead with that ranking.

    Raises:
        FileNotFoundError: ``root`` holds no job folder with a result.
        ReportError: a report file cannot be written (the message names it); the files
            written before it are complete, those after it are not written.
    """
    root = Path(root)
    report = analyse(collect(root), root.name)
    with _report_file(root / "summary.csv") as tmp:
        report.summary.drop(columns="group").to_csv(tmp, index=False)
    with _report_file(root / "comparisons.csv") as tmp:
        report.comparisons.to_csv(tmp, index=False)
    _write_text(root / "summary.md", report.markdown)
    for name, fig in (("curves.png", curves_figure(report)), ("test_acc.png", test_acc_figure(report))):
        with _report_file(root / name) as tmp:
            fig.savefig(tmp, dpi=120)
    report.files = [root / f for f in REPORT_FILES]
    if report.best:
        _write_text(root / "ranking.md", report.ranking)
        header = "# Best settings per model, selected on mean validation accuracy (test accuracy not used).\n"
        _write_text(
            root / "best.yaml", header + yaml.safe_dump(report.best, sort_keys=False, allow_unicode=True, width=10_000)
        )
        report.files += [root / f for f in SELECTION_FILES]
    return report


def console_text(report: Report) -> str:
    """What a sweep prints at its end: the duplicates set aside, then the markdown (ranking first for a grid)."""
    lines = (
        [
            f"set aside {len(report.jobs.duplicates)} duplicate job(s) (same identity and seed as a newer one): "
            + ", ".join(report.jobs.duplicates)
        ]
        if report.jobs.duplicates
        else []
    )
    return "\n".join([*lines, report.markdown])
