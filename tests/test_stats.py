"""Statistics against values computed independently (published examples and exact hand counts)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import unpadded
from test_report import write_job

from pairmnist.analysis import stats
from pairmnist.analysis.report import write_report

# Student's sleep data (Cushny & Peebles 1905, as analysed by "Student" 1908): extra hours of
# sleep under drug 2 minus drug 1 for 10 patients. R's `t.test(extra ~ group, data = sleep,
# paired = TRUE)` prints t = -4.0621, df = 9, p-value = 0.002833, 95 % CI [-2.4598858, -0.7001142]
# (for drug 1 - drug 2; the signs flip for drug 2 - drug 1).
DRUG1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
DRUG2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_paired_t_matches_the_textbook_sleep_example():
    result = stats.paired(dict(enumerate(DRUG2)), dict(enumerate(DRUG1)))
    assert result.n_seeds == 10 and result.mean_diff == pytest.approx(1.58)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.7001142, 2.4598858), abs=1e-6)
    assert result.p_ttest == pytest.approx(0.002833, abs=1e-6)
    assert (result.wins_a, result.wins_b, result.ties) == (9, 0, 1)


def test_equivalence_is_two_one_sided_tests_and_the_90_percent_interval():
    d = [b - a for a, b in zip(DRUG1, DRUG2, strict=True)]
    # one side alone is the paired t-test's one-sided p: R's two-sided 0.002833, halved
    assert stats.equivalence(d, 0.0, math.inf).p == pytest.approx(0.002833 / 2, abs=1e-6)
    # the 90 % interval: 1.58 ± t(9, 0.95) 1.833113 · s 1.229995 / sqrt(10) = [0.867, 2.293] (tables)
    inside = stats.equivalence(d, 0.86, 2.30)
    assert (inside.ci_low, inside.ci_high) == pytest.approx((0.86700, 2.29300), abs=1e-4)
    assert inside.shown and inside.p < 0.05  # the 90 % interval inside the margin: equivalence shown
    for low, high in ((0.88, 2.30), (0.86, 2.28)):  # one end outside: not shown, however small the gap
        outside = stats.equivalence(d, low, high)
        assert not outside.shown and outside.p > 0.05
    same = stats.equivalence([0.02, 0.02, 0.02], 0.01, 0.03)  # no spread: the common value decides
    assert same.shown and math.isnan(same.p) and not stats.equivalence([0.02] * 3, 0.03, 0.05).shown
    assert stats.equivalence([0.1], 0, 1) is None


def test_wilcoxon_matches_exact_hand_counts():
    # n = 5 differences, no ties: 2**5 equally likely sign patterns under H0.
    all_positive = stats.paired({i: d for i, d in enumerate([1, 2, 3, 4, 5])}, dict.fromkeys(range(5), 0))
    assert all_positive.p_wilcoxon == pytest.approx(2 / 32)  # W- = 0: one pattern each tail
    one_negative = stats.paired({i: d for i, d in enumerate([-1, 2, 3, 4, 5])}, dict.fromkeys(range(5), 0))
    assert one_negative.p_wilcoxon == pytest.approx(2 * 2 / 32)  # W- <= 1: two patterns each tail


def test_t_interval_and_binomial_noise():
    low, high = stats.t_interval([0.90, 0.92, 0.94])
    half = 4.302653 * 0.02 / math.sqrt(3)  # t(2, 0.975) from tables, sample std 0.02
    assert (low, high) == pytest.approx((0.92 - half, 0.92 + half))
    assert all(math.isnan(v) for v in stats.t_interval([0.9]))
    assert stats.binomial_se(0.99, 1000) == pytest.approx(0.0031464, abs=1e-7)
    with pytest.raises(ValueError, match="n >= 1"):
        stats.binomial_se(0.5, 0)


def test_holm_adjustment():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    adjusted = stats.holm([0.01, math.nan])
    assert adjusted[0] == pytest.approx(0.01) and math.isnan(adjusted[1])  # NaN neither counts nor changes


def test_pairing_uses_shared_seeds_only_and_fewer_than_two_is_not_comparable():
    a = {0: 0.90, 1: 0.91, 2: 0.95, 3: 0.97}
    b = {1: 0.90, 2: 0.90, 3: 0.90, 4: 0.10}
    result = stats.paired(a, b)
    assert result.seeds == (1, 2, 3) and result.n_seeds == 3
    assert result.mean_diff == pytest.approx((0.01 + 0.05 + 0.07) / 3)
    assert stats.paired({0: 0.9, 1: 0.9}, {1: 0.8, 2: 0.8}) is None


def test_study_comparisons_csv_and_markdown(tmp_path):
    accs = {"shallow": 0.80, "twin": 0.90, "siamese": 0.92}
    for model, base in accs.items():
        for seed in range(10):
            acc = base + (seed % 3) / 100 + (seed * {"shallow": 3, "twin": 5, "siamese": 2}[model] % 7) / 1000
            write_job(tmp_path, f"{model}_seed{seed}", model=model, seed=seed, test_acc=acc, val_acc=acc,
                      aux_weight=0 if model == "shallow" else 0.5)  # fmt: skip
    report = write_report(tmp_path)
    table = pd.read_csv(tmp_path / "comparisons.csv")
    assert list(zip(table.a, table.b, strict=True)) == [
        ("siamese", "twin"),
        ("siamese", "shallow"),
        ("twin", "shallow"),
    ]
    means = report.summary.set_index("model")["test_acc_mean"]
    for row in table.itertuples():
        assert row.n_seeds == 10 and row.diff_points == pytest.approx(100 * (means[row.a] - means[row.b]))
        assert row.ci_low_points < row.diff_points < row.ci_high_points
        assert 0 <= row.p_ttest <= row.p_ttest_holm <= 1 and 0 <= row.p_wilcoxon <= 1
    assert table.wins_a.tolist() == [10, 10, 10] and table.wins_b.tolist() == [0, 0, 0]
    summary = pd.read_csv(tmp_path / "summary.csv").set_index("model")
    assert (summary.test_acc_ci_low < summary.test_acc_mean).all() and (
        summary.test_acc_mean < summary.test_acc_ci_high
    ).all()
    assert summary.loc["twin", "test_noise"] == pytest.approx(math.sqrt(means["twin"] * (1 - means["twin"]) / 1000))
    md = unpadded(report.markdown)
    assert "## Paired comparisons of test accuracy" in md and "| siamese | twin | 10 | +" in md
    assert "test-set noise" in md and "95 % CI" in md


def test_groups_without_two_shared_seeds_are_listed_as_not_comparable(tmp_path):
    write_job(tmp_path, "a0", seed=0, lr=1e-3)
    write_job(tmp_path, "a1", seed=1, lr=1e-3)
    write_job(tmp_path, "b2", seed=2, lr=1e-2)
    write_job(tmp_path, "b3", seed=3, lr=1e-2)
    report = write_report(tmp_path)
    (row,) = report.comparisons.to_dict("records")
    assert row["n_seeds"] == 0 and row["note"].startswith("not comparable") and pd.isna(row["diff_points"])
    assert "not comparable: fewer than 2 shared seeds" in report.markdown


def test_ranking_marks_settings_the_seeds_cannot_tell_from_the_winner(tmp_path):
    for seed in (1000, 1001, 1002):
        noise = (-1) ** seed * 0.004
        write_job(tmp_path, f"a{seed}", seed=seed, lr=1e-2, val_acc=0.95 + noise)
        write_job(tmp_path, f"b{seed}", seed=seed, lr=1e-3, val_acc=0.949 - noise)  # a coin toss
        write_job(tmp_path, f"c{seed}", seed=seed, lr=1e-4, val_acc=0.80 + seed / 1e5)  # clearly lower
    report = write_report(tmp_path)
    ranking = unpadded((tmp_path / "ranking.md").read_text())
    lines = {line.split("|")[2].strip(): line for line in ranking.splitlines() if line.startswith("| 1 |")}
    assert "winner" in lines["0.01"]
    rows = [line for line in ranking.splitlines() if line.startswith("| ")][1:]
    assert "not distinguishable" in rows[1] and "| lower (" in rows[2]
    # a grid leads with the validation ranking, in summary.md and on the console
    assert report.markdown.startswith("# Hyperparameter ranking")


def test_pitman_morgan_matches_r():
    # R 4.2.2: p = cor.test(a + b, a - b)$p.value; the interval's ends solve, with uniroot,
    # cor.test(a + sqrt(g) * b, a - sqrt(g) * b)$p.value == 0.05 (the same test at ratio g).
    a = [0.921, 0.913, 0.934, 0.925, 0.918, 0.929, 0.911, 0.936, 0.924, 0.917]
    b = [0.903, 0.889, 0.925, 0.915, 0.893, 0.918, 0.879, 0.933, 0.906, 0.898]
    result = stats.pitman_morgan(dict(enumerate(a)), dict(enumerate(b)))
    assert result.n_seeds == 10
    assert result.p == pytest.approx(2.17908551954119e-06, rel=1e-9)
    assert result.ratio == pytest.approx(0.498395421366089, rel=1e-12)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.431251310621193, 0.575993602618569), rel=1e-9)
    swapped = stats.pitman_morgan(dict(enumerate(b)), dict(enumerate(a)))
    assert swapped.ratio == pytest.approx(1 / result.ratio) and swapped.p == pytest.approx(result.p)
    assert stats.pitman_morgan({0: 0.9, 1: 0.8}, {0: 0.7, 1: 0.9}) is None  # fewer than 3 seeds: no test


def test_holm_skips_nan_wherever_it_sits():
    assert stats.holm([0.04, math.nan, 0.01]) == pytest.approx([0.04, math.nan, 0.02], nan_ok=True)
