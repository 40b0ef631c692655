"""The config check, in one layer: every key is read by something, and every value the study reads is allowed.

One function, :func:`check`, runs on the composed config wherever it comes from (a model
YAML, a preset, the command line), before anything starts (the Hydra callback) and again as
each job of a multirun starts (for values swept on the command line). A bad key or value is a
:class:`ConfigError` whose message is one line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ValueType
from hydra.errors import CompactHydraException
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from pairmnist.data.mnist import SOURCES
from pairmnist.data.pairs import check_sizes
from pairmnist.models.heads import HEADS

MAX_SEED = 2**32 - 1  # numpy's and Lightning's seed range
# Keys the job itself reads; every other key must be an argument of an instantiated node or be interpolated.
READ_BY_THE_JOB = ("seed", "tuning_seeds", "threads", "resume", "paths.data_dir", "paths.output_dir")
HYDRA_KEYS = ("_target_", "_convert_", "_recursive_", "_partial_", "_args_")  # Hydra's instructions
log = logging.getLogger(__name__)


class ConfigError(CompactHydraException, ValueError):
    """A config key or value that is not allowed; the message is one line naming the key."""


def _number(low: float, high: float = math.inf, integer: bool = False, high_open: bool = False) -> Callable:
    """A test: a number (an integer when ``integer``; never a bool) in [low, high] (or [low, high))."""

    def test(v: Any) -> bool:
        if not isinstance(v, int if integer else int | float) or isinstance(v, bool) or not math.isfinite(v):
            return False
        return low <= v < high if high_open else low <= v <= high

    return test


def _seeds(v: Any) -> bool:
    return v is None or (bool(v) and len(set(v)) == len(v) and all(map(_number(0, MAX_SEED, True), v)))


# Each value the job reads, where it is read: (test, what is allowed). A missing key is not checked.
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (_number(0, MAX_SEED, True), f"must be an integer in [0, {MAX_SEED}]"),
    "threads": (lambda v: v is None or _number(1, integer=True)(v), "must be null (measured) or an integer >= 1"),
    "tuning_seeds": (
        _seeds,
        f"must be null or a non-empty list of distinct seeds in [0, {MAX_SEED}], e.g. [1000,1001]",
    ),
    "model.module.optimizer.lr": (lambda v: _number(0)(v) and v > 0, "must be a finite number > 0"),
    "model.module.aux_weight": (_number(0, 1), "must be within [0, 1]"),
    "model.module.ema_decay": (
        lambda v: v is None or _number(0, 1, high_open=True)(v),
        "must be null (off) or in [0, 1)",
    ),
    "model.module.label_smoothing": (_number(0, 1, high_open=True), "must be in [0, 1)"),
    "model.module.net.nb_hidden": (_number(1, integer=True), "must be an integer >= 1"),
    "model.module.net.head": (lambda v: v in HEADS, f"allowed: {', '.join(HEADS)}"),
    "model.module.net.branch.width": (_number(1, integer=True), "must be an integer >= 1"),
    "model.module.net.branch.dropout": (_number(0, 1, high_open=True), "must be in [0, 1)"),
    "model.module.optimizer.weight_decay": (_number(0), "must be a number >= 0"),
    "paths.data_dir": (lambda v: isinstance(v, str) and bool(v), "must be a folder"),
    "model.module.net.tta_shift": (_number(0, 3, True), "must be an integer in [0, 3] (pixels)"),
    "data.n_pairs": (_number(1, integer=True), "must be >= 1"),
    "data.n_val_pairs": (_number(1, integer=True), "must be >= 1"),
    "data.batch_size": (_number(1, integer=True), "must be >= 1"),
    "data.eval_batch_size": (_number(1, integer=True), "must be >= 1"),
    "data.source": (lambda v: v in SOURCES, f"allowed: {', '.join(SOURCES)}"),
    "data.num_workers": (
        lambda v: type(v) is int and v == 0,
        "must be 0: the pairs live in memory, each batch is one slice of them",
    ),
    "data.n_test_pairs": (lambda v: v is None or _number(1, integer=True)(v), "must be null (= n_pairs) or >= 1"),
    "data.augment": (
        lambda v: set(v) <= {"swap", "shift", "rotate", "scale", "mix"},
        "keys: swap, shift, rotate, scale, mix",
    ),
    "data.augment.swap": (lambda v: isinstance(v, bool), "must be true or false"),
    "data.normalize": (lambda v: isinstance(v, bool), "must be true or false"),
    "model.module.net.share_weights": (lambda v: isinstance(v, bool), "must be true or false"),
    "resume": (lambda v: isinstance(v, bool), "must be true or false"),
    "data.augment.shift": (_number(0, 7, True), "must be an integer in [0, 7] (pixels of a 14x14 image)"),
    "data.augment.rotate": (_number(0, 180), "must be in [0, 180] (degrees)"),
    "data.augment.scale": (_number(0, 1, high_open=True), "must be in [0, 1) (a fraction of the size)"),
    "data.augment.mix": (_number(0, 1), "must be in [0, 1] (a fraction of each batch)"),
    "trainer.max_epochs": (_number(1, integer=True), "must be >= 1"),
    **{
        f"trainer.limit_{split}_batches": (
            lambda v: v is None or _number(0)(v) and v > 0,
            "must be > 0: the study needs every split",
        )
        for split in ("train", "val", "test")
    },
}


def knob(cfg: DictConfig, key: str) -> str:
    """The key a user sets for ``key``: the knob it interpolates (``model.lr`` for ``model.module.optimizer.lr``)."""
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    found = re.fullmatch(r"\$\{([\w.]+)\}", str(OmegaConf.to_container(node, resolve=False).get(leaf)))
    return found.group(1) if found else key


def check_values(cfg: DictConfig) -> None:
    """Check each value of :data:`RULES` that ``cfg`` has, and the few that depend on each other.

    Raises:
        ConfigError: the first value not allowed, e.g. ``model.aux_weight=1.5: must be within [0, 1]``.
    """
    for key, (test, allowed) in RULES.items():
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        try:
            ok = test(value)
        except (TypeError, ValueError):  # a value of another type altogether (tuning_seeds=1)
            ok = False
        if OmegaConf.select(cfg, key, default="absent") != "absent" and not ok:
            raise ConfigError(f"{knob(cfg, key)}={value}: {allowed}")
    aux, net = cfg.model.module.get("aux_weight", 0), cfg.model.module.net
    if "head" not in net and aux != 0:
        raise ConfigError(f"{knob(cfg, 'model.module.aux_weight')}={aux}: allowed: 0 (this net has no digit outputs)")
    if net.get("head") == "digits" and aux != 1:
        raise ConfigError(
            f"{knob(cfg, 'model.module.aux_weight')}={aux}: allowed: 1 with model.head=digits "
            "(the head has no parameters, only the digit loss trains)"
        )
    try:
        check_sizes(cfg.data.n_pairs, cfg.data.n_val_pairs, cfg.data.get("n_test_pairs"))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    accelerator, devices = cfg.trainer.get("accelerator"), cfg.trainer.get("devices", 1)
    if accelerator in ("gpu", "cuda") and not _gpus():
        raise ConfigError(f"trainer.accelerator={accelerator}: no CUDA GPU is available here")
    many = devices in ("auto", -1) and accelerator not in ("cpu", "mps") and _gpus() > 1  # auto: every GPU
    if many or devices not in (1, "auto", -1) and not (OmegaConf.is_list(devices) and len(devices) == 1):
        raise ConfigError(
            f"trainer.devices={devices}: must be 1 (or auto on a machine with one device): "
            "this study trains one process per job"
        )


def _gpus() -> int:
    """The CUDA GPUs this machine has."""
    import torch

    return torch.cuda.device_count()


def _arguments(target: str, key: str) -> list[str] | None:
    """The argument names of ``target`` (a ``_target_``), or None when it takes ``**kwargs``."""
    try:
        parameters = inspect.signature(get_object(target)).parameters
    except Exception as e:
        raise ConfigError(f"{key}={target}: cannot be used ({type(e).__name__}: {' '.join(str(e).split())})") from None
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    return list(parameters)


def check_keys(node: DictConfig, reads: set[str], path: str = "") -> None:
    """Check that something reads every key under ``node``: a YAML key and a ``+key`` get the same verdict.

    A key under a node with a ``_target_`` must be an argument of it (any, for ``**kwargs``);
    elsewhere it must be read by the job (:data:`READ_BY_THE_JOB`) or by an interpolation
    (``${model.lr}``), or hold a node (checked in turn) or null (a knob switched off).

    Raises:
        ConfigError: ``<key>: unknown key ...`` naming the first such key and what is known there.
    """
    target = node.get("_target_")
    arguments = _arguments(target, f"{path}_target_") if target else None
    for name in (n for n in node if f"{path}{n}" != "hydra"):
        key, child = f"{path}{name}", node._get_node(name)
        if target and arguments is not None and name not in arguments and name not in HYDRA_KEYS:
            raise ConfigError(f"{key}: unknown key: {name!r} is not an argument of {target}")
        is_node = isinstance(child, DictConfig) and not child._is_none() and not child._is_interpolation()
        if is_node and (not target or "_target_" in child):
            check_keys(child, reads, f"{key}.")
        elif not target and not child._is_none() and key not in reads:
            known = ", ".join(str(k) for k in node if k not in (name, "hydra"))
            where = f"under {path[:-1]}" if path else "at the top level"
            raise ConfigError(f"{key}: unknown key (nothing reads it); known {where}: {known}")


def launch_path(cfg: DictConfig, path: str | Path) -> Path:
    """``path`` anchored at the folder the command was started from (Hydra's ``runtime.cwd``).

    A relative ``paths.*`` value then names the same folder whatever the job's working folder
    (``hydra.job.chdir=true`` moves that into the job folder); an absolute path stays as it is.
    """
    if "hydra" in cfg:
        return Path(cfg.hydra.runtime.cwd, path)
    return Path(HydraConfig.get().runtime.cwd if HydraConfig.initialized() else os.getcwd(), path)


def check_writable(key: str, folder: str | Path) -> None:
    """Check that ``folder`` can be created (or exists) and written, without creating it: a temporary file of
    the size of a job's config (8 KiB) fits in its nearest existing ancestor.

    Raises:
        ConfigError: that ancestor is not a folder, cannot be written, or has no room (a full disk).
    """
    existing = Path(folder).absolute()
    while not existing.exists():
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is a file")
        with tempfile.TemporaryFile(dir=existing) as f:
            f.write(bytes(8192))
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise ConfigError(f"{key}={folder}: not a writable folder ({e})") from None


def check(cfg: DictConfig) -> None:
    """The whole check of a composed config: keys (:func:`check_keys`), values (:func:`check_values`),
    the data folder; warns of allowed combinations that are probably mistakes.

    Raises:
        ConfigError: the first key that is unknown or whose value is not allowed.
    """
    hydra = cfg.hydra if "hydra" in cfg else HydraConfig.get() if HydraConfig.initialized() else {}
    text = json.dumps([OmegaConf.to_container(n, resolve=False) for n in (cfg, hydra)], default=str)
    # A knob (model.nb_hidden) is read by the module key of its name, also when an override replaced its ${...}.
    module = json.dumps(OmegaConf.to_container(cfg.model.module, resolve=False), default=str)
    knobs = {f"model.{name}" for name in re.findall(r'"([a-z]\w*)": (?![{\[]|null)', module)}  # leaves, set
    check_keys(cfg, set(READ_BY_THE_JOB) | knobs | set(re.findall(r"\$\{([\w.]+)\}", text)))
    check_values(cfg)
    if cfg.model.module.net.get("head") == "learned" and cfg.model.module.get("aux_weight") == 1:
        log.warning(
            "model.aux_weight=1 with model.head=learned: the comparison head gets no gradient and stays "
            "untrained (at its random initialisation); model.head=digits or probabilistic use the digits"
        )
    if cfg.trainer.get("accelerator") == "mps":
        log.warning("trainer.accelerator=mps: Apple's GPU has not been run by this project; results are unchecked")
    check_writable("paths.data_dir", launch_path(cfg, cfg.paths.data_dir))


def _swept_values(text: str) -> list[Any]:
    """The values of ``key=a,b,c``, ``range(n)`` or ``choice(...)``; both ends of an ``interval(a, b)``."""
    override = OverridesParser.create().parse_overrides([text])[0]
    if override.value_type == ValueType.INTERVAL_SWEEP:
        return [override.value().start, override.value().end]
    return list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]


def check_preset_sweep(config: DictConfig) -> None:
    """Check, before a multirun starts, the jobs its preset (``hparams_search/``, ``experiment/``) will run.

    With ``model=`` on the command line the model must be one the preset sweeps, and every
    combination of the other values it sweeps (``hydra.sweeper.params``; both ends of a search's
    range) is applied to the config and checked (:func:`check_values`). Keys the command line also
    sets are left out: its value replaces the preset's.

    Raises:
        ConfigError: a model the preset is not meant for, a swept key that does not exist, or
            the first swept value not allowed, in one line naming the key and the preset.
    """
    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    on_command_line = {o.get_key_element() for o in parsed}
    choices = config.hydra.runtime.choices
    preset = " ".join(f"{g}={choices[g]}" for g in ("hparams_search", "experiment") if choices.get(g))
    sweeps = {k: _swept_values(f"{k}={v}") for k, v in (OmegaConf.select(config, "hydra.sweeper.params") or {}).items()}
    for group in sweeps.keys() & choices.keys():  # the models the preset is meant for
        if group not in on_command_line:
            return
        if choices[group] not in map(str, sweeps[group]):
            meant = " or ".join(f"{group}={option}" for option in sweeps[group])
            raise ConfigError(f"{group}={choices[group]}: {preset or 'the sweep'} is meant for {meant}")
    # `+group=...` appends config files (experiment=siamese_plus_ingredients): each job checks its own
    swept = {k: v for k, v in sweeps.items() if k not in choices and k not in on_command_line and k[0] != "+"}
    where = f"swept by {preset or 'hydra.sweeper.params'} with model={choices.get('model')}"
    job = copy.deepcopy(config)
    for key in swept:
        if OmegaConf.select(job, key, default="absent") == "absent":
            raise ConfigError(f"{key}: no such key ({where})")
    for values in itertools.product(*swept.values()):
        for key, value in zip(swept, values, strict=True):
            OmegaConf.update(job, key, value, merge=False)
        try:
            check_values(job)
        except ConfigError as e:
            raise ConfigError(f"{e} ({where})") from None
