"""The study's config schema: typed fields, the allowed values and the known keys, checked before any work.

Each check fails with one line naming the key, the value and what is allowed, as a
:class:`ConfigError` that Hydra prints without a traceback.
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
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, ValueType
from hydra.errors import CompactHydraException
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pairmnist.data.mnist import SOURCES
from pairmnist.data.pairs import check_sizes
from pairmnist.models.heads import HEADS

MAX_SEED = 2**32 - 1  # numpy's and Lightning's seed range
_ABSENT = object()  # OmegaConf.select's answer for a key that does not exist
# Config nodes a job reads whole (instantiates, or hands to Hydra), besides the schemas' fields.
READ_WHOLE = ("data", "trainer", "logger", "callbacks", "model.module", "paths.data_dir", "paths.output_dir")
# Keys of instantiated nodes that are Hydra's instructions, not constructor arguments.
HYDRA_KEYS = ("_target_", "_convert_", "_recursive_", "_partial_", "_args_")
log = logging.getLogger(__name__)


class ConfigError(CompactHydraException, ValueError):
    """A config value that is not allowed; the message is one line naming the key."""


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value}: {allowed}")


@dataclass
class ModelSchema:
    """``model.*``: the hyperparameters of the original report (plus ``head``), and the
    switches of the recipes that have them (siamese_plus; None where a model has no such knob)."""

    lr: float
    nb_hidden: int
    aux_weight: float
    head: str | None = None  # None: a net without digit outputs (shallow)
    ema_decay: float | None = None
    tta_shift: int | None = None
    label_smoothing: float | None = None

    def check(self) -> None:
        if self.ema_decay is not None:
            _require(0 <= self.ema_decay < 1, "model.ema_decay", self.ema_decay, "must be null (off) or in [0, 1)")
        if self.tta_shift is not None:
            _require(
                0 <= self.tta_shift <= 3, "model.tta_shift", self.tta_shift, "must be an integer in [0, 3] (pixels)"
            )
        if self.label_smoothing is not None:
            smoothing = self.label_smoothing
            _require(0 <= smoothing < 1, "model.label_smoothing", smoothing, "must be in [0, 1)")
        _require(math.isfinite(self.lr) and self.lr > 0, "model.lr", self.lr, "must be a finite number > 0")
        _require(self.nb_hidden >= 1, "model.nb_hidden", self.nb_hidden, "must be >= 1")
        _require(0 <= self.aux_weight <= 1, "model.aux_weight", self.aux_weight, "must be within [0, 1]")
        _require(self.head is None or self.head in HEADS, "model.head", self.head, f"allowed: {', '.join(HEADS)}")
        if self.head is None:
            no_digits = "allowed: 0 (this net has no digit outputs)"
            _require(self.aux_weight == 0, "model.aux_weight", self.aux_weight, no_digits)
        if self.head == "digits":
            _require(
                self.aux_weight == 1,
                "model.aux_weight",
                self.aux_weight,
                "allowed: 1 with model.head=digits (the head has no parameters, only the digit loss trains)",
            )

    def warn(self) -> None:
        """Log the allowed combinations that are probably mistakes."""
        if self.head == "learned" and self.aux_weight == 1:
            log.warning(
                "model.aux_weight=1 with model.head=learned: the comparison head gets no gradient and stays "
                "untrained (at its random initialisation); model.head=digits or probabilistic use the digits"
            )


@dataclass
class AugmentSchema:
    """``data.augment.*``."""

    swap: bool = False
    shift: int = 0
    rotate: float = 0.0
    scale: float = 0.0
    mix: float = 0.0


@dataclass
class DataSchema:
    """``data.*``: pair counts, batching and the MNIST source."""

    n_pairs: int
    n_val_pairs: int
    batch_size: int
    eval_batch_size: int
    source: str
    normalize: bool
    augment: AugmentSchema
    num_workers: int = 0
    n_test_pairs: int | None = None

    def check(self) -> None:
        _require(self.n_pairs >= 1, "data.n_pairs", self.n_pairs, "must be >= 1")
        _require(self.n_val_pairs >= 1, "data.n_val_pairs", self.n_val_pairs, "must be >= 1")
        _require(self.batch_size >= 1, "data.batch_size", self.batch_size, "must be >= 1")
        _require(self.eval_batch_size >= 1, "data.eval_batch_size", self.eval_batch_size, "must be >= 1")
        _require(self.source in SOURCES, "data.source", self.source, f"allowed: {', '.join(SOURCES)}")
        _require(
            self.num_workers == 0,
            "data.num_workers",
            self.num_workers,
            "must be 0: the pairs live in memory and each batch is one slice of them, "
            "so DataLoader worker processes would have nothing to do",
        )
        shift = self.augment.shift
        _require(0 <= shift <= 7, "data.augment.shift", shift, "must be an integer in [0, 7] (pixels of a 14x14 image)")
        rotate, scale, mix = self.augment.rotate, self.augment.scale, self.augment.mix
        _require(0 <= rotate <= 180, "data.augment.rotate", rotate, "must be in [0, 180] (degrees)")
        _require(0 <= scale < 1, "data.augment.scale", scale, "must be in [0, 1) (a fraction of the size)")
        _require(0 <= mix <= 1, "data.augment.mix", mix, "must be in [0, 1] (a fraction of each batch)")
        try:
            check_sizes(self.n_pairs, self.n_val_pairs, self.n_test_pairs)
        except ValueError as e:
            raise ConfigError(str(e)) from None


@dataclass
class TrainerSchema:
    """``trainer.*`` keys the study depends on (the rest go to ``Trainer``, which checks them).

    ``accelerator``: ``auto`` is a CUDA GPU when there is one, else the CPU (never Apple's
    MPS: see :func:`pairmnist.jobs.job.accelerator`); ``mps`` is an explicit, untested opt-in.
    """

    max_epochs: int
    accelerator: str = "auto"
    limit_train_batches: float | None = None
    limit_val_batches: float | None = None
    limit_test_batches: float | None = None

    def check(self) -> None:
        _require(self.max_epochs >= 1, "trainer.max_epochs", self.max_epochs, "must be >= 1")
        for split in ("train", "val", "test"):  # 0 would leave the record without its figures
            limit = getattr(self, f"limit_{split}_batches")
            allowed = "must be > 0 (a fraction of the batches, or a number of them): the study needs every split"
            _require(limit is None or limit > 0, f"trainer.limit_{split}_batches", limit, allowed)
        if self.accelerator in ("gpu", "cuda"):
            import torch

            _require(
                torch.cuda.is_available(),
                "trainer.accelerator",
                self.accelerator,
                "no CUDA GPU is available here; use the default trainer (accelerator auto, CPU)",
            )
        if self.accelerator == "mps":
            log.warning(
                "trainer.accelerator=mps: Apple's GPU has not been run by this project (nets stay in their "
                "default memory layout there); results are not checked against the CPU's"
            )


@dataclass
class RunSchema:
    """Top-level keys."""

    seed: int
    resume: bool
    tuning_seeds: list[int] | None = None
    threads: int | None = None

    def check(self) -> None:
        _require(0 <= self.seed <= MAX_SEED, "seed", self.seed, f"must be an integer in [0, {MAX_SEED}]")
        threads_allowed = "must be null (chosen by measurement) or an integer >= 1"
        _require(self.threads is None or self.threads >= 1, "threads", self.threads, threads_allowed)
        if self.tuning_seeds is not None:
            seeds = self.tuning_seeds
            distinct = len(set(seeds)) == len(seeds) and all(0 <= s <= MAX_SEED for s in seeds)
            allowed = f"must be null or a non-empty list of distinct seeds in [0, {MAX_SEED}], e.g. [1000,1001,1002]"
            _require(bool(seeds) and distinct, "tuning_seeds", seeds, allowed)


# Each schema and the node it checks ("" is the top level).
SCHEMAS = ((RunSchema, ""), (ModelSchema, "model."), (DataSchema, "data."), (TrainerSchema, "trainer."))


def _typed(schema: type, node: DictConfig, prefix: str) -> Any:
    """The schema's fields of ``node``, converted to their declared types.

    Raises:
        ConfigError: a field is missing or cannot be converted (e.g. ``model.lr=abc``).
    """
    subset = {f.name: node.get(f.name) for f in fields(schema)}
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), subset))
    except OmegaConfBaseException as e:
        path = getattr(e, "full_key", "") or ""
        value = OmegaConf.select(OmegaConf.create(subset), path, default=None) if path else None
        msg = str(getattr(e, "msg", e)).splitlines()[0]
        kinds = {"Integer": "an integer", "Float": "a number", "Boolean": "true or false", "missing": "set"}
        kinds["ListConfig"] = "a list, e.g. [1000,1001,1002]"
        wanted = next((f"must be {v}" for k, v in kinds.items() if k in msg), msg)
        raise ConfigError(f"{prefix}{path}={value}: {wanted}") from None


def launch_path(cfg: DictConfig, path: str | Path) -> Path:
    """``path`` anchored at the folder the command was started from (Hydra's ``runtime.cwd``).

    A relative ``paths.*`` value then names the same folder whatever the job's working folder
    (``hydra.job.chdir=true`` moves that into the job folder); an absolute path stays as it is.
    ``cfg`` is a composed config with its ``hydra`` node, or a job's config (Hydra's is then
    read from :class:`HydraConfig`); without either, the current folder is the anchor.
    """
    if "hydra" in cfg:
        cwd = cfg.hydra.runtime.cwd
    elif HydraConfig.initialized():
        cwd = HydraConfig.get().runtime.cwd
    else:
        cwd = os.getcwd()
    return Path(cwd, path)


def _references(*nodes: DictConfig) -> set[str]:
    """Every key that an interpolation ``${a.b}`` in ``nodes`` refers to (``a.b``)."""
    text = json.dumps([OmegaConf.to_container(n, resolve=False) for n in nodes], default=str)
    return set(re.findall(r"\$\{([\w.]+)\}", text))


def _arguments(target: str, key: str) -> list[str] | None:
    """The argument names of ``target`` (a ``_target_``), or None when it takes ``**kwargs``.

    Raises:
        ConfigError: ``target`` cannot be imported or has no signature.
    """
    try:
        parameters = inspect.signature(get_object(target)).parameters
    except Exception as e:
        raise ConfigError(f"{key}={target}: cannot be used ({type(e).__name__}: {e})") from None
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    return list(parameters)


def _check_added_key(cfg: DictConfig, key: str, reads: set[str]) -> None:
    """Check one key added with ``+``: read by its node's constructor, or by the job."""
    parts = key.split(".")
    for n in range(len(parts) - 1, 0, -1):  # the nearest node above the key that is instantiated
        node = OmegaConf.select(cfg, ".".join(parts[:n]), default=None)
        if isinstance(node, DictConfig) and "_target_" in node:
            argument = parts[n]
            arguments = _arguments(node._target_, ".".join([*parts[:n], "_target_"]))
            if arguments is None or argument in arguments or argument in HYDRA_KEYS:
                return
            raise ConfigError(f"{key}: unknown key: {argument!r} is not an argument of {node._target_}")
    if any(key == r or key.startswith(r + ".") for r in reads):
        return
    parent = ".".join(parts[:-1])
    siblings = OmegaConf.select(cfg, parent, default=None) if parent else cfg
    prefix = f"{parent}." if parent else ""
    known = [str(k) for k in siblings or () if f"{prefix}{k}" != key and str(k) != "hydra"]
    where = f"under {parent}" if parent else "at the top level"
    raise ConfigError(f"{key}: unknown key (nothing reads it); known {where}: {', '.join(known)}")


def check_added_keys(cfg: DictConfig, hydra: DictConfig) -> None:
    """Check that something reads every key added on the command line with ``+`` (or ``++``),
    so that a misspelt ``+model.lrr=0.1`` (the spelling Hydra's own error suggests) stops the
    command instead of being ignored.

    A key is read when it is an argument of the nearest node above it with a ``_target_``
    (any key when that target takes ``**kwargs``), so ``+trainer.gradient_clip_val=1.0``
    passes and ``+data.foo=1`` does not; else when it is a schema field (:data:`SCHEMAS`),
    lies in a node the job reads whole (:data:`READ_WHOLE`), or is referred to by an
    interpolation anywhere in the config (``model.width`` by ``${model.width}``). Added config
    groups (``+experiment=...``) are Hydra's business.

    Args:
        cfg: the composed config.
        hydra: its ``hydra`` node (``hydra.overrides.task``, ``hydra.runtime.choices``).

    Raises:
        ConfigError: ``<key>: unknown key ...`` naming the first such key and what is known there.
    """
    reads = set(READ_WHOLE) | _references(cfg, hydra)
    reads |= {f"{prefix}{f.name}" for schema, prefix in SCHEMAS for f in fields(schema)}
    choices = hydra.runtime.choices
    for override in OverridesParser.create().parse_overrides(list(hydra.overrides.task)):
        key = override.key_or_group
        if (override.is_add() or override.is_force_add()) and key not in choices and "/" not in key:
            _check_added_key(cfg, key, reads)


def check_writable(key: str, folder: str | Path) -> None:
    """Check that ``folder`` can be created (or exists) and written, without creating it.

    Writes and deletes a probe file in ``folder`` or in its nearest existing ancestor.

    Raises:
        ConfigError: that ancestor is not a folder or cannot be written.
    """
    existing = Path(folder).absolute()
    while not existing.exists():
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is a file")
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise ConfigError(f"{key}={folder}: not a writable folder ({e})") from None


def check_values(cfg: DictConfig) -> None:
    """Check the values of the study keys of a composed config (model, data, trainer, seed).

    Raises:
        ConfigError: the first key whose value is not allowed.
    """
    for schema, prefix in SCHEMAS:
        _typed(schema, cfg[prefix[:-1]] if prefix else cfg, prefix).check()


def validate(cfg: DictConfig) -> None:
    """Check a composed config: no unknown key (:func:`check_added_keys`), the study keys' values
    (:func:`check_values`) and the data folder (anchored by :func:`launch_path`); warn of likely
    mistakes.

    Raises:
        ConfigError: the first key that is unknown or whose value is not allowed.
    """
    if "hydra" in cfg:
        check_added_keys(cfg, cfg.hydra)
    elif HydraConfig.initialized():  # a job's config: Hydra keeps its own node
        check_added_keys(cfg, HydraConfig.get())
    check_values(cfg)
    _typed(ModelSchema, cfg.model, "model.").warn()
    check_writable("paths.data_dir", launch_path(cfg, cfg.paths.data_dir))


def _swept_values(override: Override) -> list[Any]:
    """The values of a parsed ``key=a,b,c``, ``key=range(n)`` or ``choice(...)`` override, the two ends
    of an ``interval(a, b)`` (a search's range, with or without ``tag(log, ...)``); ``[value]`` for a
    single one."""
    if override.value_type == ValueType.INTERVAL_SWEEP:
        interval = override.value()
        return [interval.start, interval.end]
    return list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]


def check_preset_sweep(config: DictConfig) -> None:
    """Check, before a multirun starts, the jobs that its preset's sweep will run.

    A preset (``hparams_search/``, ``experiment/``) sweeps keys through ``hydra.sweeper.params``,
    the models it is meant for among them (``model: twin,siamese``). Without ``model=`` on the
    command line the jobs get those models, and each job checks its own config as it starts.
    With ``model=`` (which replaces the preset's choice) the model must be one of them, and every
    combination of the other swept values is applied to the composed config and checked
    (:func:`check_values`), e.g. ``hparams_search=deep_grid model=twin model.head=digits``
    (the digits head needs aux_weight 1, the grid sweeps 0, 0.5, 1). Swept keys that the
    command line also sets are left out: its value replaces the preset's.

    Args:
        config: the multirun's composed config, ``hydra`` node included.

    Raises:
        ConfigError: a model the preset is not meant for, a swept key that does not exist or
            the first swept value not allowed, in one line naming the key and the preset.
    """
    parser = OverridesParser.create()
    on_command_line = {o.get_key_element() for o in parser.parse_overrides(list(config.hydra.overrides.task))}
    choices = config.hydra.runtime.choices
    preset = " ".join(f"{g}={choices[g]}" for g in ("hparams_search", "experiment") if choices.get(g))
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    sweeps = {key: _swept_values(parser.parse_overrides([f"{key}={v}"])[0]) for key, v in params.items()}
    for group in sweeps.keys() & choices.keys():  # the models (or other options) the preset is meant for
        if group not in on_command_line:
            return
        if choices[group] not in map(str, sweeps[group]):
            meant = " or ".join(f"{group}={option}" for option in sweeps[group])
            raise ConfigError(f"{group}={choices[group]}: {preset or 'the sweep'} is meant for {meant}")
    # `+group=...` appends config files (experiment=siamese_plus_ingredients): each job checks its own when it starts
    swept = {k: v for k, v in sweeps.items() if k not in choices and k not in on_command_line and k[0] != "+"}
    where = f"swept by {preset or 'hydra.sweeper.params'} with model={choices.get('model')}"
    job = copy.deepcopy(config)
    for key in swept:
        if OmegaConf.select(job, key, default=_ABSENT) is _ABSENT:
            raise ConfigError(f"{key}: no such key ({where})")
    for values in itertools.product(*swept.values()):
        for key, value in zip(swept, values, strict=True):
            OmegaConf.update(job, key, value, merge=False)
        try:
            check_values(job)
        except ConfigError as e:
            raise ConfigError(f"{e} ({where})") from None
