"""One job's record: what ``metrics.json`` holds, how it is written and read, and the job's identity.

Training writes it (:mod:`pairmnist.train`); the analysis reads it
(:mod:`pairmnist.analysis.report`). Plain Python on plain data (dicts from ``metrics.json`` or
``OmegaConf.to_container``): no torch, Lightning, Hydra or OmegaConf, so a report runs anywhere.

A job folder holds ``metrics.json`` (success) or ``error.txt`` (failure: the message on its
first line, then the traceback).

Identity.A job's identity: what it computes, independent of how its command was typed.

The identity of a job is its resolved study config (``model``, ``data``, ``trainer``, and the
Lightning callbacks that can change the numbers, such as early stopping) without the seed,
without the trainer keys and callbacks that only change what is printed or saved
(:data:`DISPLAY_ONLY_TRAINER_KEYS`, :data:`DISPLAY_ONLY_CALLBACKS`), in a canonical form
(:func:`canonical`). Two jobs with the same identity and the same seed compute the same result
(bitwise on one CPU model and thread count). The report groups by identity, resume and
de-duplication match on (identity, seed), and :func:`identity_id` is a short stable name for it.

Plain Python on plain data (dicts from ``metrics.json`` or ``OmegaConf.to_container``), so
the analysis can use it without torch, Lightning or OmegaConf.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pairmnist.atomic import write_json, write_text

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


def write_record(job_dir: str | Path, record: dict[str, Any]) -> None:
    """Write ``record`` as ``<job_dir>/metrics.json``, atomically."""
    write_json(Path(job_dir) / METRICS_FILE, record)


def write_error(job_dir: str | Path, message: str, details: str = "") -> None:
    """Write ``<job_dir>/error.txt``, atomically: ``message`` (one line) first, then ``details`` (a traceback).

    Raises:
        OSError: the file cannot be written (a full disk, say).
    """
    write_text(Path(job_dir) / ERROR_FILE, f"{message}\n\n{details}")


STUDY_KEYS = ("model", "data", "trainer")  # with "seed", what determines a job's result
# Trainer arguments that change what is printed, logged or saved, never the numbers.
DISPLAY_ONLY_TRAINER_KEYS = (
    "enable_model_summary",
    "enable_progress_bar",
    "enable_checkpointing",
    "log_every_n_steps",
    "default_root_dir",
)
# Callbacks (by _target_) that print, log or save, and never change what is trained.
DISPLAY_ONLY_CALLBACKS = (
    "pairmnist.train.FinalCheckpoint",
    "pairmnist.train.progress_bar",
    "pairmnist.jobs.callbacks.FinalCheckpoint",  # the same, in records made before pairmnist.train
    "pairmnist.jobs.callbacks.progress_bar",
    "pytorch_lightning.callbacks.ModelCheckpoint",
    "pytorch_lightning.callbacks.LearningRateMonitor",
    "pytorch_lightning.callbacks.TQDMProgressBar",
    "pytorch_lightning.callbacks.RichProgressBar",
    "pytorch_lightning.callbacks.DeviceStatsMonitor",
)
ID_LENGTH = 10  # hex digits of SHA-256 kept: 16**10 ~ 1e12 names, collisions negligible for any sweep


def _normalise(value: Any) -> Any:
    """Numbers that are whole (``0.0``, ``1.0``) become ints, recursively; bools stay bools.

    So ``model.aux_weight=0`` and ``model.aux_weight=0.0`` (the same computation) get one identity.
    """
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def identity(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a job's resolved study config that decides its result, seed excluded.

    Args:
        config: the record's ``config`` (``{"seed", "model", "data", "trainer"}`` and, from
            records made since callbacks count, ``"callbacks"``; resolved, plain data);
            missing parts count as empty.

    Returns:
        ``{"model": ..., "data": ..., "trainer": ...}`` with whole numbers as ints and the
        trainer's display-only keys removed, plus ``"callbacks"`` when a callback that can
        change the numbers is configured (so the identity of a job without one is the same
        as before callbacks counted).
    """
    study = {k: _normalise(config.get(k) or {}) for k in STUDY_KEYS}
    study["trainer"] = {k: v for k, v in study["trainer"].items() if k not in DISPLAY_ONLY_TRAINER_KEYS}
    callbacks = {
        name: _normalise(c)
        for name, c in (config.get("callbacks") or {}).items()
        if isinstance(c, dict) and c.get("_target_") not in DISPLAY_ONLY_CALLBACKS
    }
    if callbacks:
        study["callbacks"] = callbacks
    return study


def canonical(config: dict[str, Any]) -> str:
    """:func:`identity` as canonical JSON: sorted keys, no spaces, UTF-8 characters kept."""
    return json.dumps(identity(config), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def identity_id(config: dict[str, Any]) -> str:
    """The first :data:`ID_LENGTH` hex digits of the SHA-256 of :func:`canonical` (e.g. ``3f9a1c07be``)."""
    return hashlib.sha256(canonical(config).encode()).hexdigest()[:ID_LENGTH]


def trained_hyperparameters(config: dict[str, Any]) -> dict[str, Any]:
    """The study's hyperparameters as the LightningModule and net received them.

    Read from the resolved ``model.module`` node (what was instantiated), never from the
    ``model.*`` knobs, which an override of ``model.module.*`` can leave behind.

    Returns:
        ``{"lr", "aux_weight", "nb_hidden", "head"}``; None where the net has no such argument
        (``head`` and ``nb_hidden`` of a net without them).
    """
    module = (config.get("model") or {}).get("module") or {}
    net = module.get("net") or {}
    optimizer = module.get("optimizer") or {}
    return {
        "lr": optimizer.get("lr", module.get("lr")),
        "aux_weight": module.get("aux_weight", 0),
        "nb_hidden": net.get("nb_hidden"),
        "head": net.get("head"),
    }


# Keys a sweep sets for all its jobs, or that only pick other overrides (never a job's setting).
SWEEP_KEYS = ("seed", "tuning_seeds", "resume", "hparams_search", "experiment")
# Groups that do not change what a job computes (the key and everything below it).
BOOKKEEPING_GROUPS = ("paths", "hydra", "callbacks", "logger")


def settings(overrides: Iterable[str]) -> list[tuple[str, str]]:
    """``(key, value)`` of the overrides that change what a job computes, in their order.

    Leaves out the seed and sweep presets (:data:`SWEEP_KEYS`), :data:`BOOKKEEPING_GROUPS`
    and deletions (``~key``); a leading ``+`` is dropped from the key.
    """
    kept = []
    for override in overrides:
        key, _, value = str(override).lstrip("+").partition("=")
        if key.startswith("~") or key in SWEEP_KEYS or re.split(r"[./]", key)[0] in BOOKKEEPING_GROUPS:
            continue
        kept.append((key, value))
    return kept
