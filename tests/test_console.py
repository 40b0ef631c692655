"""What a user sees: the console of a run and of a multirun, and ``--help``."""

from __future__ import annotations

import re

# Tiny data with the default console (debug=tiny turns the progress display off); 10 batches an epoch.
SMALL = ["data.n_pairs=60", "data.n_val_pairs=40", "data.batch_size=6"]


def test_a_run_prints_its_own_lines_and_none_of_lightnings_notices(run_cli, tmp_path):
    proc = run_cli(*SMALL, "trainer.max_epochs=6", f"hydra.run.dir={tmp_path}/run")
    out = proc.stdout + proc.stderr
    for notice in ("litlogger", "TPU available", "GPU available", "weights_only", "Total FLOPs", "Trainable params"):
        assert notice.lower() not in out.lower(), out
    assert re.search(r"training siamese, seed 0, 24,936 parameters, max_epochs 6, on \w+, in .*/run\n", out), out
    shown = re.findall(r"epoch (\d+)/6: train/acc [\d.]+, train/loss [\d.]+, val/acc [\d.]+, val/loss [\d.]+\n", out)
    assert shown == ["5", "6"], out  # every 5 epochs, and the last
    assert re.search(
        r"run: test_acc [\d.]+, val_acc [\d.]+, epochs 6, fit [\d.]+ s\nmetrics: .*/run/metrics.json\n$", out
    )


def test_a_multirun_log_file_stays_short(run_cli, tmp_path):
    """3 jobs of 25 epochs (as in the study) in at most 60 lines, no bar redraws.

    A job prints 8 lines (Hydra's launch line, the start line, 5 epoch lines, the result)
    and the report about 10. 60 lines for 3 jobs, report included, is at most 20 per job:
    the 30-job study's log stays far under 1,000 lines (its report has 2 more rows).
    """
    proc = run_cli("-m", "model=shallow", "seed=0,1,2", *SMALL, f"hydra.sweep.dir={tmp_path}/sweep")
    out = proc.stdout + proc.stderr
    assert "\r" not in out and out.count("epochs 25, fit") == 3
    assert len(out.splitlines()) <= 60, out


def test_help_is_the_projects_own(run_cli):
    help_text = run_cli("--help").stdout
    assert "'seed=range(10)'" in help_text and "resume=true hydra.sweep.dir=" in help_text
    assert "hparams_search=deep_grid model=siamese" in help_text and "src/evaluate.py" in help_text
    assert "model: shallow, siamese, siamese_plus, twin" in help_text  # the config groups, listed by Hydra
    assert "Powered by Hydra" not in help_text
