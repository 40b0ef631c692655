"""A job's command-line overrides: its readable folder name, and the settings they make.

``job_name`` is registered as the OmegaConf resolver ``job_name`` (multirun folder names);
``settings`` is what the grid report turns into the command that re-runs a chosen setting.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from omegaconf import OmegaConf

# Keys a sweep sets for all its jobs, or that only pick other overrides (never a job's setting).
SWEEP_KEYS = ("seed", "resume", "hparams_search", "experiment")
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


def job_name(model: str, seed: int, overrides: Iterable[str]) -> str:
    """``<model>[_<key><value>...]_seed<seed>`` from a job's command-line overrides.

    Each setting other than ``model`` (see :func:`settings`) adds ``<last key part><value>``,
    e.g. ``model.lr=1e-3`` -> ``lr1e-3``, so that the jobs of a grid get distinct folders
    while the study's are just ``siamese_seed3``.
    """
    parts = [str(model)]
    parts += [re.sub(r"[^\w.+\-]+", "-", f"{k.split('.')[-1]}{v}") for k, v in settings(overrides) if k != "model"]
    parts.append(f"seed{seed}")
    return "_".join(parts)


def register() -> None:
    """Register ``${job_name:model,seed,overrides}`` (idempotent)."""
    if not OmegaConf.has_resolver("job_name"):
        OmegaConf.register_new_resolver("job_name", job_name)
