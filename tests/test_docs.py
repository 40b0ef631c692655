"""The repository explains itself: docs/STUDY.md is there, and every reference points at it."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT

TEXT = ("*.py", "*.yaml", "*.md", "*.toml")


def test_every_study_reference_points_at_docs_study_md():
    assert (ROOT / "docs" / "STUDY.md").is_file()
    files = [f for pattern in TEXT for f in ROOT.rglob(pattern) if not {".venv", "outputs", "data"} & set(f.parts)]
    files = [f for f in files if f.resolve() != Path(__file__).resolve()]
    assert any(f.name == "README.md" for f in files)
    references = {f"{f.relative_to(ROOT)}: {m}" for f in files for m in re.findall(r"[\w./-]*STUDY\.md", f.read_text())}
    assert references and all(r.endswith(": docs/STUDY.md") for r in references), references
