"""The repository explains itself: docs/STUDY.md is there, and every reference points at it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import CONF, ROOT

TEXT = ("*.py", "*.yaml", "*.md", "*.toml")


def test_every_study_reference_points_at_docs_study_md():
    assert (ROOT / "docs" / "STUDY.md").is_file()
    files = [f for pattern in TEXT for f in ROOT.rglob(pattern) if not {".venv", "outputs", "data"} & set(f.parts)]
    files = [f for f in files if f.resolve() != Path(__file__).resolve()]
    assert any(f.name == "README.md" for f in files)
    references = {f"{f.relative_to(ROOT)}: {m}" for f in files for m in re.findall(r"[\w./-]*STUDY\.md", f.read_text())}
    assert references and all(r.endswith(": docs/STUDY.md") for r in references), references


def test_every_grid_mark_in_conf_names_the_stored_sweep_that_chose_it():
    # A setting's comment "[grid: <sweep>]" says a grid chose it: its records must be stored in
    # docs/results/<sweep>, made by hparams_search=<sweep>, so anyone can check the choice without re-running.
    marks = [
        (f"{path.relative_to(ROOT)}:{number}", re.search(r"\[grid(?::\s*([\w-]+))?\]", line))
        for path in sorted(CONF.rglob("*.yaml"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.match(r"\s*[^#\s][^#]*#.*\[grid", line)  # a comment on a line that sets a value
    ]
    assert marks  # siamese_plus's choices
    for where, mark in marks:
        assert mark and mark[1], f"{where}: a [grid] mark without its sweep ([grid: <sweep>])"
        stored = ROOT / "docs" / "results" / mark[1]
        assert (stored / "jobs.jsonl").is_file(), f"{where}: no stored sweep docs/results/{mark[1]}"
        command = json.loads((stored / "sweep.json").read_text())["command"].split()
        assert f"hparams_search={mark[1]}" in command, f"{where}: docs/results/{mark[1]} is not that grid's records"
