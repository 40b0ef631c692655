"""The repository explains itself: a short README that opens with the answer, whose "Extend it"
commands run, a manual in docs/ whose paths exist, and docs/STUDY.md as the one study reference."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
from conftest import CLI_ENV, CONF, ROOT, TINY

from pairmnist.analysis import results

TEXT = ("*.py", "*.yaml", "*.md", "*.toml")
README = ROOT / "README.md"
MANUAL = sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "RESULTS.md")  # RESULTS.md is generated
USER_FILES = {"conf/model/my_model.yaml"}  # written by the reader of "Extend it"
# The test's changes to the "Extend it" commands, besides debug=tiny: fewer seeds, and presets
# made short by keys given on the command line (which replace the preset's values).
SEEDS = {"seed=range(10)": "seed=0,1", "seed=range(1000,1003)": "seed=1000,1001"}
SHORTER = {
    "hparams_search=deep_grid": [
        "model.optimizer.lr=1e-3",
        "model.net.nb_hidden=100",
        "model.aux_weight=0,0.5",
        "seed=1000",
    ],
    "hparams_search=deep_optuna": ["hydra.sweeper.n_trials=2", "tuning_seeds=[1000]"],
}


def section(text: str, heading: str) -> str:
    """The text of the ``## <heading>...`` section (its heading starts with ``heading``), up to the next one."""
    return re.search(rf"^## {re.escape(heading)}.*?(?=^## |\Z)", text, re.M | re.S).group(0)


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


def test_the_readme_is_short_and_opens_with_the_answer():
    text = README.read_text()
    lines = text.splitlines()
    assert len(lines) <= 300
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[:3] == ["## Set-up", "## Run the study", "## The answer"] and headings[3].startswith("## Extend")
    study_table = lines.index(next(line for line in lines if line.startswith("| model ") and "95 % CI" in line))
    assert study_table + 1 < 80 and lines[study_table - 2].startswith("The study (")
    extend = section(text, "Extend")
    for task in ("model.net.share_weights=true,false", "```yaml", "model.scheduler=", "hparams_search=", "--compare"):
        assert task in extend, task
    # the headline's numbers are quoted from the generated block (or are the original report's own)
    intro, block = text.partition("## Set-up")[0], text.split(results.README_BEGIN)[1].split(results.README_END)[0]
    numbers = re.findall(r"[+-]?\d+\.\d+", intro)
    assert numbers and all(n in block or n in results.ORIGINAL_REPORT.values() for n in numbers), numbers


def test_every_path_and_link_of_the_readme_and_the_manual_exists():
    for doc in [README, *MANUAL]:
        text = doc.read_text()
        paths = set(re.findall(r"(?<![\w/.<-])((?:src|conf|docs|tests|scripts|benchmarks)/[\w./-]*\w)", text))
        missing = [p for p in paths - USER_FILES if not (ROOT / p).exists()]
        links = [link.partition("#")[0] for link in re.findall(r"\]\(([^)#][^)]*)\)", text) if "://" not in link]
        missing += [link for link in links if not (doc.parent / link).exists()]
        for module in set(re.findall(r"\bpairmnist(?:\.\w+)+", text)):  # a module, or a module's attribute
            parts = module.split(".")
            found = [
                i for i in range(1, len(parts) + 1) if (ROOT / "src" / Path(*parts[:i])).with_suffix(".py").is_file()
            ]
            found += [
                i for i in range(1, len(parts) + 1) if (ROOT / "src" / Path(*parts[:i]) / "__init__.py").is_file()
            ]
            missing += [module] if max(found) < len(parts) - 1 else []
        assert not missing, f"{doc.relative_to(ROOT)}: {missing}"
    assert {p.stem for p in MANUAL} >= {
        "identity",
        "statistics",
        "failures",
        "speed",
        "cluster",
        "data",
        "tests",
        "layout",
    }


def test_the_extend_sections_commands_run(tmp_path, data_dir):
    """Every command of the README's "Extend it" runs, as written but for debug=tiny, fewer seeds
    (:data:`SEEDS`) and shorter presets (:data:`SHORTER`), from a folder holding the section's
    mynets.py, with its model YAML on Hydra's search path (where conf/model/ of a clone would hold it)."""
    blocks = re.findall(r"```(\w+)\n(.*?)```", section(README.read_text(), "Extend"), re.S)
    (module,) = [text for lang, text in blocks if lang == "python"]
    (model_yaml,) = [text for lang, text in blocks if lang == "yaml"]
    (tmp_path / re.match(r"# (\w+\.py)\n", module).group(1)).write_text(module)
    yaml_path = tmp_path / re.match(r"# (conf/model/\w+\.yaml)", model_yaml).group(1)
    yaml_path.parent.mkdir(parents=True)
    yaml_path.write_text(model_yaml)
    commands = [line.partition("  #")[0] for lang, text in blocks if lang == "bash" for line in text.splitlines()]
    assert len(commands) >= 5 and all(command.startswith("python src/") for command in commands)
    sweep, printed = None, {}
    for i, command in enumerate(commands):
        script, *args = [SEEDS.get(word, word) for word in shlex.split(command)[1:]]
        if script == "src/run.py":
            folder = tmp_path / f"out{i}"
            args += [*TINY, *(x for preset, more in SHORTER.items() if preset in args for x in more)]
            args += [f"paths.data_dir={data_dir}", f"hydra.searchpath=[file://{tmp_path / 'conf'}]"]
            args += [f"hydra.{'sweep' if '-m' in args else 'run'}.dir={folder}"]
            sweep = folder if "-m" in args else sweep
        else:  # the repository's paths, and the sweep the block's previous command made
            args = [str(sweep) if "<timestamp>" in a else str(ROOT / a) if (ROOT / a).exists() else a for a in args]
        proc = subprocess.run(
            [sys.executable, str(ROOT / script), *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=CLI_ENV,
            timeout=600,
        )
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        printed[command] = proc.stdout
    shared_and_not = pd.read_csv(tmp_path / "out0" / "summary.csv")  # the first command: your net, shared and not
    assert len(shared_and_not) == 2 and shared_and_not["n_params"].nunique() == 2
    (compared,) = [out for command, out in printed.items() if "--compare" in command]
    assert "no stored group has its identity; nearest study:" in compared  # tiny runs: other sizes than stored
    assert not any("No ranking" in out for out in printed.values())  # no grid or search has evaluation seeds
