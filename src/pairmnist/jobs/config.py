"""The study's config schema: typed fields and the allowed values, checked before any work.

Each check fails with one line naming the key, the value and what is allowed, as a
:class:`ConfigError` that Hydra prints without a traceback.
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, ValueType
from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pairmnist.data.mnist import SOURCES
from pairmnist.data.pairs import check_sizes
from pairmnist.models.heads import HEADS

MAX_SEED = 2**32 - 1  # numpy's and Lightning's seed range
_ABSENT = object()  # OmegaConf.select's answer for a key that does not exist
log = logging.getLogger(__name__)


class ConfigError(CompactHydraException, ValueError):
    """A config value that is not allowed; the message is one line naming the key."""


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value}: {allowed}")


@dataclass
class ModelSchema:
    """``model.*``: the hyperparameters of the original report (plus ``head``)."""

    lr: float
    nb_hidden: int
    aux_weight: float
    head: str | None = None  # None: a net without digit outputs (shallow)

    def check(self) -> None:
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

    def check(self) -> None:
        _require(self.n_pairs >= 1, "data.n_pairs", self.n_pairs, "must be >= 1")
        _require(self.n_val_pairs >= 1, "data.n_val_pairs", self.n_val_pairs, "must be >= 1")
        _require(self.batch_size >= 1, "data.batch_size", self.batch_size, "must be >= 1")
        _require(self.eval_batch_size >= 1, "data.eval_batch_size", self.eval_batch_size, "must be >= 1")
        _require(self.source in SOURCES, "data.source", self.source, f"allowed: {', '.join(SOURCES)}")
        shift = self.augment.shift
        _require(0 <= shift <= 7, "data.augment.shift", shift, "must be an integer in [0, 7] (pixels of a 14x14 image)")
        rotate, scale, mix = self.augment.rotate, self.augment.scale, self.augment.mix
        _require(0 <= rotate <= 180, "data.augment.rotate", rotate, "must be in [0, 180] (degrees)")
        _require(0 <= scale < 1, "data.augment.scale", scale, "must be in [0, 1) (a fraction of the size)")
        _require(0 <= mix <= 1, "data.augment.mix", mix, "must be in [0, 1] (a fraction of each batch)")
        try:
            check_sizes(self.n_pairs, self.n_val_pairs)
        except ValueError as e:
            raise ConfigError(str(e)) from None


@dataclass
class TrainerSchema:
    """``trainer.*`` keys the study depends on (the rest go to ``Trainer`` unchecked)."""

    max_epochs: int
    accelerator: str = "auto"

    def check(self) -> None:
        _require(self.max_epochs >= 1, "trainer.max_epochs", self.max_epochs, "must be >= 1")
        if self.accelerator in ("gpu", "cuda"):
            import torch

            _require(
                torch.cuda.is_available(),
                "trainer.accelerator",
                self.accelerator,
                "no CUDA GPU is available here; use the default trainer (accelerator auto, CPU)",
            )


@dataclass
class RunSchema:
    """Top-level keys."""

    seed: int
    resume: bool

    def check(self) -> None:
        _require(0 <= self.seed <= MAX_SEED, "seed", self.seed, f"must be an integer in [0, {MAX_SEED}]")


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
        wanted = next((f"must be {v}" for k, v in kinds.items() if k in msg), msg)
        raise ConfigError(f"{prefix}{path}={value}: {wanted}") from None


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
    for schema, node, prefix in (
        (RunSchema, cfg, ""),
        (ModelSchema, cfg.model, "model."),
        (DataSchema, cfg.data, "data."),
        (TrainerSchema, cfg.trainer, "trainer."),
    ):
        _typed(schema, node, prefix).check()


def validate(cfg: DictConfig) -> None:
    """Check the study keys (:func:`check_values`) and the data folder; warn of likely mistakes.

    Raises:
        ConfigError: the first key whose value is not allowed.
    """
    check_values(cfg)
    _typed(ModelSchema, cfg.model, "model.").warn()
    check_writable("paths.data_dir", cfg.paths.data_dir)


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
    swept = {k: v for k, v in sweeps.items() if k not in choices and k not in on_command_line}
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
