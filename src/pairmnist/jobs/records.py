"""A job folder's result files: ``metrics.json`` (success) and ``error.txt`` (failure).

Shared by the job (:mod:`pairmnist.jobs.job`, which writes them) and the report
(:mod:`pairmnist.analysis.report`, which reads them without importing any training code).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

METRICS_FILE, ERROR_FILE = "metrics.json", "error.txt"
METRICS_KEYS = (
    "model",
    "seed",
    "aux_weight",
    "lr",
    "nb_hidden",
    "n_params",
    "epochs",
    "test_acc",
    "test_digit_acc",
    "val_acc",
    "fit_seconds",
    "history",
    "config",
)


def fraction(acc: float | None) -> float | None:
    """An accuracy as metrics.json stores it: a float32 result rounded to 6 decimals (0.915, not 0.9150000214576721)."""
    return None if acc is None else round(acc, 6)


class JobNotDone(Exception):
    """A job folder without a usable result; the message says why (one line)."""


def load_record(job_dir: str | Path) -> dict[str, Any]:
    """The ``metrics.json`` record of a job that finished without error.

    Raises:
        JobNotDone: ``error.txt`` exists (its first line is the reason), or ``metrics.json``
            is missing, unreadable, or lacks one of :data:`METRICS_KEYS`.
    """
    job_dir = Path(job_dir)
    error = job_dir / ERROR_FILE
    if error.exists():
        first = error.read_text(errors="replace").strip().splitlines()
        raise JobNotDone(f"failed: {first[0] if first else 'no message'}")
    try:
        record = json.loads((job_dir / METRICS_FILE).read_text())
    except FileNotFoundError:
        raise JobNotDone(f"no {METRICS_FILE} (not run, interrupted or still running)") from None
    except (OSError, ValueError) as e:
        raise JobNotDone(f"unreadable {METRICS_FILE}: {e}") from None
    missing = [k for k in METRICS_KEYS if k not in record]
    if missing:
        raise JobNotDone(f"incomplete {METRICS_FILE}: no {', '.join(missing)}")
    return record
