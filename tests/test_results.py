"""Results as data: stored records -> RESULTS.md and the README block; fresh vs stored."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from conftest import ROOT, TINY, unpadded
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from test_report import write_job

from pairmnist.analysis import results
from pairmnist.analysis.results import main

NUMBER = r"\d+(?:\.\d+)?"
# 78.5 %, 78–82 %, 90.30 ± 1.62 %, and an accuracy without its unit: 92.49 ± 0.79
PERCENTAGE = rf"{NUMBER}(?:\s?[–±-]\s?{NUMBER})?\s?%|{NUMBER} ± {NUMBER}"


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
    table, agree, unmatched = results.compare(same, stored)
    assert agree and table["within CI"].tolist() == ["yes"] * 3 and not unmatched
    diff = table[["fresh − stored (points)", "95 % CI", "shared seeds"]]
    assert diff.iloc[0].tolist() == ["+0.00", "[+0.00, +0.00]", 5]
    shifted = _sweeps(tmp_path / "shifted", shift=0.05)
    table, agree, _ = results.compare(shifted, stored)
    assert not agree and "NO" in table["within CI"].tolist()
    assert main(["--compare", str(shifted), str(stored)]) == 0
    assert "SOME fresh means lie outside" in capsys.readouterr().out
    # job folders, not stored records, under other folder names; a group nobody stored says which one is nearest
    write_job(tmp_path / "same" / "sweeps" / "new", "siamese_seed0", lr=0.5)
    table, agree, unmatched = results.compare(tmp_path / "same" / "sweeps", stored)
    assert agree and table["within CI"].tolist() == ["yes"] * 3 and len(unmatched) == 1
    assert "nearest study: siamese (differs in " in unmatched[0] and "=0.5, stored 0.001" in unmatched[0]
    assert main(["--compare", str(tmp_path / "same" / "sweeps" / "new"), str(stored)]) == 0  # nothing in common
    assert "no fresh group has a stored group's identity" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="1"):
        main(["--compare", str(tmp_path / "nothing"), str(stored)])
    assert "no finished job" in capsys.readouterr().err


def _hparams(folder):
    events = EventAccumulator(str(folder))
    events.Reload()
    return events.PluginTagToContent("hparams")


def test_the_studys_command_ranks_nothing_and_compares_with_stored_records_by_identity(run_cli, tmp_path):
    """The study at tiny size says nothing about ranking (nobody asked for one); stored under another
    name, its groups are found by identity. (The same study against docs/results, whose sizes
    differ: tests/test_docs.py, with the README's commands.)"""
    sweep, stored = tmp_path / "sweep", tmp_path / "results"
    proc = run_cli("-m", "model=shallow,twin,siamese", "seed=0,1", f"hydra.sweep.dir={sweep}", *TINY)
    assert "No ranking" not in proc.stdout + proc.stderr and (sweep / "summary.md").is_file()
    # TensorBoard's HPARAMS: no job writes the experiment's columns, so TensorBoard takes every key of every job's
    # session (shallow has no share_weights; twin and siamese differ in it)
    sessions = [
        plugin_data_pb2.HParamsPluginData.FromString(content)
        for events in sweep.rglob("events.out.tfevents.*")
        for content in _hparams(events.parent).values()
    ]
    assert sessions and not any(s.HasField("experiment") for s in sessions)
    columns = {name for s in sessions if s.HasField("session_start_info") for name in s.session_start_info.hparams}
    assert {"share_weights", "model_name", "lr", "aux_weight"} <= columns
    results.store(sweep, stored / "renamed", "the tiny study", "python src/run.py -m ...", 1.0)
    results.store(sweep / "siamese_debugtiny_seed0", stored / "one_job", "one of its jobs", "python src/run.py", 1.0)
    table, agree, unmatched = results.compare(sweep, stored)
    assert agree and not unmatched
    assert sorted(table[["sweep", "group", "fresh runs"]].itertuples(index=False, name=None)) == [
        ("one_job", "siamese", 1),
        *(("renamed", model, 2) for model in ("shallow", "siamese", "twin")),
    ]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    """A copy of docs/results and README.md, and every file ``python src/report.py --results`` writes from them."""
    root = tmp_path_factory.mktemp("regenerated")
    shutil.copytree(ROOT / "docs" / "results", root / "docs" / "results")
    shutil.copy(ROOT / "README.md", root / "README.md")
    return root, results.write_results(root / "docs" / "results", root / "README.md")


def test_committed_results_regenerate_byte_for_byte(regenerated):
    root, written = regenerated
    assert {"RESULTS.md", "README.md", results.CLAIMS_FIGURE, "study_curves.png"} <= {p.name for p in written}
    for path in written:  # RESULTS.md, every figure, the README with its block
        relative = path.relative_to(root)
        assert path.read_bytes() == (ROOT / relative).read_bytes(), f"{relative} differs from its records"


def test_no_percentage_typed_by_hand_outside_the_generated_block(regenerated):
    # A percentage in README.md or docs/STUDY.md, outside the generated block, is the original report's (its
    # table in docs/STUDY.md) or a number of the tables generated from the stored records (identities and
    # commands, in backquotes, left out).
    root, _ = regenerated
    generated = (root / "docs" / "RESULTS.md").read_text() + (root / "README.md").read_text()
    tables = re.sub(r"`[^`]*`", "", "\n".join(line for line in generated.splitlines() if line.startswith("|")))
    study = (ROOT / "docs/STUDY.md").read_text()
    reference = study.partition("## The original report's numbers")[2].partition("\n\n|")[2].partition("\n\n")[0]
    known = set(re.findall(NUMBER, tables)) | set(re.findall(NUMBER, reference))
    readme = (ROOT / "README.md").read_text()
    outside = readme.partition(results.README_BEGIN)[0] + readme.partition(results.README_END)[2]
    for name, text in (("README.md", outside), ("docs/STUDY.md", study)):
        for found in re.finditer(PERCENTAGE, text):
            numbers = re.findall(NUMBER, found[0])
            assert set(numbers) <= known, f"{name}: {found[0]!r} is neither the original report's nor in the records"
