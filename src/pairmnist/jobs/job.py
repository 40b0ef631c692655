"""One job of the study: config -> validated -> trained and tested -> ``metrics.json``.

``run_job`` is the Hydra task function (``src/run.py``). In a multirun a failing job is
recorded in its folder (``error.txt``) and the sweep goes on; the report names it and the
multirun exits non-zero. SIGINT and SIGTERM stop a job the same way (:mod:`pairmnist.jobs.signals`).
With ``resume=true`` a job whose ``metrics.json`` is complete and was made from the same
config returns the stored result without training.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.trainer.states import TrainerFn

from pairmnist.atomic import write_text
from pairmnist.jobs.config import launch_path, validate
from pairmnist.jobs.console import quiet_lightning
from pairmnist.jobs.naming import study_config
from pairmnist.jobs.signals import Interrupted, exit_status, stop_job
from pairmnist.record import (
    ERROR_FILE,
    JobNotDone,
    fraction,
    identity,
    identity_id,
    load_record,
    trained_hyperparameters,
    write_record,
)

log = logging.getLogger(__name__)
quiet_lightning()


class JobFailed(CompactHydraException):
    """A single run failed; the message is one line, the traceback is in the job's error.txt."""


def _choice(group: str) -> str | None:
    return HydraConfig.get().runtime.choices.get(group) if HydraConfig.initialized() else None


def cpu_name() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else ``platform.processor()``, else the machine type.

    Stored with every result: numbers are bitwise reproducible on one CPU model and thread
    count, and differ slightly across CPU models (oneDNN picks other kernels).
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def idle_cores(window: float = 0.2) -> int:
    """The CPU cores idle now, measured over ``window`` seconds (Linux ``/proc/stat``), at least 1.

    On a busy machine PyTorch's threads spin against the other work: one thread per idle core
    is never much slower than the best fixed count, idle or busy (benchmarks/README.md). Elsewhere
    (no ``/proc/stat``): the cores this process may use.
    """
    try:
        usable = len(os.sched_getaffinity(0))
        samples = []
        for _ in range(2):
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
            samples.append((fields[3] + fields[4], sum(fields)))  # idle + iowait, all
            time.sleep(window)
        idle, total = samples[1][0] - samples[0][0], samples[1][1] - samples[0][1]
        busy_cores = (1 - idle / total) * (os.cpu_count() or usable) if total else 0
        return max(1, min(usable, round(usable - busy_cores)))
    except (OSError, AttributeError, ValueError):
        return os.cpu_count() or 1


class Parts(NamedTuple):
    """What a job trains with, instantiated from its config."""

    datamodule: pl.LightningDataModule
    module: pl.LightningModule
    trainer: pl.Trainer


def accelerator(name: str) -> str:
    """``trainer.accelerator`` as the Trainer gets it: ``auto`` is CUDA when there is a GPU, else the CPU.

    Lightning's own ``auto`` would also pick Apple's MPS, which this project has not been run
    on (and where a channels-last max-pooling backward has crashed in PyTorch); ``mps`` is
    there for whoever asks for it by name. Other names pass unchanged.
    """
    if name != "auto":
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"


def build(cfg: DictConfig) -> Parts:
    """Set torch's CPU threads to ``cfg.threads`` (null: ``OMP_NUM_THREADS`` if set, else :func:`idle_cores`),
    seed everything with ``cfg.seed``
    (0 included), then instantiate data, model and Trainer.

    The Trainer gets the ``callbacks`` (those set to null left out) and ``logger`` groups, and
    :func:`accelerator`'s device. The data folder is anchored at the launch folder
    (:func:`~pairmnist.jobs.config.launch_path`).
    """
    if cfg.get("threads") or "OMP_NUM_THREADS" not in os.environ:  # the environment's count stands, if set
        torch.set_num_threads(cfg.get("threads") or idle_cores())
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data, seed=cfg.seed, data_dir=str(launch_path(cfg, cfg.paths.data_dir)))
    module = instantiate(cfg.model.module)
    callbacks = [instantiate(c) for c in cfg.get("callbacks", {}).values() if c is not None]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    device = accelerator(cfg.trainer.accelerator)
    trainer = instantiate(cfg.trainer, accelerator=device, callbacks=callbacks, logger=logger)
    return Parts(datamodule, module, trainer)


def _progress(trainer: pl.Trainer) -> str:
    """Where a job stood when it was stopped: ``at epoch 3 of 50`` (counted from 1), or testing."""
    if trainer.state.fn == TrainerFn.TESTING:
        return f"while testing, after epoch {trainer.current_epoch}"
    return f"at epoch {min(trainer.current_epoch + 1, trainer.max_epochs)} of {trainer.max_epochs}"


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit and test one model as the config says; return the metrics.json record.

    Everything random (pairs, shuffling, weight init) follows ``cfg.seed``; seed 0 is a seed.

    Returns:
        dict with :data:`pairmnist.record.METRICS_KEYS` and more: accuracies are fractions in [0, 1],
        ``fit_seconds`` is wall-clock seconds of ``Trainer.fit``, ``history`` holds one
        value per epoch of train_loss, train_acc, val_loss, val_acc.

    Raises:
        Interrupted: SIGINT or SIGTERM inside :func:`~pairmnist.jobs.signals.stop_job`, its
            ``where`` set to the epoch under way (after Lightning's own interrupt handling).
    """
    datamodule, module, trainer = build(cfg)
    n_params = sum(p.numel() for p in module.net.parameters())
    log.info(
        "training %s, seed %d, %s parameters, max_epochs %d, on %s, in %s",
        _choice("model") or type(module.net).__name__,
        cfg.seed,
        f"{n_params:,}",
        trainer.max_epochs,
        trainer.strategy.root_device,
        cfg.paths.output_dir,
    )
    try:
        start = time.perf_counter()
        trainer.fit(module, datamodule=datamodule)
        fit_seconds = time.perf_counter() - start
        (tested,) = trainer.test(module, datamodule=datamodule, verbose=False)
    except Interrupted as e:
        e.where = _progress(trainer)
        raise

    config = study_config(cfg)
    record = {
        "model": _choice("model"),
        "seed": cfg.seed,
        "identity": identity_id(config),
        **trained_hyperparameters(config),
        "n_params": n_params,
        "n_pairs": datamodule.n_pairs,
        "n_test_pairs": len(datamodule.test.target),
        "epochs": trainer.current_epoch,
        "test_acc": fraction(tested["test/acc"]),
        "test_loss": tested["test/loss"],
        "test_digit_acc": fraction(tested.get("test/digit_acc")),
        "val_acc": fraction(module.validated.get("val/acc")),
        "val_loss": module.validated.get("val/loss"),
        "val_digit_acc": fraction(module.validated.get("val/digit_acc")),
        "val_epoch": module.validated.get("epoch"),  # the epoch the val_* figures come from
        "fit_seconds": fit_seconds,
        "history": {k: [fraction(v) if k.endswith("acc") else v for v in vs] for k, vs in module.history.items()},
        "device": str(trainer.strategy.root_device),
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "overrides": list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else [],
        "config": config,
    }
    if record["val_epoch"] != record["epochs"]:  # max_steps, check_val_every_n_epoch: say it, never hide it
        last = "no epoch" if record["val_epoch"] is None else f"epoch {record['val_epoch']}"
        log.warning("the final model (epoch %d) was not validated: val_* come from %s", record["epochs"], last)
    if isinstance(trainer.logger, TensorBoardLogger):  # the HPARAMS tab: what identifies the job, against results
        hparams = {"model_name": record["model"], "seed": cfg.seed, **identity(config)}  # Lightning flattens it
        results = {f"hp/{k}": record[k] for k in ("val_acc", "test_acc") if record[k] is not None}
        trainer.logger.log_hyperparams(hparams, results)
        trainer.logger.finalize("success")
    return record


def completed(output_dir: Path, cfg: DictConfig) -> dict[str, Any] | None:
    """The stored record of a finished job with the same identity and seed, else None.

    The identity (:mod:`pairmnist.record`) is recomputed from the stored config, so a
    record made before the identity existed resumes too when its config is the same.
    """
    try:
        record = load_record(output_dir)
    except JobNotDone:
        return None
    same = record["config"].get("seed") == cfg.seed and identity_id(record["config"]) == identity_id(study_config(cfg))
    return record if same else None


def _multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _failed(out: Path, error: BaseException, status: int | None = None) -> None:
    """Record a job that did not finish: ``error.txt`` (the one-line message, then the traceback).

    In a multirun, log it and return (the sweep goes on, the report names the job). In a single
    run, stop the command: exit ``status`` after printing the line, or (``status`` None) raise
    :class:`JobFailed` with it, which Hydra prints and ends with exit status 1.
    """
    message = f"{type(error).__name__}: {' '.join(str(error).split())}"
    write_text(out / ERROR_FILE, f"{message}\n\n{traceback.format_exc()}")
    if _multirun():
        log.error("job %s failed: %s", out.name, message)
        return None
    line = f"{message} (traceback: {out / ERROR_FILE})"
    if status is None:
        raise JobFailed(line) from error
    print(line, file=sys.stderr, flush=True)
    raise SystemExit(status)


def run_job(cfg: DictConfig) -> float | None:
    """Hydra task: validate, then resume or train, then write ``metrics.json`` atomically.

    SIGINT and SIGTERM stop the job until its result is complete (:func:`~pairmnist.jobs.signals.stop_job`);
    ``error.txt`` then starts with e.g. ``Interrupted: SIGTERM at epoch 3 of 50``. In a multirun,
    a job that starts after a signal stops at once the same way (``... before training``).

    Returns:
        The final validation accuracy (fraction), for sweepers; None for a failed or
        interrupted job of a multirun (its ``error.txt`` holds the message).

    Raises:
        JobFailed: in a single run, whatever failed, as one line (a multirun records it in
            ``error.txt`` and goes on). ``error.txt`` starts with that line, then the traceback.
        SystemExit: a single run stopped by a signal, with status 128 + the signal's number
            (130 SIGINT, 143 SIGTERM), after printing that line.
    """
    out = Path(cfg.paths.output_dir)
    try:
        with stop_job():
            validate(cfg)
            if cfg.resume and (record := completed(out, cfg)) is not None:
                log.info("resume: %s already finished (test_acc %.4f), not retrained", out.name, record["test_acc"])
                return record["val_acc"]
            for stale in out.glob("events.out.tfevents.*"):  # a previous attempt's curves would mix with these
                stale.unlink()
            record = train(cfg)
        write_record(out, record)
        (out / ERROR_FILE).unlink(missing_ok=True)
        log.info(
            "%s: test_acc %.4f, val_acc %s, epochs %d, fit %.1f s",
            out.name,
            record["test_acc"],
            "none (not validated)" if record["val_epoch"] is None else f"{record['val_acc']:.4f}",
            record["epochs"],
            record["fit_seconds"],
        )
        return record["val_acc"]
    except Interrupted as e:
        return _failed(out, e, exit_status(e.signal))
    except Exception as e:
        return _failed(out, e)
