"""Multirun job folder names, decided by what a job computes (its identity), not by how it was typed.

``job_name`` is registered as the OmegaConf resolver ``job_name`` and names each job's folder
in a sweep (``hydra.sweep.subdir``):

1. a folder of the sweep that already holds a job with the same identity and seed (finished,
   failed or interrupted, whatever it is called) is that job's folder again, so a repeated or
   resumed sweep never makes a second copy;
2. else ``<model>[_<key><value>...]_seed<seed>``: the keys the command set (:func:`settings`),
   sorted, with their resolved values, so the order of the overrides does not matter;
3. a name longer than :data:`MAX_NAME` characters, or one taken by another job, becomes
   ``<model>_<identity id>_seed<seed>``. The full overrides stay in ``.hydra/overrides.yaml``
   and ``metrics.json``.

``settings`` is also what the grid report turns into the command that re-runs a setting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from pairmnist.record import (
    DISPLAY_ONLY_CALLBACKS,
    METRICS_FILE,
    STUDY_KEYS,
    identity_id,
    settings,
)

MAX_NAME = 100  # characters of a job folder's name; far below file systems' 255-byte limit


def value_text(value: Any) -> str:
    """A resolved config value as short text: ``0.01`` (also for ``1e-2``), ``true``, ``null``, ``{a:1}``."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True).replace('"', "")
    return str(value)


def study_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved keys that decide a job's result, as plain data: ``seed``, :data:`STUDY_KEYS`,
    and ``callbacks`` when one that can change the numbers is configured (not those of
    :data:`~pairmnist.record.DISPLAY_ONLY_CALLBACKS`, which are not even resolved: their
    folders name the job's own, known only inside Hydra's job)."""
    study = {"seed": cfg.seed, **{k: OmegaConf.to_container(cfg[k], resolve=True) for k in STUDY_KEYS if k in cfg}}
    callbacks = {
        name: OmegaConf.to_container(node, resolve=True)
        for name, node in (cfg.get("callbacks") or {}).items()
        if node is not None and node.get("_target_") not in DISPLAY_ONLY_CALLBACKS
    }
    return {**study, "callbacks": callbacks} if callbacks else study


def seed_label(root: DictConfig) -> str:
    """``seed<seed>``; for a job that trains its ``tuning_seeds``, ``seeds<first>-<last>`` (``seeds<first>``)."""
    seeds = root.get("tuning_seeds")
    if not seeds:
        return f"seed{root.seed}"
    return f"seeds{seeds[0]}" if len(seeds) == 1 else f"seeds{seeds[0]}-{seeds[-1]}"


def readable_name(model: str, overrides: Iterable[str], root: DictConfig) -> str:
    """``<model>[_<key><value>...]_seed<seed>``, keys sorted, values read from the resolved config.

    ``<key>`` is the key's last part (``model.lr`` -> ``lr``), or the whole key when two of the
    job's keys end alike; a config group chosen by name (``trainer=gpu``) shows that name.
    """
    keys = sorted({key for key, _ in settings(overrides) if key != "model"})
    choices = root.hydra.runtime.choices if "hydra" in root else {}
    last = [key.split(".")[-1] for key in keys]
    parts = [str(model)]
    for key, short in zip(keys, last, strict=True):
        value = choices[key] if key in choices else OmegaConf.select(root, key, default=None)
        if isinstance(value, DictConfig | ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
        label = short if last.count(short) == 1 else key
        parts.append(re.sub(r"[^\w.+\-]+", "-", f"{label}{value_text(value)}").strip("-"))
    return "_".join([*parts, seed_label(root)])


def _folder_job(folder: Path) -> tuple[str, str] | None:
    """(identity id, seed label) of the job in ``folder``: from metrics.json, else from .hydra/config.yaml."""
    try:
        if (folder / METRICS_FILE).is_file():
            config = json.loads((folder / METRICS_FILE).read_text())["config"]
            return identity_id(config), f"seed{config['seed']}"
        saved = folder / ".hydra" / "config.yaml"
        if saved.is_file():
            root = OmegaConf.load(saved)
            return identity_id(study_config(root)), seed_label(root)
    except Exception:  # unreadable, foreign or half-written: not a job this name can reuse
        return None
    return None


_seen: dict[Path, tuple[int, tuple[str, str] | None]] = {}  # folder -> (mtime_ns, job): one read per change


def _jobs_in(sweep_dir: Path) -> dict[str, tuple[str, str] | None]:
    """Each subfolder's name -> (identity id, seed label) of its job, or None."""
    found = {}
    for folder in sorted(p for p in sweep_dir.iterdir() if p.is_dir()) if sweep_dir.is_dir() else []:
        stamp = max((f.stat().st_mtime_ns for f in (folder / METRICS_FILE, folder / ".hydra") if f.exists()), default=0)
        if _seen.get(folder, (None,))[0] != stamp:
            _seen[folder] = (stamp, _folder_job(folder))
        found[folder.name] = _seen[folder][1]
    return found


def job_name(model: str, overrides: Iterable[str], _root_: DictConfig) -> str:
    """The folder name of a job of a multirun (see the module docstring for the rules).

    Args:
        model: the model group's choice (``hydra.runtime.choices.model``).
        overrides: the job's command-line overrides (``hydra.overrides.task``).
        _root_: the job's whole composed config (passed by OmegaConf).
    """
    job = (identity_id(study_config(_root_)), seed_label(_root_))
    existing = _jobs_in(Path(str(OmegaConf.select(_root_, "hydra.sweep.dir", default="."))))
    for name, other in existing.items():
        if other == job:
            return name
    name = readable_name(model, overrides, _root_)
    if len(name) > MAX_NAME or name in existing:
        name = f"{model}_{job[0]}_{job[1]}"
    return name


def register() -> None:
    """Register ``${job_name:model,overrides}`` (idempotent; the whole config comes as ``_root_``)."""
    if not OmegaConf.has_resolver("job_name"):
        OmegaConf.register_new_resolver("job_name", job_name, use_cache=False)
