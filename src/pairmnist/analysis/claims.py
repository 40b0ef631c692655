"""The original report's claims (docs/STUDY.md, "What the report claimed"), tested on stored records.

Reads three stored sweeps: ``ablation`` (twin and siamese x aux_weight 0 and 0.5, seeds 0-9),
``study`` (the shallow net's per-epoch histories) and ``data_scaling`` (twin and siamese on
250 ... 4000 training pairs, the same 1000 test pairs per seed). Every estimate is paired over
the seeds (one seed gives both nets the same pairs); p-values are Holm-adjusted over the table.
A verdict follows from the estimate and its 95 % CI by the rule written next to each claim.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pairmnist.analysis import stats
from pairmnist.analysis.report import cell, interval, markdown, p_text

NEEDED = ("ablation", "study", "data_scaling")  # the stored sweeps the claims read
REPORTED_GAIN = 0.02  # C1: the report's gain from weight sharing, about 2 points (docs/STUDY.md)
NEAR = 0.03  # C5: "near 80 %" taken as within 3 points of it
COLUMNS = ["claim", "the report said", "measured by", "estimate", "95 % CI", "p", "verdict"]
CLAIMS = {  # each claim in this project's words (docs/STUDY.md): what the report said, how it is measured here
    "C1: weight sharing improves accuracy": ("by about 2 points", "siamese − twin, aux_weight 0.5, ablation (points)"),
    "C2: weight sharing makes results more stable across rounds": (
        "lower variance",
        "sd(siamese) / sd(twin) over the seeds at 1000 pairs, data_scaling, Pitman–Morgan (paired)",
    ),
    "C3: weight sharing acts like doubling the training set": (
        "siamese on n pairs ≈ twin on 2n",
        "siamese at 500 − twin at 1000 pairs (points)",
    ),
    "C4a: the auxiliary loss improves accuracy": (
        "better with it",
        "aux_weight 0.5 − 0, mean over twin and siamese, ablation (points)",
    ),
    "C4b: … and more than weight sharing does": (
        "aux gain > sharing gain",
        "(siamese aux 0.5 − aux 0) − (siamese − twin at aux 0.5) (points)",
    ),
    "C5a: the shallow net's training accuracy reaches 100 % within about 5 epochs": (
        "100 % by epoch ~5",
        "shallow's training accuracy in epoch 5, study (%)",
    ),
    "C5b: … while its accuracy on new pairs stays near 80 %": (
        "about 80 %",
        "shallow's test accuracy after 25 epochs, study (%)",
    ),
}


def _acc(records: list[dict[str, Any]], model: str, **where: Any) -> dict[int, float]:
    """seed -> test accuracy of the records of ``model`` whose top-level keys equal ``where``."""
    return {
        r["seed"]: r["test_acc"]
        for r in records
        if r["model"] == model and all(r.get(k) == v for k, v in where.items())
    }


def _sign(result: stats.Paired | None) -> int | None:
    """+1 when the paired difference's CI lies above 0, -1 below, 0 when it holds 0; None without a result."""
    if result is not None:
        return 1 if result.ci_low > 0 else -1 if result.ci_high < 0 else 0


def _diff(result: stats.Paired | None) -> tuple[str, str, float]:
    """A paired difference as claims cells: the mean in points, its CI, the paired t-test's p."""
    if result is None:
        return "", "", math.nan
    return (
        cell(100 * result.mean_diff, "+.2f"),
        interval(100 * result.ci_low, 100 * result.ci_high, "+.2f"),
        result.p_ttest,
    )


def _mean(values: list[float]) -> tuple[str, str, float]:
    """A mean accuracy as claims cells: the mean in percent, its Student-t CI, no p-value."""
    low, high = stats.t_interval(values)
    return cell(100 * float(np.mean(values)), ".2f") if values else "", interval(100 * low, 100 * high), math.nan


def _count_verdict(held: int, of: int, rule: str) -> str:
    """supported when ``rule`` held at every training size, partly at some, not supported at none."""
    if of == 0:
        return "not measured"
    if held == of:
        return f"supported: {rule} at all {of} sizes"
    return f"{'partly' if held else 'not supported'}: {rule} at {held} of {of} sizes"


def scaling_sizes(records: list[dict[str, Any]]) -> list[int]:
    """The training sizes (``n_pairs``) of the data-scaling records, ascending."""
    return sorted({r["n_pairs"] for r in records})


def claims(sweeps: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per claim of :data:`CLAIMS`: its words, how it was measured, the estimate, its CI, p, p Holm, verdict.

    Args:
        sweeps: the records of each sweep of :data:`NEEDED`, by name.

    Returns:
        Rows with the keys of :data:`COLUMNS` and ``p Holm`` (``estimate`` and the CI as text).
    """
    ablation, study, scaling = (sweeps[name] for name in NEEDED)
    sia, twin = _acc(ablation, "siamese", aux_weight=0.5), _acc(ablation, "twin", aux_weight=0.5)
    sia0, twin0 = _acc(ablation, "siamese", aux_weight=0), _acc(ablation, "twin", aux_weight=0)
    c1 = stats.paired(sia, twin)
    about = c1 is not None and c1.ci_low <= REPORTED_GAIN <= c1.ci_high
    higher = "supported" if about else "partly: higher, by another amount than 2 points"
    verdicts = {1: higher, 0: "not supported", -1: "not supported: lower"}
    measured = [(*_diff(c1), verdicts.get(_sign(c1), "not measured"))]

    sizes = scaling_sizes(scaling)
    ratios = {
        n: stats.pitman_morgan(_acc(scaling, "siamese", n_pairs=n), _acc(scaling, "twin", n_pairs=n)) for n in sizes
    }
    lower = [n for n, r in ratios.items() if r is not None and r.ci_high < 1]
    c2 = ratios.get(1000)
    c2_cells = ("", "", math.nan) if c2 is None else (f"{c2.ratio:.2f}", interval(c2.ci_low, c2.ci_high), c2.p)
    measured.append((*c2_cells, _count_verdict(len(lower), len(sizes), "sd ratio CI below 1")))

    twice = [n for n in sizes if 2 * n in sizes]
    gaps = {n: stats.paired(_acc(scaling, "siamese", n_pairs=n), _acc(scaling, "twin", n_pairs=2 * n)) for n in twice}
    matched = [n for n, g in gaps.items() if g is not None and _sign(g) >= 0]
    rule = "siamese on n pairs as good as twin on 2n (CI reaching 0)"
    measured.append(
        (*_diff(gaps.get(500)), _count_verdict(len(matched), len(gaps), rule) if gaps.get(500) else "not measured")
    )

    shared = set(sia) & set(sia0) & set(twin) & set(twin0)
    aux = {s: ((sia[s] - sia0[s]) + (twin[s] - twin0[s])) / 2 for s in shared}
    c4a = stats.paired(aux, dict.fromkeys(aux, 0.0))
    verdicts = {1: "supported", 0: "not supported", -1: "not supported: lower"}
    measured.append((*_diff(c4a), verdicts.get(_sign(c4a), "not measured")))
    more = {s: (sia[s] - sia0[s]) - (sia[s] - twin[s]) for s in shared}
    c4b = stats.paired(more, dict.fromkeys(more, 0.0))
    verdicts = {1: "supported", 0: "not supported: the seeds cannot tell them apart", -1: "not supported"}
    measured.append((*_diff(c4b), verdicts.get(_sign(c4b), "not measured")))

    shallow = [r for r in study if r["model"] == "shallow"]
    at5 = [r["history"]["train_acc"][4] for r in shallow if len(r["history"]["train_acc"]) >= 5]
    full = bool(at5) and stats.t_interval(at5)[1] >= 0.995
    measured.append((*_mean(at5), "supported" if full else "not supported: below 99.5 % in epoch 5"))
    final = [r["test_acc"] for r in shallow]
    low, high = stats.t_interval(final)
    near = bool(final) and 0.8 - NEAR <= low and high <= 0.8 + NEAR
    measured.append((*_mean(final), "supported" if near else f"not supported: CI not within 80 ± {100 * NEAR:.0f} %"))
    rows = [
        dict(zip(COLUMNS, (claim, *words, *m), strict=True))
        for (claim, words), m in zip(CLAIMS.items(), measured, strict=True)
    ]
    for row, adjusted in zip(rows, stats.holm([r["p"] for r in rows]), strict=True):
        row["p Holm"] = adjusted
    return rows


def claims_table(rows: list[dict[str, Any]]) -> str:
    """The claims as a Markdown table, p-values as text."""
    table = pd.DataFrame(rows)
    table[["p", "p Holm"]] = table[["p", "p Holm"]].map(p_text)
    return markdown(table[[*COLUMNS[:6], "p Holm", "verdict"]])


def scaling_table(records: list[dict[str, Any]]) -> str:
    """Per training size: each net's mean test accuracy and CI, the paired gap siamese − twin,
    siamese at n − twin at 2n, and the Pitman-Morgan sd ratio siamese / twin."""
    rows = []
    sizes = scaling_sizes(records)
    for n in sizes:
        sia, twin = _acc(records, "siamese", n_pairs=n), _acc(records, "twin", n_pairs=n)
        gap, ratio = stats.paired(sia, twin), stats.pitman_morgan(sia, twin)
        double = stats.paired(sia, _acc(records, "twin", n_pairs=2 * n)) if 2 * n in sizes else None
        means = [" ".join(_mean(list(acc.values()))[:2]) for acc in (twin, sia)]
        diffs = [" ".join(_diff(result)[:2]).strip() for result in (gap, double)]
        sd = "" if ratio is None else f"{ratio.ratio:.2f} {interval(ratio.ci_low, ratio.ci_high)}, p {p_text(ratio.p)}"
        rows.append([n, *means, *diffs, sd])
    header = ["pairs n", "twin %", "siamese %", "siamese − twin", "siamese(n) − twin(2n)", "sd ratio siamese/twin"]
    return markdown(pd.DataFrame(rows, columns=header))


def scaling_figure(records: list[dict[str, Any]]) -> Figure:
    """Test accuracy against training pairs (log scale), one line per net with its 95 % CI band;
    right: the paired gap siamese − twin with its CI band."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    sizes = scaling_sizes(records)
    for model in ("twin", "siamese"):
        accs = [list(_acc(records, model, n_pairs=n).values()) for n in sizes]
        bands = np.array([stats.t_interval(a) for a in accs]) * 100
        left.plot(sizes, [100 * np.mean(a) for a in accs], marker="o", label=model)
        left.fill_between(sizes, bands[:, 0], bands[:, 1], alpha=0.25)
    paired = {n: stats.paired(_acc(records, "siamese", n_pairs=n), _acc(records, "twin", n_pairs=n)) for n in sizes}
    gaps = {n: g for n, g in paired.items() if g is not None}  # sizes with 2 shared seeds or more
    right.plot(list(gaps), [100 * g.mean_diff for g in gaps.values()], marker="o", color="black")
    lows, highs = [100 * g.ci_low for g in gaps.values()], [100 * g.ci_high for g in gaps.values()]
    right.fill_between(list(gaps), lows, highs, alpha=0.25, color="grey")
    right.axhline(0, color="grey", linewidth=0.8)
    for ax, title in ((left, "test accuracy (%), 95 % CI"), (right, "siamese − twin (points), paired 95 % CI")):
        ax.set_xscale("log")
        ax.minorticks_off()  # the log axis's own minor labels would crowd the sizes
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.set_xlabel("training pairs")
        ax.set_title(title)
    left.legend()
    return fig
