"""Results as data: stored records -> RESULTS.md and the README block; fresh vs stored."""

from __future__ import annotations

import json
import re
import shutil

from conftest import ROOT, unpadded
from test_report import write_job

from pairmnist.analysis import results
from pairmnist.analysis.results import main


def _sweeps(root, shift=0.0):
    """Two stored sweeps: a study of two models and a later sweep compared against it."""
    for seed in range(5):
        write_job(root / "sweeps" / "study", f"siamese_seed{seed}", seed=seed, test_acc=0.92 + seed / 100 + shift)
        write_job(root / "sweeps" / "study", f"twin_seed{seed}", model="twin", seed=seed, test_acc=0.9 + seed**2 / 1000)
        write_job(root / "sweeps" / "plus", f"siamese_seed{seed}", seed=seed, lr=1e-2, test_acc=0.97 - seed / 500)
    results.store(root / "sweeps" / "study", root / "results" / "study", "the study", "python src/run.py -m x", 61.0, 1)
    results.store(
        root / "sweeps" / "plus", root / "results" / "plus", "more", "python src/run.py -m y", 30.0, 2,
        versus=["siamese=study:siamese"],
    )  # fmt: skip
    return root / "results"


def test_results_markdown_figures_and_readme_block(tmp_path):
    stored = _sweeps(tmp_path)
    assert json.loads((stored / "study" / "sweep.json").read_text())["jobs"] == 10
    assert len((stored / "study" / "jobs.jsonl").read_text().splitlines()) == 10
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{results.README_BEGIN}\nold numbers\n{results.README_END}\noutro\n")
    assert main(["--results", str(stored), "--readme", str(readme)]) == 0
    md = (tmp_path / "RESULTS.md").read_text()
    assert md.index("## study: the study") < md.index("## plus: more")  # the stored order
    assert "| siamese | twin | 5 |" in unpadded(md) and "Against other sweeps" in md
    assert (tmp_path / "figures" / "study_test_acc.png").stat().st_size > 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old numbers" not in text
    block = text.split(results.README_BEGIN)[1].split(results.README_END)[0]
    for number in re.findall(r"[+-]?\d+\.\d\d", block):  # every figure in the block is in RESULTS.md
        assert number in md, number
    before = md
    main(["--results", str(stored), "--readme", str(readme)])
    assert (tmp_path / "RESULTS.md").read_text() == before and readme.read_text() == text  # stable


def test_rows_from_different_cpus_name_them_and_a_difference_across_cpus_says_so(tmp_path):
    stored = _sweeps(tmp_path)
    for name, cpu in (("study", "AMD EPYC"), ("plus", "Intel Xeon")):
        jobs = stored / name / "jobs.jsonl"
        lines = jobs.read_text().splitlines()
        jobs.write_text("".join(json.dumps({**json.loads(line), "cpu": cpu}) + "\n" for line in lines))
    readme = tmp_path / "README.md"
    readme.write_text(f"{results.README_BEGIN}\n{results.README_END}\n")
    assert main(["--results", str(stored), "--readme", str(readme)]) == 0
    md, block = unpadded((tmp_path / "RESULTS.md").read_text()), unpadded(readme.read_text())
    across = [line for text in (md, block) for line in text.splitlines() if "| study: siamese |" in line]
    assert len(across) == 2 and all(line.endswith("| Intel Xeon vs AMD EPYC (across CPUs) |") for line in across)
    within = [line for line in block.splitlines() if line.startswith("| study | siamese | twin |")]
    assert len(within) == 1 and within[0].endswith("| AMD EPYC |")  # one CPU, said per row in a mixed table
    study_only = md.partition("## study")[2].partition("## plus")[0]
    assert "CPU" not in study_only  # a table from one CPU is as before
    assert "| study | 10 | 1.0 min | AMD EPYC |" in md and "| plus | 5 | 0.5 min | Intel Xeon |" in md


def test_compare_a_fresh_reproduction_with_the_stored_one(tmp_path, capsys):
    stored = _sweeps(tmp_path / "stored")
    same = _sweeps(tmp_path / "same")
    table, agree = results.compare(same, stored)
    assert agree and table["within CI"].tolist() == ["yes"] * 3
    diff = table[["fresh − stored (points)", "95 % CI", "shared seeds"]]
    assert diff.iloc[0].tolist() == ["+0.00", "[+0.00, +0.00]", 5]
    shifted = _sweeps(tmp_path / "shifted", shift=0.05)
    table, agree = results.compare(shifted, stored)
    assert not agree and "NO" in table["within CI"].tolist()
    assert main(["--compare", str(shifted), str(stored)]) == 0
    assert "SOME fresh means lie outside" in capsys.readouterr().out


def test_committed_results_regenerate_byte_identical(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs" / "results", docs / "results")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    results.write_results(docs / "results", tmp_path / "README.md")
    assert (docs / "RESULTS.md").read_bytes() == (ROOT / "docs" / "RESULTS.md").read_bytes()
    assert (tmp_path / "README.md").read_bytes() == (ROOT / "README.md").read_bytes()
    md = (ROOT / "docs" / "RESULTS.md").read_text()
    readme = (ROOT / "README.md").read_text()
    for number in re.findall(r"\d+\.\d+ ?%|\d+\.\d\d ± \d+\.\d\d", readme):  # every accuracy figure of the README
        assert number.rstrip(" %") in md, number
