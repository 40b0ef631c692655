"""The study report: a sweep's ``metrics.json`` files -> tables, statistics, figures and, for a grid, the selection.

Reads job folders only (never imports or re-runs training) and writes, in the folder it is
given: ``summary.csv`` (one row per group, fractions, with the 95 % CI of the mean),
``comparisons.csv`` (paired comparisons between groups, in percentage points),
``summary.md`` (the same in percent, with duplicates and failed jobs), ``curves.png`` and
``test_acc.png``; for a grid also ``ranking.md`` and ``best.yaml``. Jobs are grouped by
identity (:mod:`pairmnist.record`: the resolved config without the seed), and a job
seen twice (same identity and seed) counts once.

Selection (ranking, best.yaml) reads the group keys and the validation columns of the summary
(:data:`SELECTION_COLUMNS`), the per-seed validation accuracies and the winners' command-line
overrides, and nothing else, so the test pairs cannot influence a choice. Every Markdown table
is pandas' ``DataFrame.to_markdown`` (tabulate) of text cells.
"""

from __future__ import annotations

import itertools
import math
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import yaml
from matplotlib.figure import Figure

from pairmnist import record
from pairmnist.analysis import stats
from pairmnist.atomic import atomic_path

RESULTS = ["seed", "test_acc", "test_digit_acc", "val_acc", "n_params", "fit_seconds"]
# Hydra's instantiation keys: shown only when they tell apart two groups of the same model.
INSTANTIATION_KEYS = ("_target_", "_partial_", "_convert_", "_recursive_")
REPORT_FILES = ("summary.csv", "comparisons.csv", "summary.md", "curves.png", "test_acc.png")
MAX_ALL_PAIRS = 6  # up to this many groups every pair is compared; beyond, each against the best
SELECTION_COLUMNS = ["identity", "n_runs", "val_acc_mean", "val_acc_std"]
EVALUATION_SEEDS = frozenset(range(10))  # the seeds best.yaml's command evaluates a winner on
NULL = "null"  # a config value set to null, shown as such (a key a group lacks stays blank)
NOT_COMPARABLE = "not comparable: fewer than 2 shared seeds"
UNTRAINED_HEAD = "learned head gets no gradient at aux_weight=1: it stays at its random initialisation"
PAIRED_COLUMNS = ["a", "b", "n_seeds", "seeds", "mean_diff", "ci_low", "ci_high", "p_ttest", "p_wilcoxon"]
PAIRED_COLUMNS += ["wins_a", "wins_b", "ties", "note"]


class ReportError(Exception):
    """A report file could not be written; the message is one line naming it and why."""


def write_file(path: Path, content: str | pd.DataFrame | Figure) -> None:
    """Write text, a table (CSV) or a figure (PNG, without the matplotlib version) to ``path``, atomically.

    Raises:
        ReportError: any failure, in one line naming the file.
    """
    try:
        with atomic_path(path) as tmp:
            if isinstance(content, str):
                tmp.write_text(content, encoding="utf-8")
            elif isinstance(content, pd.DataFrame):
                content.to_csv(tmp, index=False)
            else:
                content.savefig(tmp, dpi=100, metadata={"Software": None})
    except Exception as e:
        raise ReportError(f"could not write {path}: {type(e).__name__}: {' '.join(str(e).split())}") from e


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
    A job whose identity and seed were already seen counts once (:func:`dedupe`).
    """
    root = Path(root)
    done = {m.parent for m in (*root.rglob(record.METRICS_FILE), *root.rglob(record.ERROR_FILE))}
    started = {m.parent for m in root.rglob(".hydra") if not any(m.parent in d.parents for d in done)}
    records, failed = [], {}
    for folder in sorted(done | started):
        name = folder.relative_to(root).as_posix() if folder != root else folder.name
        try:
            records.append({**record.load_record(folder), "job": name})
        except record.JobNotDone as e:
            failed[name] = str(e)
    return dedupe(records, failed)


def dedupe(records: list[dict[str, Any]], failed: dict[str, str] | None = None) -> Jobs:
    """Keep one record per (identity, seed): the newest ``finished`` (the later ``job`` on a tie).

    Each record gets ``identity``, recomputed from its config (:func:`pairmnist.record.identity_id`).
    """
    records = sorted(({**r, "identity": record.identity_id(r["config"])} for r in records), key=lambda r: r["job"])
    newest = {}
    for r in sorted(records, key=lambda r: (str(r.get("finished", "")), r["job"])):
        newest[r["identity"], int(r["seed"])] = r
    kept = {r["job"]: r["job"] for r in newest.values()}
    duplicates = {r["job"]: newest[r["identity"], int(r["seed"])]["job"] for r in records if r["job"] not in kept}
    return Jobs([r for r in records if r["job"] in kept], dict(failed or {}), duplicates)


def _nulls_shown(value: Any) -> Any:
    """``value`` with every None leaf replaced by :data:`NULL`, recursively."""
    if isinstance(value, dict):
        return {k: _nulls_shown(v) for k, v in value.items()}
    return NULL if value is None else value


def untrained_head(config: dict[str, Any]) -> bool:
    """Whether a job trained a learned comparison head with aux_weight 1 (no gradient reaches it)."""
    trained = record.trained_hyperparameters(config)
    return trained["head"] == "learned" and trained["aux_weight"] == 1


def job_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per finished job: ``model``, RESULTS, ``job``, ``overrides``, ``identity``, ``cpu`` (the
    record's CPU model, None when it has none), ``untrained_head``, ``n_test_pairs`` (``data.n_test_pairs``,
    else ``data.n_pairs``) and the flattened identity config (``model.optimizer.lr``, ``data.n_pairs``, ...; the seed
    is not part of it)."""
    df = pd.DataFrame(
        [{k: r.get(k) for k in ["model", *RESULTS, "job", "overrides", "identity", "cpu"]} for r in records]
    )
    df[RESULTS[1:]] = df[RESULTS[1:]].apply(pd.to_numeric)  # a null (shallow's digit accuracy) is NaN
    df["untrained_head"] = [untrained_head(r["config"]) for r in records]
    data = [r["config"].get("data") or {} for r in records]
    df["n_test_pairs"] = [d.get("n_test_pairs") or d.get("n_pairs") for d in data]
    config = pd.json_normalize([_nulls_shown(record.identity(r["config"])) for r in records])
    return pd.concat([df, config.map(lambda v: str(v) if isinstance(v, list | dict) else v)], axis=1)


def group_keys(df: pd.DataFrame) -> list[str]:
    """``model``, then every config key whose value differs between identities, shallow keys first.

    No prefix is excluded: a ``model.scheduler._target_`` column appears when two groups differ
    in it. A key whose values equal those of an earlier key (``model.scheduler.max_lr``, set to
    ``model.optimizer.lr``) is not repeated, and an instantiation key (``_target_``) is shown
    only when it tells apart two groups of one model.
    """
    groups = df.drop_duplicates("identity").set_index("identity")
    keys, seen = ["model"], []
    for col in sorted((c for c in df.columns if "." in c), key=lambda c: c.count(".")):
        # null, a missing key and NaN are values too, one and the same for "repeats an earlier key"
        values = groups[col].map(lambda v: "None" if v == NULL or (isinstance(v, float) and math.isnan(v)) else repr(v))
        if values.nunique() < 2 or any(values.equals(v) for v in seen):
            continue
        if col.split(".")[-1] in INSTANTIATION_KEYS and groups.groupby("model")[col].nunique(dropna=False).max() < 2:
            continue
        seen.append(values)
        keys.append(col)
    return keys


def labels(df: pd.DataFrame) -> pd.Series:
    """identity -> a short label: the model, plus the command-line settings (:func:`pairmnist.record.settings`
    of its newest job, by short name) that take several values among the groups of that model
    (``siamese aux_weight=0.5``)."""
    newest = df.sort_values("job").groupby("identity")[["model", "overrides"]].last()
    own = pd.DataFrame([dict(record.settings(o)) for o in newest["overrides"]], index=newest.index)
    own = own.drop(columns="model", errors="ignore")
    varying = own.groupby(newest["model"]).nunique(dropna=False) > 1
    names = record.short_names(own.columns)
    return pd.Series(
        {
            i: " ".join([m, *(f"{names[k]}={v}" for k, v in own.loc[i].dropna().items() if varying.loc[m, k])])
            for i, m in newest["model"].items()
        }
    )


def seed_text(seeds: list[int]) -> str:
    """Seeds as short text: ``0–9`` for a run of consecutive seeds, else ``1, 4, 7``."""
    seeds = sorted(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def sort_key(column: pd.Series) -> pd.Series:
    """A key that sorts a column mixing numbers and text ("null"): numbers by value, then text, then missing."""
    return column.map(lambda v: (1, v) if isinstance(v, str) else (2, "") if pd.isna(v) else (0, v))


def cpu_text(cpus: Iterable[str | None]) -> str:
    """The CPU models among ``cpus`` (records' ``cpu``), sorted and comma-separated; empty when none is named."""
    return ", ".join(sorted({c for c in cpus if isinstance(c, str) and c}))


def summarize(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per identity, sorted by mean test accuracy (highest first).

    Accuracies are fractions; ``*_std`` are sample standard deviations (ddof=1), NaN for a
    group of one run; ``test_acc_ci_low``/``_high`` bound the 95 % Student-t confidence
    interval of the mean test accuracy over seeds (:func:`pairmnist.analysis.stats.t_interval`);
    ``test_noise`` is the binomial standard error of one run's test accuracy at the group's
    mean, on its ``n_test_pairs`` test pairs (:func:`pairmnist.analysis.stats.binomial_se`);
    ``fit_seconds_*`` are wall-clock seconds of ``Trainer.fit``; ``label`` is :func:`labels`'; ``cpu`` the
    CPU models its jobs ran on (comma-separated, empty when the records do not say).
    Adds a ``group`` number column to ``df`` and to the summary (not written to summary.csv).
    """
    grouped = df.groupby("identity", sort=False)
    test = grouped["test_acc"].agg(["size", "mean", "std", "median", "min", "max"]).add_prefix("test_acc_")
    rest = grouped[["test_digit_acc", "val_acc", "fit_seconds"]].agg(["mean", "std"])
    rest.columns = [f"{c.removeprefix('test_')}_{f}" for c, f in rest.columns]
    ci = grouped["test_acc"].apply(stats.t_interval)
    firsts = grouped[[*keys, "n_params", "n_test_pairs", "untrained_head"]].first()
    summary = pd.concat([firsts, test.rename(columns={"test_acc_size": "n_runs"}), rest], axis=1)
    summary = summary.assign(test_acc_ci_low=ci.str[0], test_acc_ci_high=ci.str[1], label=labels(df))
    summary["seeds"] = grouped["seed"].apply(lambda s: seed_text(s.tolist()))
    summary["cpu"] = grouped["cpu"].apply(cpu_text)
    summary["test_noise"] = stats.binomial_se(summary["test_acc_mean"], summary["n_test_pairs"])
    summary = summary.reset_index().sort_values(keys, kind="mergesort", key=sort_key)
    summary = summary.sort_values("test_acc_mean", ascending=False, kind="mergesort", ignore_index=True)
    summary.insert(0, "group", range(len(summary)))
    df["group"] = df["identity"].map(summary.set_index("identity")["group"])
    return summary


def seed_values(df: pd.DataFrame, group: int, column: str = "test_acc") -> dict[int, float]:
    """seed -> ``column`` of the jobs of ``group``."""
    runs = df[df["group"] == group]
    return dict(zip(runs["seed"], runs[column], strict=True))


def cell(value: Any, fmt: str = "g") -> str:
    """A table cell: empty for a missing value, a float in ``fmt`` (by default its shortest form: 0.001, 1e-05)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return format(value, fmt) if isinstance(value, float) else str(value)


def markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``table``'s cells (:func:`cell`), by ``DataFrame.to_markdown``."""
    return table.map(cell).to_markdown(index=False, disable_numparse=True)


def interval(low: float, high: float, fmt: str = ".2f") -> str:
    """``[low, high]`` in ``fmt``; empty for NaN."""
    return "" if pd.isna(low) else f"[{low:{fmt}}, {high:{fmt}}]"


def p_text(value: float) -> str:
    """A p-value with 2 significant digits, ``<0.001`` below that; empty for NaN (no test possible)."""
    return "<0.001" if value < 0.001 else cell(float(value), ".2g")


def mean_std(table: pd.DataFrame, column: str) -> list[str]:
    """``column``'s mean ± sample std in percent (``92.49 ± 0.79``; the mean alone without a std)."""
    means, stds = 100 * table[f"{column}_mean"], 100 * table[f"{column}_std"]
    return [cell(m, ".2f") + ("" if pd.isna(s) else f" ± {s:.2f}") for m, s in zip(means, stds, strict=True)]


def several_cpus(cpus: Iterable[str]) -> bool:
    """Whether ``cpus`` (``cpu`` cells of :func:`summarize`: comma-separated CPU models) name more than one."""
    return len({c for text in cpus for c in text.split(", ") if c}) > 1


def group_cells(summary: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The groups in percent: mean ± sample std, 95 % CI (with :func:`~pairmnist.analysis.stats.ci_caveat`'s
    note), test-set noise, min–max, digit and validation accuracy, parameters, fit seconds, the CPU (only when
    the groups ran on different CPUs), identity."""
    s = summary
    cis = zip(s["test_acc_ci_low"], s["test_acc_ci_high"], s["n_runs"], strict=True)
    caveats = [(interval(100 * lo, 100 * hi), stats.ci_caveat(lo, hi, n)) for lo, hi, n in cis]
    return s[keys].assign(
        **{
            "runs": s["n_runs"],
            "seeds": s["seeds"],
            "test acc %": mean_std(s, "test_acc"),
            "95 % CI": [f"{ci} ({note})" if note else ci for ci, note in caveats],
            "test-set noise ±": [cell(100 * x, ".2f") for x in s["test_noise"]],
            "min–max": [f"{100 * a:.1f}–{100 * b:.1f}" for a, b in s[["test_acc_min", "test_acc_max"]].values],
            "digit acc %": mean_std(s, "digit_acc"),
            "val acc %": mean_std(s, "val_acc"),
            "params": [cell(float(n), ".0f") for n in s["n_params"]],
            "fit s": [cell(x, ".1f") for x in s["fit_seconds_mean"]],
            **({"CPU": s["cpu"]} if several_cpus(s["cpu"]) else {}),  # fit seconds and numbers depend on it
            "identity": "`" + s["identity"] + "`",
        }
    )


class Side(NamedTuple):
    """One side of a paired comparison: its label, seed -> accuracy (fractions), CPU (:func:`summarize`'s ``cpu``)."""

    label: str
    seeds: dict[int, float]
    cpu: str = ""


def side(summary: pd.DataFrame, df: pd.DataFrame, group: int) -> Side:
    """The :class:`Side` of ``group``: its label, its seeds' test accuracies and its CPU."""
    row = summary.set_index("group").loc[group]
    return Side(row["label"], seed_values(df, group), row["cpu"])


def paired_table(pairs: list[tuple[Side, Side]]) -> pd.DataFrame:
    """Paired comparisons a − b on the seeds both have (:func:`pairmnist.analysis.stats.paired`).

    Args:
        pairs: (a, b), each a :class:`Side` (accuracies as fractions).

    Returns:
        One row per pair: :data:`PAIRED_COLUMNS` with the difference and its CI in percentage
        points (``diff_points``, ``ci_low_points``, ``ci_high_points``), and ``p_ttest_holm``,
        ``p_wilcoxon_holm``: the p-values Holm-adjusted over the rows (:func:`~pairmnist.analysis.stats.holm`);
        each side's CPU (``cpu_a``, ``cpu_b``) and ``across_cpus``: whether the pair crosses CPUs. A pair
        sharing fewer than 2 seeds gets ``n_seeds``, the note :data:`NOT_COMPARABLE` and no statistics.
    """
    rows = []
    for a, b in pairs:
        result = stats.paired(a.seeds, b.seeds)
        fields = result.as_dict() if result else {"n_seeds": len(set(a.seeds) & set(b.seeds)), "note": NOT_COMPARABLE}
        cpus = {"cpu_a": a.cpu, "cpu_b": b.cpu, "across_cpus": a.cpu != b.cpu or several_cpus([a.cpu])}
        rows.append({"a": a.label, "b": b.label, "note": "", **fields, **cpus})
    table = pd.DataFrame(rows, columns=[*PAIRED_COLUMNS, "cpu_a", "cpu_b", "across_cpus"])
    table[["mean_diff", "ci_low", "ci_high"]] *= 100
    table = table.rename(columns={"mean_diff": "diff_points", "ci_low": "ci_low_points", "ci_high": "ci_high_points"})
    for test in ("p_ttest", "p_wilcoxon"):
        table[f"{test}_holm"] = stats.holm(table[test].astype(float).tolist())
    return table


def paired_cells(table: pd.DataFrame) -> pd.DataFrame:
    """A :func:`paired_table` as text: the difference and its CI signed, in points; a pair not
    comparable says so in place of its difference. When its rows ran on more than one CPU, a ``CPU``
    column gives each row's, a difference across CPUs marked as such."""
    t = table.reset_index(drop=True)
    cis = zip(t["ci_low_points"], t["ci_high_points"], strict=True)
    wins = zip(t["wins_a"], t["wins_b"], t["ties"], strict=True)
    sides = zip(t["cpu_a"], t["cpu_b"], t["across_cpus"], strict=True)
    cpus = [f"{a} vs {b} (across CPUs)" if across else a for a, b, across in sides]
    return pd.DataFrame(
        {
            "a": t["a"],
            "b": t["b"],
            "seeds": t["n_seeds"],
            "a − b (points)": [note or cell(d, "+.2f") for note, d in zip(t["note"], t["diff_points"], strict=True)],
            "95 % CI": [interval(lo, hi, "+.2f") for lo, hi in cis],
            "p (t)": t["p_ttest"].map(p_text),
            "p (Wilcoxon)": t["p_wilcoxon"].map(p_text),
            "p Holm (t)": t["p_ttest_holm"].map(p_text),
            "wins a:b": [
                "" if pd.isna(a) else f"{a:.0f}:{b:.0f}" + (f" ({n:.0f} tied)" if n else "") for a, b, n in wins
            ],
            **({"CPU": cpus} if several_cpus([*t["cpu_a"], *t["cpu_b"]]) else {}),
        }
    )


def comparisons(df: pd.DataFrame, summary: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Paired comparisons of test accuracy between groups (:func:`paired_table`), with their identities.

    With up to :data:`MAX_ALL_PAIRS` groups every pair, a above b in the summary's order (higher
    mean test accuracy first); with more (a grid), the first group of :func:`by_validation` (a
    grid's winner) against each other group, so the reference is never chosen on test data.
    """
    if len(summary) <= MAX_ALL_PAIRS:
        pairs = list(itertools.combinations(summary["group"], 2))
    else:
        reference = by_validation(summary, keys)["group"].iloc[0]
        pairs = [(reference, g) for g in summary["group"] if g != reference]
    ids = summary["identity"]
    table = paired_table([(side(summary, df, a), side(summary, df, b)) for a, b in pairs])
    return table.assign(identity_a=[ids[a] for a, _ in pairs], identity_b=[ids[b] for _, b in pairs])


def by_validation(summary: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The groups' keys and :data:`SELECTION_COLUMNS` (with ``group``), best on validation first.

    Order: the higher mean validation accuracy (rounded to :data:`~pairmnist.analysis.stats.DECIMALS`,
    so means equal but for float noise tie), then the smaller validation std, then the group keys'
    order (:func:`sort_key`): a fixed order that reads no test number.
    """
    view = summary[["group", *keys, *SELECTION_COLUMNS]].sort_values(keys, kind="mergesort", key=sort_key)
    score = view.assign(score=view["val_acc_mean"].round(stats.DECIMALS))
    order = score.sort_values(["score", "val_acc_std"], ascending=[False, True], na_position="last", kind="mergesort")
    return view.loc[order.index]


def rank(summary: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rank the groups of each model by :func:`by_validation`'s order.

    Returns ``group``, the group keys, :data:`SELECTION_COLUMNS` and ``rank`` (1 = selected),
    rows ordered by model then rank.
    """
    view = by_validation(summary, keys).sort_values("model", kind="mergesort", ignore_index=True)
    return view.assign(rank=view.groupby("model").cumcount() + 1)


def versus_winner(ranked: pd.DataFrame, df: pd.DataFrame) -> list[str]:
    """Whether each ranked group's validation accuracy is distinguishable from its model's winner's.

    Paired over the seeds both ran (:func:`pairmnist.analysis.stats.paired`): "lower" when the
    95 % CI of winner − group excludes 0, else "not distinguishable", with the difference in
    points and the paired t-test p-value; "not comparable" below 2 shared seeds.
    """
    winners, marks = ranked.groupby("model")["group"].first(), []
    for model, group in zip(ranked["model"], ranked["group"], strict=True):
        result = stats.paired(seed_values(df, winners[model], "val_acc"), seed_values(df, group, "val_acc"))
        if group == winners[model] or result is None:
            marks.append("winner" if group == winners[model] else "not comparable (< 2 shared seeds)")
            continue
        if result.ci_low == result.ci_high:  # the same gap on every seed: no interval to judge by
            verdict = "same gap on every seed, no interval"
        else:
            verdict = "lower" if result.ci_low > 0 else "not distinguishable"
        p = "" if pd.isna(result.p_ttest) else f", p={result.p_ttest:.2g}"
        marks.append(f"{verdict} ({-100 * result.mean_diff:+.2f} points, {result.n_seeds} seeds{p})")
    return marks


def best(ranked: pd.DataFrame, df: pd.DataFrame, keys: list[str]) -> dict[str, dict[str, Any]]:
    """Per model with more than one group: the winner's settings, its score and the 10-seed command.

    Returns:
        ``{model: {"identity": str, "settings": {...}, "overrides": [...], "val_acc_mean": float,
        "val_acc_std": float | None, "n_runs": int, "command": str}}``. ``settings`` are the
        winner's values of the group keys (by short name) that differ among the model's groups;
        ``overrides`` are the command-line settings of the winner's newest job
        (:func:`pairmnist.record.settings`: everything but the seed, sweep presets and
        bookkeeping; every job of a group has the same identity);
        ``command`` re-runs exactly that identity on seeds 0-9, each override one shell word
        (``shlex.quote``: a value with braces, commas, spaces or quotes is quoted, so bash neither
        expands nor splits it).
    """
    chosen = {}
    newest = df.sort_values("job").groupby("group")["overrides"].last()
    for model, rows in ranked.groupby("model", sort=True):
        if len(rows) < 2:
            continue
        top = rows.iloc[0]
        kept = [o for o in newest[top["group"]] if record.settings([o]) and not o.startswith("model=")]
        overrides = [f"model={model}", *kept]
        shown = [k for k in keys[1:] if rows[k].nunique(dropna=False) > 1]
        chosen[str(model)] = {
            "identity": top["identity"],
            "settings": {k: v.item() if hasattr(v, "item") else v for k, v in top[shown].items()},  # numpy -> Python
            "overrides": overrides,
            "val_acc_mean": float(top["val_acc_mean"]),
            "val_acc_std": None if pd.isna(top["val_acc_std"]) else float(top["val_acc_std"]),
            "n_runs": int(top["n_runs"]),
            "command": "python src/run.py -m " + " ".join(map(shlex.quote, overrides)) + " 'seed=range(10)'",
        }
    return chosen


def not_selectable(df: pd.DataFrame, summary: pd.DataFrame) -> dict[str, str]:
    """Models run with several settings that must not be ranked, with the reason.

    A choice made on a seed of :data:`EVALUATION_SEEDS` would be evaluated on the data it was
    chosen on; a group without validation figures (``val_acc`` null) cannot be ranked.
    """
    reasons = {}
    for model, runs in df.groupby("model"):
        overlap = sorted(EVALUATION_SEEDS & set(runs["seed"]))
        if (summary["model"] == model).sum() < 2:
            continue
        if overlap:
            why = f"its seeds include {seed_text(overlap)}, which the winner would be evaluated on (use tuning seeds)"
            reasons[str(model)] = why
        elif runs["val_acc"].isna().any():
            reasons[str(model)] = "some runs have no validation figures (val_acc null)"
    return reasons


def ranking_markdown(ranked: pd.DataFrame, summary: pd.DataFrame, keys: list[str], chosen: dict, title: str) -> str:
    """ranking.md: each tuned model's groups by mean validation accuracy, and the winner.

    Each group is marked whether its validation accuracy is distinguishable from the
    winner's (paired over the tuning seeds, 95 %); a group whose learned head stayed untrained
    (:func:`untrained_head`) gets a note. Test accuracy is joined in after the ranking, for
    information, in a column marked as not used for selection.
    """
    table = ranked.merge(summary[["group", "test_acc_mean", "test_acc_std", "untrained_head"]], on="group")
    text = [
        f"# Hyperparameter ranking: {title}",
        "",
        "Groups ranked by mean validation accuracy over their seeds (validation pairs come from MNIST training images "
        "the training pairs do not use). 'vs winner' compares each group's validation accuracy with the winner's seed "
        "by seed (paired t-test, 95 %): 'not distinguishable' means these seeds cannot tell the two apart. Test "
        "accuracy is shown for information only: it is **not used for selection**.",
    ]
    for model, rows in table[table["model"].astype(str).isin(chosen)].groupby("model", sort=True):
        shown = [k for k in keys[1:] if rows[k].nunique(dropna=False) > 1]
        cells = rows[["rank", *shown]].assign(runs=rows["n_runs"], **{"val acc %": mean_std(rows, "val_acc")})
        cells["vs winner (validation)"] = rows["vs_winner"]
        cells["test acc % (not used)"] = mean_std(rows, "test_acc")
        cells["note"] = rows["untrained_head"].map({True: UNTRAINED_HEAD, False: ""})
        text += ["", f"## {model}", "", markdown(cells), ""]
        text += [f"Selected: identity `{chosen[str(model)]['identity']}`. Evaluate it on seeds 0-9 with", ""]
        text += ["```bash", chosen[str(model)]["command"], "```"]
    return "\n".join(text) + "\n"


def summary_markdown(report: Report, title: str) -> str:
    """summary.md: the validation ranking first for a grid, then the groups, the paired
    comparisons, the duplicates set aside and the failed jobs."""
    summary, jobs, ranking = report.summary, report.jobs, report.ranking
    text = [ranking, "---", ""] if ranking else []
    aside = " (for information: the choice above uses validation only)" if report.best else ""
    text += [
        f"# Study summary: {title}",
        "",
        f"Finished jobs: {summary['n_runs'].sum()}, in {len(summary)} group(s) (one per identity: the resolved config "
        "without the seed). Test accuracy in percent after the final epoch: mean ± sample std over the seeds, the 95 % "
        "CI of the mean (Student t), and the test-set noise: the binomial standard error sqrt(p(1 − p)/n) of one run "
        f"on its n test pairs. Sorted by mean test accuracy{aside}.",
        "",
        markdown(group_cells(summary, report.keys)),
        "",
        "## Paired comparisons of test accuracy",
        "",
        "Per seed, a − b in points on the seeds both groups ran (one seed gives both the same data), its 95 % CI "
        "(Student t), the paired t-test and Wilcoxon signed-rank p-values, the t-test's Holm-adjusted over the rows, "
        "and the seeds each side won.",
        "",
        markdown(paired_cells(report.comparisons))
        if len(report.comparisons)
        else "Only one group: nothing to compare.",
    ]
    if jobs.duplicates:
        text += ["", f"## Duplicates set aside ({len(jobs.duplicates)}: same identity and seed as a newer job)", ""]
        text += [f"- `{old}` (kept: `{new}`)" for old, new in jobs.duplicates.items()]
    if jobs.failed:
        text += ["", f"## Failed or unfinished jobs ({len(jobs.failed)}, not in the table)", ""]
        text += [f"- `{name}`: {reason}" for name, reason in jobs.failed.items()]
    return "\n".join(text) + "\n"


def curves_figure(report: Report) -> Figure:
    """Training loss and validation accuracy per epoch: mean over seeds with a ±1 std band."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    history = {r["job"]: r["history"] for r in report.jobs.records}
    for group, label in zip(report.summary["group"], report.summary["label"], strict=True):
        jobs = report.df.loc[report.df["group"] == group, "job"]
        for ax, key, scale in ((axes[0], "train_loss", 1), (axes[1], "val_acc", 100)):
            table = pd.DataFrame([history[j][key] for j in jobs], dtype=float).T * scale  # epochs x runs
            mean, std, epochs = table.mean(axis=1), table.std(axis=1), table.index + 1
            (line,) = ax.plot(epochs, mean, marker="o", markersize=2.5, label=f"{label} (n={len(jobs)})")
            ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)  # none for one run
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
    summary, df = report.summary, report.df
    fig = Figure(figsize=(max(5, 1.4 * len(summary) + 2), 4.5), layout="constrained")
    ax = fig.subplots()
    table = df.pivot(index="seed", columns="group", values="test_acc")[summary["group"]] * 100  # seeds x groups
    positions = range(1, len(summary) + 1)
    ax.boxplot([table[g].dropna() for g in table], positions=positions, widths=0.5, showfliers=False)
    for _, row in table.iterrows():
        ax.plot(positions, row.to_numpy(), color="grey", alpha=0.35, linewidth=0.8, zorder=2)
    for x, g in zip(positions, table, strict=True):
        ax.scatter([x] * table[g].count(), table[g].dropna(), s=14, alpha=0.8, zorder=3)
    ax.set_xticks(positions, summary["label"].str.replace(" ", "\n"), fontsize="small")
    ax.set(title="Final test accuracy per seed (a grey line joins one seed's runs)", ylabel="test accuracy (%)")
    ax.grid(axis="y", alpha=0.3)
    return fig


@dataclass
class Report:
    """The analysis of a set of jobs (``best`` is empty when no model was tuned).

    Attributes:
        df: one row per job (:func:`job_table`) with its ``group``.
        keys: the group columns (:func:`group_keys`).
        summary: one row per group (:func:`summarize`).
        comparisons: paired comparisons (:func:`comparisons`).
        best: the winner per tuned model (:func:`best`); ranking: ranking.md's text.
        markdown: summary.md's text.
        files: the files written (empty until :func:`write_report` writes them).
    """

    jobs: Jobs
    df: pd.DataFrame
    keys: list[str]
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    best: dict[str, dict[str, Any]]
    ranking: str
    markdown: str = ""
    files: list[Path] = field(default_factory=list)


def analyse(jobs: Jobs, title: str, ranking_asked: bool = False) -> Report:
    """Group, summarise, compare and (for a grid) rank the finished jobs; writes nothing.

    A model run with several settings is a selection (ranking, best.yaml), unless its jobs
    ran under an ``experiment=`` preset (the ablation), which compares settings and picks none.
    Why a model cannot be ranked ("No ranking of ...") is said only where a ranking was asked
    for: ``ranking_asked``, or a job run under an ``hparams_search=`` preset (a grid or a search).

    Raises:
        FileNotFoundError: no finished job.
    """
    if not jobs.records:
        failed = f"; {len(jobs.failed)} without a result" if jobs.failed else ""
        raise FileNotFoundError(f"no finished job (metrics.json) under {title}{failed}")
    df = job_table(jobs.records)
    keys = group_keys(df)
    names = record.short_names([c for c in df.columns if "." in c], taken=[c for c in df.columns if "." not in c])
    df, keys = df.rename(columns=names), [names.get(k, k) for k in keys]  # config keys by their short names
    summary = summarize(df, keys)
    experiments = {r["model"] for r in jobs.records if any(str(o).startswith("experiment=") for o in r["overrides"])}
    unranked = {m: why for m, why in not_selectable(df, summary).items() if m not in experiments}
    ranked = rank(summary[~summary["model"].isin(experiments | set(unranked))], keys)  # an experiment selects nothing
    ranked["vs_winner"] = versus_winner(ranked, df)
    chosen = best(ranked, df, keys)
    ranking = ranking_markdown(ranked, summary, keys, chosen, title) if chosen else ""
    asked = ranking_asked or any(str(o).startswith("hparams_search=") for r in jobs.records for o in r["overrides"])
    if unranked and asked:
        ranking = "\n".join([ranking, *(f"No ranking of {m}: {why}." for m, why in unranked.items())]).strip()
    report = Report(jobs, df, keys, summary, comparisons(df, summary, keys), chosen, ranking)
    report.markdown = summary_markdown(report, title)
    return report


def write_report(root: str | Path, ranking_asked: bool = False) -> Report:
    """Read every job under ``root`` and write :data:`REPORT_FILES` there, atomically.

    When a model ran with several settings (a grid search), also rank them on validation
    accuracy and write ``ranking.md`` and ``best.yaml`` (the winning overrides per model and
    the command that evaluates them on seeds 0-9); then summary.md and the console lead with
    that ranking. ``ranking_asked``: say why a model cannot be ranked even without a grid or
    search preset (:func:`analyse`).

    Raises:
        FileNotFoundError: ``root`` holds no job folder with a result.
        ReportError: a report file cannot be written (the message names it); the files
            written before it are complete, those after it are not written.
    """
    root = Path(root)
    report = analyse(collect(root), root.name, ranking_asked)
    files = {
        "summary.csv": report.summary.drop(columns="group"),
        "comparisons.csv": report.comparisons,
        "summary.md": report.markdown,
        "curves.png": curves_figure(report),
        "test_acc.png": test_acc_figure(report),
    }
    if report.best:
        best_yaml = yaml.safe_dump(report.best, sort_keys=False, allow_unicode=True, width=10_000)
        header = "# Best settings per model, selected on mean validation accuracy (test accuracy not used).\n"
        files |= {"ranking.md": report.ranking, "best.yaml": header + best_yaml}
    for name, content in files.items():
        write_file(root / name, content)
    report.files = [root / name for name in files]
    return report


def console_text(report: Report) -> str:
    """What a sweep prints at its end: the duplicates set aside, then the markdown (ranking first for a grid)."""
    duplicates = report.jobs.duplicates
    if not duplicates:
        return report.markdown
    line = f"set aside {len(duplicates)} duplicate job(s) (same identity and seed as a newer one): "
    return line + ", ".join(duplicates) + "\n" + report.markdown
