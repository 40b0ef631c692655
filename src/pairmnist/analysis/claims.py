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
from matplotlib.figure import Figure

from pairmnist.analysis import stats
from pairmnist.analysis.report import ci_text, markdown_table, p_text, points_text

NEEDED = ("ablation", "study", "data_scaling")  # the stored sweeps the claims read
REPORTED_GAIN = 0.02  # C1: the report's gain from weight sharing, about 2 points (docs/STUDY.md)
NEAR = 0.03  # C5: "near 80 %" taken as within 3 points of it
CLAIMS_HEADER = ["claim", "the report said", "measured by", "estimate", "95 % CI", "p", "p Holm", "verdict"]


def _acc(records: list[dict[str, Any]], model: str, **where: Any) -> dict[int, float]:
    """seed -> test accuracy of the records of ``model`` whose top-level keys equal ``where``."""
    return {
        r["seed"]: r["test_acc"]
        for r in records
        if r["model"] == model and all(r.get(k) == v for k, v in where.items())
    }


def _sign(result: stats.Paired | None) -> int:
    """+1 when the paired difference's CI lies above 0, -1 below, 0 when it holds 0 (or no result)."""
    if result is None:
        return 0
    return 1 if result.ci_low > 0 else -1 if result.ci_high < 0 else 0


def _difference_of(a: dict[int, float], b: dict[int, float], c: dict[int, float], d: dict[int, float]) -> dict:
    """seed -> (a - b) - (c - d), on the seeds all four have (a difference of two paired effects)."""
    seeds = set(a) & set(b) & set(c) & set(d)
    return {s: (a[s] - b[s]) - (c[s] - d[s]) for s in seeds}


def scaling_sizes(records: list[dict[str, Any]]) -> list[int]:
    """The training sizes (``n_pairs``) of the data-scaling records, ascending."""
    return sorted({r["n_pairs"] for r in records})


def claims(sweeps: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per claim: its words, how it was measured, the estimate, its CI, p, p Holm, verdict.

    Args:
        sweeps: the records of each sweep of :data:`NEEDED`, by name.

    Returns:
        Rows with the keys of :data:`CLAIMS_HEADER` (``estimate`` and the CI as text).
    """
    ablation, study, scaling = (sweeps[name] for name in NEEDED)
    sia, twin = _acc(ablation, "siamese", aux_weight=0.5), _acc(ablation, "twin", aux_weight=0.5)
    sia0, twin0 = _acc(ablation, "siamese", aux_weight=0), _acc(ablation, "twin", aux_weight=0)
    rows = []

    c1 = stats.paired(sia, twin)
    inside = c1 is not None and c1.ci_low <= REPORTED_GAIN <= c1.ci_high
    verdict = {1: "supported" if inside else "partly: higher, by another amount than 2 points", 0: "not supported"}
    rows.append(
        _row(
            "C1: weight sharing improves accuracy",
            "by about 2 points",
            "siamese − twin, aux_weight 0.5, ablation (points)",
            c1,
            verdict.get(_sign(c1), "not supported: lower"),
        )
    )

    sizes = scaling_sizes(scaling)
    ratios = {
        n: stats.pitman_morgan(_acc(scaling, "siamese", n_pairs=n), _acc(scaling, "twin", n_pairs=n)) for n in sizes
    }
    lower = [n for n, r in ratios.items() if r is not None and r.ci_high < 1]
    c2 = ratios.get(1000)
    rule = "sd ratio CI below 1"
    rows.append(
        {
            "claim": "C2: weight sharing makes results more stable across rounds",
            "the report said": "lower variance",
            "measured by": "sd(siamese) / sd(twin) over the seeds at 1000 pairs, data_scaling, Pitman–Morgan (paired)",
            "estimate": "" if c2 is None else f"{c2.ratio:.2f}",
            "95 % CI": "" if c2 is None else f"[{c2.ci_low:.2f}, {c2.ci_high:.2f}]",
            "p": math.nan if c2 is None else c2.p,
            "verdict": _count_verdict(len(lower), len(sizes), rule),
        }
    )

    gaps = {
        n: stats.paired(_acc(scaling, "siamese", n_pairs=n), _acc(scaling, "twin", n_pairs=2 * n))
        for n in sizes
        if 2 * n in sizes
    }
    matched = [n for n, g in gaps.items() if g is not None and _sign(g) >= 0]
    rows.append(
        _row(
            "C3: weight sharing acts like doubling the training set",
            "siamese on n pairs ≈ twin on 2n",
            "siamese at 500 − twin at 1000 pairs (points)",
            gaps.get(500),
            _count_verdict(len(matched), len(gaps), "siamese on n pairs as good as twin on 2n (CI reaching 0)"),
        )
    )

    aux = {s: ((sia[s] - sia0[s]) + (twin[s] - twin0[s])) / 2 for s in set(sia) & set(sia0) & set(twin) & set(twin0)}
    c4a = stats.paired(aux, dict.fromkeys(aux, 0.0))
    rows.append(
        _row(
            "C4a: the auxiliary loss improves accuracy",
            "better with it",
            "aux_weight 0.5 − 0, mean over twin and siamese, ablation (points)",
            c4a,
            {1: "supported", 0: "not supported"}.get(_sign(c4a), "not supported: lower"),
        )
    )
    more = _difference_of(sia, sia0, sia, twin)
    c4b = stats.paired(more, dict.fromkeys(more, 0.0))
    rows.append(
        _row(
            "C4b: … and more than weight sharing does",
            "aux gain > sharing gain",
            "(siamese aux 0.5 − aux 0) − (siamese − twin at aux 0.5) (points)",
            c4b,
            {1: "supported", 0: "not supported: the seeds cannot tell them apart"}.get(_sign(c4b), "not supported"),
        )
    )

    shallow = [r for r in study if r["model"] == "shallow"]
    at5 = [r["history"]["train_acc"][4] for r in shallow if len(r["history"]["train_acc"]) >= 5]
    low, high = stats.t_interval(at5)
    full = bool(at5) and high >= 0.995
    rows.append(
        {
            "claim": "C5a: the shallow net's training accuracy reaches 100 % within about 5 epochs",
            "the report said": "100 % by epoch ~5",
            "measured by": "shallow's training accuracy in epoch 5, study (%)",
            "estimate": points_text(float(np.mean(at5))) if at5 else "",
            "95 % CI": ci_text(low, high),
            "p": math.nan,
            "verdict": "supported" if full else "not supported: below 99.5 % in epoch 5",
        }
    )
    final = [r["test_acc"] for r in shallow]
    low, high = stats.t_interval(final)
    near = bool(final) and 0.8 - NEAR <= low and high <= 0.8 + NEAR
    rows.append(
        {
            "claim": "C5b: … while its accuracy on new pairs stays near 80 %",
            "the report said": "about 80 %",
            "measured by": "shallow's test accuracy after 25 epochs, study (%)",
            "estimate": points_text(float(np.mean(final))) if final else "",
            "95 % CI": ci_text(low, high),
            "p": math.nan,
            "verdict": "supported" if near else f"not supported: CI not within 80 ± {100 * NEAR:.0f} %",
        }
    )
    for row, adjusted in zip(rows, stats.holm([r["p"] for r in rows]), strict=True):
        row["p Holm"] = adjusted
    return rows


def _row(claim: str, said: str, measured: str, result: stats.Paired | None, verdict: str) -> dict[str, Any]:
    """A claims row from a paired difference: the mean in points, its CI, the paired t-test's p."""
    return {
        "claim": claim,
        "the report said": said,
        "measured by": measured,
        "estimate": "" if result is None else points_text(result.mean_diff, signed=True),
        "95 % CI": "" if result is None else ci_text(result.ci_low, result.ci_high, signed=True),
        "p": math.nan if result is None else result.p_ttest,
        "verdict": verdict if result is not None else "not measured",
    }


def _count_verdict(held: int, of: int, rule: str) -> str:
    """supported when ``rule`` held at every training size, partly at some, not supported at none."""
    if of == 0:
        return "not measured"
    if held == of:
        return f"supported: {rule} at all {of} sizes"
    return f"{'partly' if held else 'not supported'}: {rule} at {held} of {of} sizes"


def claims_table(rows: list[dict[str, Any]]) -> str:
    """The claims as a Markdown table (:data:`CLAIMS_HEADER`)."""
    cells = [[*(r[k] for k in CLAIMS_HEADER[:5]), p_text(r["p"]), p_text(r["p Holm"]), r["verdict"]] for r in rows]
    return markdown_table(CLAIMS_HEADER, cells)


def scaling_table(records: list[dict[str, Any]]) -> str:
    """Per training size: each net's mean test accuracy and CI, the paired gap siamese − twin,
    siamese at n − twin at 2n, and the Pitman-Morgan sd ratio siamese / twin."""
    rows = []
    sizes = scaling_sizes(records)
    for n in sizes:
        sia, twin = _acc(records, "siamese", n_pairs=n), _acc(records, "twin", n_pairs=n)
        gap, ratio = stats.paired(sia, twin), stats.pitman_morgan(sia, twin)
        double = stats.paired(sia, _acc(records, "twin", n_pairs=2 * n)) if 2 * n in sizes else None
        cells = [n]
        for acc in (twin, sia):
            low, high = stats.t_interval(list(acc.values()))
            cells.append(f"{points_text(float(np.mean(list(acc.values()))))} {ci_text(low, high)}")
        for result in (gap, double):
            cells.append(
                ""
                if result is None
                else f"{points_text(result.mean_diff, True)} {ci_text(result.ci_low, result.ci_high, True)}"
            )
        cells.append(
            "" if ratio is None else f"{ratio.ratio:.2f} [{ratio.ci_low:.2f}, {ratio.ci_high:.2f}], p {p_text(ratio.p)}"
        )
        rows.append(cells)
    header = ["pairs n", "twin %", "siamese %", "siamese − twin", "siamese(n) − twin(2n)", "sd ratio siamese/twin"]
    return markdown_table(header, rows)


def scaling_figure(records: list[dict[str, Any]]) -> Figure:
    """Test accuracy against training pairs (log scale), one line per net with its 95 % CI band;
    right: the paired gap siamese − twin with its CI band."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    sizes = scaling_sizes(records)
    for model in ("twin", "siamese"):
        accs = [list(_acc(records, model, n_pairs=n).values()) for n in sizes]
        means = [100 * np.mean(a) for a in accs]
        bands = np.array([stats.t_interval(a) for a in accs]) * 100
        left.plot(sizes, means, marker="o", label=model)
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
