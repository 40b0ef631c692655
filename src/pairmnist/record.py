"""One job's record: what ``metrics.json`` holds, how it is written and read, and the job's identity.

Training writes it (:mod:`pairmnist.train`); the analysis reads it
(:mod:`pairmnist.analysis.report`). Plain Python on plain data (dicts from ``metrics.json`` or
``OmegaConf.to_container``): no torch, Lightning, Hydra or OmegaConf, so a report runs anywhere.

A job folder holds ``metrics.json`` (success; its fields: :class:`Record`) or ``error.txt``
(failure: the message on its first line, then the traceback).

The identity of a job is its resolved study config (``model``, ``data``, ``trainer``, and the
Lightning callbacks that can change the numbers, such as early stopping) without the seed,
without the trainer keys and callbacks that only change what is printed or saved
(:data:`DISPLAY_ONLY_TRAINER_KEYS`, :data:`DISPLAY_ONLY_CALLBACKS`), in a canonical form
(:func:`canonical`). Two jobs with the same identity and the same seed compute the same result
(bitwise on one CPU model and thread count). The report groups by identity, resume and
de-duplication match on (identity, seed), and :func:`identity_id` is a short stable name for it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypedDict

from pairmnist.atomic import write_json, write_text

METRICS_FILE, ERROR_FILE = "metrics.json", "error.txt"


class Record(TypedDict):
    """What a finished job's ``metrics.json`` holds: this definition is its schema.

    Accuracies are fractions in [0, 1] (:func:`fraction`); losses are means over the pairs.

    Attributes:
        model: the ``model=`` choice (``siamese``, ...), or None for a config composed without it.
        seed: the seed of the pairs, the batch order and the weights.
        identity: :func:`identity_id` of ``config``.
        lr, aux_weight, nb_hidden, head: the study's hyperparameters as trained
            (:func:`trained_hyperparameters`; None where the net has no such argument).
        n_params: the net's parameters.
        n_pairs, n_test_pairs: training and test pairs.
        epochs: training epochs run.
        test_acc, test_loss, test_digit_acc: on the test pairs after the last epoch (digit
            accuracy: None for a net without digit outputs).
        val_acc, val_loss, val_digit_acc: the last validation's (None when none ran).
        val_epoch: the epoch the ``val_*`` figures come from (None when no epoch was validated).
        fit_seconds: wall-clock seconds of ``Trainer.fit``.
        history: ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``: one value per epoch that ran them.
        device, cpu, threads, torch, python: where and with what it ran (numbers are bitwise
            the same for one CPU model and thread count).
        finished: when, ISO 8601 in UTC.
        overrides: the command line's overrides of this job (Hydra's ``overrides.task``).
        config: the resolved study config (``pairmnist.train.study_config``): ``seed``,
            ``model``, ``data``, ``trainer`` and the callbacks that can change the numbers.
    """

    model: str | None
    seed: int
    identity: str
    lr: float | None
    aux_weight: float
    nb_hidden: int | None
    head: str | None
    n_params: int
    n_pairs: int
    n_test_pairs: int
    epochs: int
    test_acc: float
    test_loss: float
    test_digit_acc: float | None
    val_acc: float | None
    val_loss: float | None
    val_digit_acc: float | None
    val_epoch: int | None
    fit_seconds: float
    history: dict[str, list[float]]
    device: str
    cpu: str
    threads: int
    torch: str
    python: str
    finished: str
    overrides: list[str]
    config: dict[str, Any]


def fraction(acc: float | None) -> float | None:
    """An accuracy as metrics.json stores it: a float32 result rounded to 6 decimals (0.915, not 0.9150000214576721)."""
    return None if acc is None else round(acc, 6)


class JobNotDone(Exception):
    """A job folder without a usable result; the message says why (one line)."""


def load_record(job_dir: str | Path) -> Record:
    """The ``metrics.json`` record of a job that finished without error.

    Raises:
        JobNotDone: ``error.txt`` exists (its first line is the reason), or ``metrics.json``
            is missing, unreadable, or lacks a field of :class:`Record`.
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
    missing = [k for k in Record.__annotations__ if k not in record]
    if missing:
        raise JobNotDone(f"incomplete {METRICS_FILE}: no {', '.join(missing)}")
    return record


def write_record(job_dir: str | Path, record: Record) -> None:
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
    """The study's hyperparameters as the LightningModule and net received them (the resolved ``model`` node).

    Returns:
        ``{"lr", "aux_weight", "nb_hidden", "head"}``; None where the optimizer or the net has
        no such argument (``head`` of the shallow net).
    """
    model = config.get("model") or {}
    return {
        "lr": (model.get("optimizer") or {}).get("lr"),
        "aux_weight": model.get("aux_weight", 0),
        "nb_hidden": (model.get("net") or {}).get("nb_hidden"),
        "head": (model.get("net") or {}).get("head"),
    }


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level of dotted keys: ``{"model": {"net": {"head": "learned"}}}`` ->
    ``{"model.net.head": "learned"}`` (an empty dict is a value)."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def short_names(keys: Iterable[str], taken: Iterable[str] = ()) -> dict[str, str]:
    """Each dotted key's shortest name: its fewest last parts that no other key ends with
    (``model.optimizer.lr`` -> ``lr``; ``model.optimizer._target_`` -> ``optimizer._target_``
    beside ``model.net._target_``), and that is none of ``taken``.

    The one naming of config keys for people: report columns, labels, best.yaml, folder names,
    TensorBoard's HPARAMS.
    """
    keys, taken = list(keys), set(taken)
    names = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            name = ".".join(parts[-n:])
            if name not in taken and sum(f".{k}".endswith(f".{name}") for k in keys) == 1:
                break
        names[key] = name
    return names


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
