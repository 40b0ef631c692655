"""The original report's claims (docs/STUDY.md, "What the report claimed"), tested on stored records.

Reads the stored sweeps ``ablation`` (twin and siamese x aux_weight 0 and 0.5, seeds 0-9),
``study`` (the shallow net's per-epoch histories on standardised pixels), ``data_scaling`` (twin
and siamese on 250 ... 4000 training pairs, the same 1000 test pairs per seed) and, when it is
stored, :data:`RAW` (the shallow net on raw 0-255 pixels, the report's own input: C5's verdict
comes from it). Every estimate is paired over the seeds (one seed gives both nets the same pairs).

How a verdict follows from the records, by the rule written next to each claim:

- a claim that something is larger (C1, C4) needs the paired 95 % CI above 0;
- a claim of "about", "near", "reaches" or "as good as" (C1's amount, C3, C5) needs an
  equivalence test with a stated margin (:func:`pairmnist.analysis.stats.equivalence`, TOST at
  5 %: the 90 % CI inside the margin); a difference that is not significant never counts;
- a claim made at several training sizes (C2, C3) is one verdict, its p-values Holm-adjusted over
  the sizes, with the direction at each size stated; "not shown" when no adjusted test rejects.

The table's p-values are Holm-adjusted over its rows once more (``p Holm``).
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
RAW = "shallow_raw"  # the shallow net on raw pixels (data.normalize=false), the report's lr and width; optional
ALPHA = 1 - stats.LEVEL  # the level of every test
REPORTED_GAIN = 0.02  # C1: the report's gain from weight sharing, about 2 points (docs/STUDY.md)
# "About" and "as good as" between two nets (C1's amount, C3): within ±1 point. Half the 2-point gain
# of weight sharing the report is about (C1), so "as good as" never hides a gap half that large.
MARGIN = 0.01
FULL = 0.995  # C5a: "100 %" read as at least 99.5 % (at most 5 of the 1000 training pairs wrong)
EPOCH = 5  # C5a: "within about 5 epochs"
NEAR = 0.03  # C5b: "near 80 %" taken as within 3 points of it
REPORT_SHALLOW = {"lr": 1e-4, "nb_hidden": 500}  # the report's shallow net (docs/STUDY.md), as records name it
COLUMNS = ["claim", "the report said", "measured by", "estimate", "95 % CI", "p", "verdict"]


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


def _mean(values: list[float]) -> tuple[str, str]:
    """A mean accuracy as claims cells: the mean in percent and its Student-t CI."""
    low, high = stats.t_interval(values)
    return cell(100 * float(np.mean(values)), ".2f") if values else "", interval(100 * low, 100 * high)


def _row(claim: str, said: str, measured: str, cells: tuple[str, str, float], verdict: str) -> dict[str, Any]:
    """One claims row: :data:`COLUMNS` from the claim's words, its measurement's cells and its verdict."""
    return dict(zip(COLUMNS, (claim, said, measured, *cells, verdict), strict=True))


def _sizes(ns: list[int]) -> str:
    """Training sizes as text: ``250, 500`` (``none`` when empty)."""
    return ", ".join(map(str, ns)) or "none"


def scaling_sizes(records: list[dict[str, Any]]) -> list[int]:
    """The training sizes (``n_pairs``) of the data-scaling records, ascending."""
    return sorted({r["n_pairs"] for r in records})


def by_size(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per training size n of the data-scaling records, the tests C2 and C3 read.

    Returns:
        n -> ``twin``, ``siamese`` (seed -> test accuracy); ``gap``: siamese − twin
        (:class:`~pairmnist.analysis.stats.Paired`); ``ratio``: sd(siamese) / sd(twin)
        (:class:`~pairmnist.analysis.stats.SdRatio`) and ``ratio_holm``, its p Holm-adjusted over
        the sizes; ``double``: siamese(n) − twin(2n) and ``same``: its equivalence test within
        ±:data:`MARGIN` (:class:`~pairmnist.analysis.stats.Equivalence`), with ``same_holm``, that
        test's p Holm-adjusted over the sizes (None and NaN where there is no twin at 2n, or too few seeds).
    """
    rows = {}
    for n in scaling_sizes(records):
        sia, twin, twin2 = (_acc(records, m, n_pairs=k) for m, k in (("siamese", n), ("twin", n), ("twin", 2 * n)))
        double = stats.paired(sia, twin2)
        same = stats.equivalence(stats.differences(sia, twin2), -MARGIN, MARGIN) if double else None
        gap, ratio = stats.paired(sia, twin), stats.pitman_morgan(sia, twin)
        rows[n] = {"twin": twin, "siamese": sia, "gap": gap, "ratio": ratio, "double": double, "same": same}
    for test in ("ratio", "same"):
        tested = [n for n in rows if rows[n][test] is not None]
        adjusted = dict(zip(tested, stats.holm([rows[n][test].p for n in tested]), strict=True))
        for n in rows:
            rows[n][f"{test}_holm"] = adjusted.get(n, math.nan)
    return rows


def _sharing(ablation: list[dict[str, Any]]) -> dict[str, Any]:
    """C1: siamese − twin at aux_weight 0.5 above 0, and about 2 points (within ±MARGIN of it, TOST)."""
    sia, twin = _acc(ablation, "siamese", aux_weight=0.5), _acc(ablation, "twin", aux_weight=0.5)
    gain = stats.paired(sia, twin)
    low, high = 100 * (REPORTED_GAIN - MARGIN), 100 * (REPORTED_GAIN + MARGIN)
    about = stats.equivalence(stats.differences(sia, twin), REPORTED_GAIN - MARGIN, REPORTED_GAIN + MARGIN)
    sign = _sign(gain)
    if sign == 1 and about.shown:
        verdict = f"supported: higher, and within {low:g}–{high:g} points (TOST)"
    elif sign == 1:
        verdict = f"partly: higher, but not shown to lie within {low:g}–{high:g} points (TOST p {p_text(about.p)})"
    else:
        verdict = {None: "not measured", 0: "not shown: the 95 % CI holds 0", -1: "not supported: lower"}[sign]
    return _row(
        "C1: weight sharing improves accuracy",
        "by about 2 points",
        "siamese − twin, aux_weight 0.5, ablation (points); the amount: TOST within 2 ± 1 points",
        _diff(gain),
        verdict,
    )


def _stability(sizes: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """C2: sd(siamese) / sd(twin) below 1, one verdict over every size (Pitman–Morgan, Holm over the sizes)."""
    tested = {n: s for n, s in sizes.items() if s["ratio"] is not None}
    claim, said = "C2: weight sharing makes results more stable across rounds", "lower variance"
    measured = (
        f"sd(siamese) / sd(twin) over the seeds, Pitman–Morgan (paired), at each of {len(sizes)} sizes, "
        "data_scaling; p: Holm over the sizes; shown: the size with the smallest p"
    )
    if not tested:
        return _row(claim, said, measured, ("", "", math.nan), "not measured")
    shown = min(tested, key=lambda n: (tested[n]["ratio"].p, n))
    ratio = tested[shown]["ratio"]
    cells = (f"{ratio.ratio:.2f} (n = {shown})", interval(ratio.ci_low, ratio.ci_high), tested[shown]["ratio_holm"])
    lower = [n for n, s in tested.items() if s["ratio"].ratio < 1]
    higher = [n for n in tested if n not in lower]
    rejected = [n for n, s in tested.items() if s["ratio_holm"] < ALPHA]
    directions = f"sd ratio below 1 at n = {_sizes(lower)}, above 1 at n = {_sizes(higher)}"
    if not rejected:
        verdict = f"not shown: no size's Holm-adjusted p below {ALPHA:g} ({directions})"
    elif set(rejected) <= set(lower):
        extent = "supported" if len(rejected) == len(tested) else "partly"
        verdict = f"{extent}: lower at n = {_sizes(rejected)} of {len(tested)} sizes after Holm ({directions})"
    else:
        verdict = (
            f"not supported: higher at n = {_sizes([n for n in rejected if n in higher])} after Holm ({directions})"
        )
    return _row(claim, said, measured, cells, verdict)


def _doubling(sizes: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """C3: siamese on n pairs as good as twin on 2n: within ±MARGIN by TOST at every size, Holm over the sizes."""
    tested = {n: s for n, s in sizes.items() if s["same"] is not None}
    claim, said = "C3: weight sharing acts like doubling the training set", "siamese on n pairs ≈ twin on 2n"
    measured = (
        "siamese at n − twin at 2n pairs at each n, data_scaling (points); as good: within ±1 point by TOST "
        "(90 % CI); p: Holm over the sizes; shown: the size with the smallest p"
    )
    if not tested:
        return _row(claim, said, measured, ("", "", math.nan), "not measured")
    shown = min(tested, key=lambda n: (np.nan_to_num(tested[n]["same"].p, nan=1.0), n))
    estimate, ci, _ = _diff(tested[shown]["double"])
    cells = (f"{estimate} (n = {shown})", ci, tested[shown]["same_holm"])
    same = [n for n, s in tested.items() if s["same_holm"] < ALPHA or (math.isnan(s["same_holm"]) and s["same"].shown)]
    lower = [n for n, s in tested.items() if _sign(s["double"]) == -1]
    detail = f"as good at {len(same)} of {len(tested)} sizes" + (f" (n = {_sizes(same)})" if same else "")
    detail += f"; siamese(n) below twin(2n) at n = {_sizes(lower)} (95 % CI)" if lower else ""
    extent = (
        "supported" if len(same) == len(tested) else "partly" if same else "not supported" if lower else "not shown"
    )
    return _row(claim, said, measured, cells, f"{extent}: {detail}")


def _auxiliary(ablation: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """C4a: the auxiliary loss's effect above 0; C4b: above weight sharing's (paired over the seeds)."""
    sia, twin = _acc(ablation, "siamese", aux_weight=0.5), _acc(ablation, "twin", aux_weight=0.5)
    sia0, twin0 = _acc(ablation, "siamese", aux_weight=0), _acc(ablation, "twin", aux_weight=0)
    shared = set(sia) & set(sia0) & set(twin) & set(twin0)
    aux = {s: ((sia[s] - sia0[s]) + (twin[s] - twin0[s])) / 2 for s in shared}
    more = {s: (sia[s] - sia0[s]) - (sia[s] - twin[s]) for s in shared}
    c4a, c4b = (stats.paired(effect, dict.fromkeys(effect, 0.0)) for effect in (aux, more))
    verdicts = {None: "not measured", 1: "supported", -1: "not supported: lower"}
    c4a_row = _row(
        "C4a: the auxiliary loss improves accuracy",
        "better with it",
        "aux_weight 0.5 − 0, mean over twin and siamese, ablation (points)",
        _diff(c4a),
        {**verdicts, 0: "not shown: the 95 % CI holds 0"}[_sign(c4a)],
    )
    c4b_row = _row(
        "C4b: … and more than weight sharing does",
        "aux gain > sharing gain",
        "(siamese aux 0.5 − aux 0) − (siamese − twin at aux 0.5) (points)",
        _diff(c4b),
        {**verdicts, 0: "not shown: the seeds cannot tell them apart"}[_sign(c4b)],
    )
    return [c4a_row, c4b_row]


def _first_full(histories: list[list[float]]) -> str:
    """When the runs' training accuracy first reaches :data:`FULL`: ``in epoch 8–12`` (and the runs that never do)."""
    firsts = [next((i + 1 for i, acc in enumerate(h) if acc >= FULL), None) for h in histories]
    reached = sorted(f for f in firsts if f is not None)
    epochs = max(map(len, histories))
    if not reached:
        return f"never ≥ {100 * FULL:g} % in {epochs} epochs"
    span = f"{reached[0]}–{reached[-1]}" if reached[-1] > reached[0] else str(reached[0])
    never = len(firsts) - len(reached)
    rest = f"; never in {epochs} epochs for {never} of {len(firsts)} seeds" if never else ""
    return f"≥ {100 * FULL:g} % first in epoch {span}{rest}"


def _shallow(sweep: str, records: list[dict[str, Any]] | None, raw: bool) -> list[dict[str, Any]]:
    """C5a and C5b on one arm: the shallow net with the report's lr and width on raw (the report's input)
    or standardised pixels (this project's), from the records of ``sweep`` (None: not stored)."""
    pixels = "raw 0–255 pixels (the report's input)" if raw else "standardised pixels (this project's input)"
    runs = [
        r
        for r in records or []
        if r["model"] == "shallow"
        and (r["config"].get("data") or {}).get("normalize", True) is not raw
        and {k: r.get(k) for k in REPORT_SHALLOW} == REPORT_SHALLOW
    ]
    key = "train_eval_acc" if runs and all("train_eval_acc" in r["history"] for r in runs) else "train_acc"
    how = {"train_eval_acc": " (of the end-of-epoch model)", "train_acc": " (running, over the epoch's batches)"}
    setting = f"{pixels}, lr {REPORT_SHALLOW['lr']:g}, {REPORT_SHALLOW['nb_hidden']} hidden, {sweep}"
    claims = [
        "C5a: the shallow net's training accuracy reaches 100 % within about 5 epochs",
        "C5b: … while its accuracy on new pairs stays near 80 %",
    ]
    if not raw:
        claims = ["C5a on standardised pixels (not the report's input)", "C5b on standardised pixels"]
    said = ["100 % by epoch ~5", "about 80 %"]
    measured = [
        f"training accuracy in epoch {EPOCH}{how[key] if runs else ''}, {setting} (%)",
        f"test accuracy after the last epoch, {setting} (%)",
    ]
    if not runs:
        why = f"no stored sweep {sweep}" if records is None else f"{sweep} holds no such shallow run"
        cells, verdicts = [("", "", math.nan)] * 2, [f"not measured: {why}"] * 2
    else:
        histories = [r["history"][key] for r in runs]
        at = [h[EPOCH - 1] for h in histories if len(h) >= EPOCH]
        final = [r["test_acc"] for r in runs]
        full, near = stats.equivalence(at, FULL, math.inf), stats.equivalence(final, 0.8 - NEAR, 0.8 + NEAR)
        verdicts = [
            "supported" if full and full.shown else f"not shown: {_first_full(histories)}",
            "supported" if near and near.shown else f"not shown: the 90 % CI is not within 80 ± {100 * NEAR:g} %",
        ]
        cells = [(*_mean(at), full.p if full else math.nan), (*_mean(final), near.p if near else math.nan)]
    return [_row(*row) for row in zip(claims, said, measured, cells, verdicts, strict=True)]


def claims(sweeps: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per claim: its words, how it was measured, the estimate, its CI, p, p Holm and the verdict.

    Args:
        sweeps: the records of each sweep of :data:`NEEDED`, by name, and of :data:`RAW` when stored.

    Returns:
        Rows with the keys of :data:`COLUMNS` and ``p Holm`` (``estimate`` and the CI as text):
        C1, C2, C3, C4a, C4b, then C5a and C5b on raw pixels (the report's input, which the claim's
        verdict is) and on standardised pixels (this project's input, for comparison).
    """
    ablation, study, scaling = (sweeps[name] for name in NEEDED)
    sizes = by_size(scaling)
    rows = [_sharing(ablation), _stability(sizes), _doubling(sizes), *_auxiliary(ablation)]
    rows += _shallow(RAW, sweeps.get(RAW), raw=True) + _shallow("study", study, raw=False)
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
    siamese at n − twin at 2n with its TOST p within ±1 point, and the Pitman-Morgan sd ratio
    siamese / twin; both p-values also Holm-adjusted over the sizes."""
    rows = []
    for n, s in by_size(records).items():
        means = [" ".join(_mean(list(s[net].values()))) for net in ("twin", "siamese")]
        diffs = [" ".join(_diff(s[test])[:2]).strip() for test in ("gap", "double")]
        same = "" if s["same"] is None else f"{p_text(s['same'].p)} (Holm {p_text(s['same_holm'])})"
        r = s["ratio"]
        sd = (
            ""
            if r is None
            else f"{r.ratio:.2f} {interval(r.ci_low, r.ci_high)}, p {p_text(r.p)} (Holm {p_text(s['ratio_holm'])})"
        )
        rows.append([n, *means, *diffs, same, sd])
    header = ["pairs n", "twin %", "siamese %", "siamese − twin", "siamese(n) − twin(2n)", "TOST p, ±1 point"]
    return markdown(pd.DataFrame(rows, columns=[*header, "sd ratio siamese/twin"]))


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
