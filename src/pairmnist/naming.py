"""Readable job folder names for multiruns, registered as the OmegaConf resolver ``job_name``."""

from __future__ import annotations

import re
from collections.abc import Iterable

from omegaconf import OmegaConf

# Overrides that do not change what a job computes, or that the name already shows.
_SKIP = ("model", "seed", "resume", "experiment", "hparams_search", "paths", "hydra", "callbacks", "logger")


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
        if key.startswith("~") or key.split(".")[0].split("/")[0] in _SKIP:
            continue
        parts.append(re.sub(r"[^\w.\-]+", "-", f"{key.split('.')[-1]}{value}"))
    parts.append(f"seed{seed}")
    return "_".join(parts)


def register() -> None:
    """Register ``${job_name:model,seed,overrides}`` (idempotent)."""
    if not OmegaConf.has_resolver("job_name"):
        OmegaConf.register_new_resolver("job_name", job_name)
