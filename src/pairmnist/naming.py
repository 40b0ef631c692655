"""Readable job folder names for multiruns, registered as the OmegaConf resolver ``job_name``."""

from __future__ import annotations

import re
from collections.abc import Iterable

from omegaconf import OmegaConf

# Overrides the name already shows, or that only select other overrides (exact keys) ...
_SKIP_KEYS = ("model", "seed", "resume", "experiment", "hparams_search")
# ... and groups that do not change what a job computes (the key and everything below it).
_SKIP_GROUPS = ("paths", "hydra", "callbacks", "logger")


def job_name(model: str, seed: int, overrides: Iterable[str]) -> str:
    """``<model>[_<key><value>...]_seed<seed>`` from a job's command-line overrides.

    Each override other than ``model``, ``seed``, deletions (``~key``) and the bookkeeping
    groups (paths, callbacks, logger, hydra, ...) adds
    ``<last key part><value>``, e.g. ``model.lr=1e-3`` -> ``lr1e-3``, so that the jobs of a
    grid get distinct folders while the study's are just ``siamese_seed3``.
    """
    parts = [str(model)]
    for override in overrides:
        key, _, value = str(override).lstrip("+").partition("=")
        if key.startswith("~") or key in _SKIP_KEYS or re.split(r"[./]", key)[0] in _SKIP_GROUPS:
            continue
        parts.append(re.sub(r"[^\w.+\-]+", "-", f"{key.split('.')[-1]}{value}"))
    parts.append(f"seed{seed}")
    return "_".join(parts)


def register() -> None:
    """Register ``${job_name:model,seed,overrides}`` (idempotent)."""
    if not OmegaConf.has_resolver("job_name"):
        OmegaConf.register_new_resolver("job_name", job_name)
