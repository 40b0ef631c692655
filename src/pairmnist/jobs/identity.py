"""A job's identity: what it computes, independent of how its command was typed.

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
from typing import Any

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
    "pairmnist.jobs.callbacks.FinalCheckpoint",
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
