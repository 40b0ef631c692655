"""The original report's claims, tested on records: rows, estimates, intervals, verdicts."""

from __future__ import annotations

import shutil

from conftest import ROOT

from pairmnist.analysis import claims, results

NOISE = [0.004, -0.003, 0.001, -0.005, 0.002, 0.0, 0.003, -0.002]  # per seed, shared by every net (paired)


def record(model: str, seed: int, acc: float, **keys) -> dict:
    history = {"train_acc": [0.6, 0.8, 0.9, 0.95, 1.0], "val_acc": [0.7, 0.75, 0.8, 0.8, 0.8]}
    return {"model": model, "seed": seed, "test_acc": round(acc + NOISE[seed], 6), "history": history, **keys}


def synthetic() -> dict[str, list[dict]]:
    """Siamese 2 points above twin; the auxiliary loss worth 7; siamese on n equal to twin on 2n."""
    seeds = range(len(NOISE))
    ablation = [
        record(
            m,
            s,
            0.83 + (0.02 if m == "siamese" else 0) + 0.07 * (w > 0) + 0.001 * (s % 3 - 1) * (m == "twin"),
            aux_weight=w,
        )
        for m in ("twin", "siamese")
        for w in (0, 0.5)
        for s in seeds
    ]
    study = [record("shallow", s, 0.80) for s in seeds]
    twin_at = {250: 0.78, 500: 0.84, 1000: 0.90, 2000: 0.94}
    sia_at = {250: 0.84, 500: 0.90, 1000: 0.94, 2000: 0.96}  # siamese(n) = twin(2n)
    scaling = [record("twin", s, twin_at[n] + 0.002 * (s % 3 - 1), n_pairs=n) for n in twin_at for s in seeds]
    scaling += [record("siamese", s, sia_at[n], n_pairs=n) for n in sia_at for s in seeds]
    return {"ablation": ablation, "study": study, "data_scaling": scaling}


def test_every_claim_gets_a_row_with_an_estimate_an_interval_and_a_verdict():
    rows = {r["claim"].split(":")[0]: r for r in claims.claims(synthetic())}
    assert list(rows) == ["C1", "C2", "C3", "C4a", "C4b", "C5a", "C5b"]
    for row in rows.values():
        assert row["estimate"] and row["95 % CI"].startswith("[") and row["verdict"]
    assert rows["C1"]["verdict"] == "supported" and rows["C1"]["estimate"].startswith("+2.")
    assert rows["C3"]["verdict"].startswith("supported")  # the gaps' CIs hold 0 at every size
    assert rows["C4a"]["verdict"] == "supported" and rows["C4b"]["verdict"] == "supported"
    assert rows["C5a"]["verdict"] == "supported" and rows["C5b"]["verdict"] == "supported"
    tested = [r for r in rows.values() if r["p"] == r["p"]]  # the rows with a p-value are Holm-adjusted
    assert all(r["p Holm"] >= r["p"] for r in tested) and len(tested) >= 4


def test_the_claims_figure_regenerates_byte_for_byte(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs" / "results", docs / "results")
    results.write_results(docs / "results")
    name = results.CLAIMS_FIGURE
    assert (docs / "figures" / name).read_bytes() == (ROOT / "docs" / "figures" / name).read_bytes()
