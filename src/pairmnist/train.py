"""One job of the study, top to bottom: config -> checked -> instantiated -> fit -> test -> ``metrics.json``.

:func:`main` is the Hydra task of ``src/run.py``. It checks the config (:mod:`pairmnist.jobs.config`),
returns a finished job's stored result when ``resume=true`` finds one of the same identity and
seed, else trains and tests (:func:`train`) and writes the record (:mod:`pairmnist.record`). A
job that fails writes ``error.txt`` (the one-line message, then the traceback): in a multirun
the sweep goes on and the report names it; a single run ends with that line and exit status 1,
or 130/143 when stopped by SIGINT/SIGTERM (:mod:`pairmnist.jobs.signals`).
"""

from __future__ import annotations

import logging
import math
import os
import platform
import signal
import sys
import time
import traceback
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import ProgressBar, TQDMProgressBar
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities.exceptions import SIGTERMException

from pairmnist.jobs import signals
from pairmnist.jobs.config import check, launch_path
from pairmnist.jobs.signals import Interrupted, exit_status, stop_job
from pairmnist.record import (
    DISPLAY_ONLY_CALLBACKS,
    ERROR_FILE,
    STUDY_KEYS,
    JobNotDone,
    fraction,
    identity,
    identity_id,
    load_record,
    trained_hyperparameters,
    write_error,
    write_record,
)

log = logging.getLogger(__name__)
# Lightning's INFO notices (accelerators found, a cloud-logger tip, "max_epochs reached"): the job says its own.
logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
# pytorch-lightning 2.6 calls a torch.utils._pytree API that torch 2.14 deprecates; nothing a user can act on.
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
# Batches are slices of in-memory tensors: DataLoader workers would have nothing to do (data.num_workers is 0).
warnings.filterwarnings("ignore", message=r"The '\w+' does not have many workers")


def main(cfg: DictConfig) -> float | None:
    """Hydra task: one run, or one per seed of ``tuning_seeds`` (a search's trial, in ``seed<N>/`` sub-folders).

    An ``error.txt`` an earlier attempt left in the job's folder (a killed worker's) is removed first.

    Returns:
        The final validation accuracy (fraction); for tuning seeds their mean (the search's
        objective; test accuracy never enters it); None when a run failed or diverged.
    """
    (Path(cfg.paths.output_dir) / ERROR_FILE).unlink(missing_ok=True)
    if not cfg.get("tuning_seeds"):
        return run(cfg)
    values = [run(tuning_run(cfg, Path(cfg.paths.output_dir), seed)) for seed in cfg.tuning_seeds]
    return None if any(v is None or not math.isfinite(v) for v in values) else sum(values) / len(values)


def tuning_run(cfg: DictConfig, trial_dir: Path, seed: int) -> DictConfig:
    """A search trial's run of tuning seed ``seed``: the trial's config, that seed, ``<trial_dir>/seed<seed>/``."""
    one = cfg.copy()
    with open_dict(one):
        one.seed = int(seed)
        one.paths.output_dir = str(trial_dir / f"seed{seed}")
    return one


def run(cfg: DictConfig) -> float | None:
    """Check, then resume or train, then write ``metrics.json`` atomically; a failure writes ``error.txt``.

    Returns:
        The final validation accuracy (fraction); None for a failed job of a multirun.

    Raises:
        SystemExit: a single run that failed, after printing its one line: status 1, or 128 + the
            signal's number when stopped by one (130 SIGINT, 143 SIGTERM).
    """
    out = Path(cfg.paths.output_dir)
    try:
        with stop_job():
            check(cfg)
            if cfg.resume and (record := completed(out, cfg)) is not None:
                log.info(
                    "resume: %s already finished (test_acc %.4f), not retrained", job_label(out), record["test_acc"]
                )
                return record["val_acc"]
            for stale in out.glob("events.out.tfevents.*"):  # a previous attempt's curves would mix with these
                stale.unlink()
            record = train(cfg)
        write_record(out, record)
        (out / ERROR_FILE).unlink(missing_ok=True)
        validated = "none (not validated)" if record["val_epoch"] is None else f"{record['val_acc']:.4f}"
        log.info(
            "%s: test_acc %.4f, val_acc %s, epochs %d, fit %.1f s",
            job_label(out),
            record["test_acc"],
            validated,
            record["epochs"],
            record["fit_seconds"],
        )
        return record["val_acc"]
    except Interrupted as e:
        return failed(out, e, exit_status(e.signal))
    except Exception as e:
        return failed(out, e)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Instantiate data, model and Trainer from the config, fit, test; return the metrics.json record.

    Returns:
        dict with :data:`pairmnist.record.METRICS_KEYS` and more: accuracies are fractions in [0, 1],
        ``fit_seconds`` is wall-clock seconds of ``Trainer.fit``, ``history`` holds one value per
        epoch of train_loss, train_acc, val_loss, val_acc.

    Raises:
        Interrupted: SIGINT or SIGTERM, its ``where`` set to the epoch under way.
    """
    datamodule, module, trainer = build(cfg)
    n_params = sum(p.numel() for p in module.net.parameters())
    model = HydraConfig.get().runtime.choices.get("model") if HydraConfig.initialized() else None
    log.info(
        "training %s, seed %d, %s parameters, max_epochs %d, on %s, in %s",
        model or type(module.net).__name__,
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
    except (Interrupted, SIGTERMException):  # at a safe point: Lightning's SIGTERM check, or StopOnSignal
        epoch = min(trainer.current_epoch + 1, trainer.max_epochs)
        where = f"at epoch {epoch} of {trainer.max_epochs}"
        if trainer.state.fn == TrainerFn.TESTING:
            where = f"while testing, after epoch {trainer.current_epoch}"
        raise Interrupted(signals.received() or signal.SIGTERM, where) from None

    config = study_config(cfg)
    validated = module.validated
    record = {
        "model": model,
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
        "val_acc": fraction(validated.get("val/acc")),
        "val_loss": validated.get("val/loss"),
        "val_digit_acc": fraction(validated.get("val/digit_acc")),
        "val_epoch": validated.get("epoch"),  # the epoch the val_* figures come from
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
    if isinstance(trainer.logger, TensorBoardLogger):  # HPARAMS: what identifies the job (flattened), and results
        results = {f"hp/{k}": record[k] for k in ("val_acc", "test_acc") if record[k] is not None}
        trainer.logger.log_hyperparams({"model_name": model, "seed": cfg.seed, **identity(config)}, results)
        trainer.logger.finalize("success")
    return record


def build(cfg: DictConfig) -> tuple[pl.LightningDataModule, pl.LightningModule, pl.Trainer]:
    """Set torch's CPU threads, seed everything, instantiate the datamodule, the LightningModule and the Trainer.

    Everything random (pairs, shuffling, weight init) follows ``cfg.seed``; seed 0 is a seed.
    Threads: ``cfg.threads``; null: ``OMP_NUM_THREADS`` if set, else one per idle core
    (:func:`idle_cores`). The Trainer gets the ``callbacks`` (null ones left out), the ``logger``
    and :func:`accelerator`'s device; the data folder is anchored at the launch folder.
    """
    omp = os.environ.get("OMP_NUM_THREADS", "").split(",")[0]  # set after torch was imported (a forked job)
    torch.set_num_threads(cfg.get("threads") or (int(omp) if omp.isdigit() else 0) or idle_cores())
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data, seed=cfg.seed, data_dir=str(launch_path(cfg, cfg.paths.data_dir)))
    module = instantiate(cfg.model.module)
    callbacks = [instantiate(c) for c in cfg.get("callbacks", {}).values() if c is not None] + [StopOnSignal()]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    trainer = instantiate(
        cfg.trainer, accelerator=accelerator(cfg.trainer.accelerator), callbacks=callbacks, logger=logger
    )
    return datamodule, module, trainer


def study_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved keys that decide a job's result, as plain data: ``seed``, :data:`~pairmnist.record.STUDY_KEYS`,
    and ``callbacks`` when one that can change the numbers is configured (display-only ones are
    not even resolved: their folders name the job's own, known only inside Hydra's job)."""
    study = {"seed": cfg.seed, **{k: OmegaConf.to_container(cfg[k], resolve=True) for k in STUDY_KEYS if k in cfg}}
    callbacks = {
        name: OmegaConf.to_container(node, resolve=True)
        for name, node in (cfg.get("callbacks") or {}).items()
        if node is not None and node.get("_target_") not in DISPLAY_ONLY_CALLBACKS
    }
    return {**study, "callbacks": callbacks} if callbacks else study


def completed(out: Path, cfg: DictConfig) -> dict[str, Any] | None:
    """The stored record in ``out`` of a finished job with the same identity and seed, else None."""
    try:
        record = load_record(out)
    except JobNotDone:
        return None
    same = record["config"].get("seed") == cfg.seed and identity_id(record["config"]) == identity_id(study_config(cfg))
    return record if same else None


def failed(out: Path, error: BaseException, status: int = 1) -> None:
    """Write ``error.txt``; in a multirun log the line and return (the sweep goes on), in a single run
    end the command: print the line (and where the traceback is) and exit ``status``. When even
    ``error.txt`` cannot be written (a full disk), the line says so and is all that is left."""
    message = f"{type(error).__name__}: {' '.join(str(error).split())}"
    try:
        write_error(out, message, traceback.format_exc())
        where = f" (traceback: {out / ERROR_FILE})"
    except OSError as e:
        message += f" ({ERROR_FILE} not written: {e.strerror or e})"
        where = ""
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        log.error("job %s failed: %s", job_label(out), message)
        return None
    print(f"{message}{where}", file=sys.stderr, flush=True)
    raise SystemExit(status)


def job_label(out: Path) -> str:
    """How log lines name the job in ``out``: its folder's name, or for a search trial's run ``<trial>/seed<N>``."""
    job = Path(
        OmegaConf.select(HydraConfig.get(), "runtime.output_dir", default=out) if HydraConfig.initialized() else out
    )
    return f"{job.name}/{out.relative_to(job).as_posix()}" if job in out.parents else out.name


def accelerator(name: str) -> str:
    """``trainer.accelerator`` as the Trainer gets it: ``auto`` is CUDA when there is a GPU, else the CPU.

    Lightning's own ``auto`` would also pick Apple's MPS, which this project has not been run on;
    ``mps`` is there for whoever asks for it by name. Other names pass unchanged.
    """
    if name != "auto":
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else ``platform.processor()``, else the machine type.

    Stored with every result: numbers are bitwise reproducible on one CPU model and thread count.
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def idle_cores(window: float = 0.2) -> int:
    """The CPU cores idle now, measured over ``window`` seconds (``/proc/stat``), at least 1.

    On a busy machine PyTorch's threads spin against the other work: one thread per idle core
    is never much slower than the best fixed count, idle or busy (benchmarks/README.md).
    Without ``/proc/stat``: every core.
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


class StopOnSignal(pl.Callback):
    """Stop a job at the first batch boundary after SIGINT or SIGTERM (:func:`pairmnist.jobs.signals.check`)."""

    def on_train_batch_start(self, *args: Any) -> None:
        signals.check()

    on_validation_batch_start = on_test_batch_start = on_train_batch_start


class FinalCheckpoint(pl.Callback):
    """Save ``<dirpath>/final.ckpt`` (weights, optimizer and loop state) when training ends.

    The study keeps only the final model, never a "best epoch"; after any weight average has
    been copied in (``on_train_end``). Lightning's save is atomic (a temporary file, then a move).
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.path = Path(dirpath) / "final.ckpt"

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)


class EpochLines(ProgressBar):
    """Progress as log lines (``epoch 5/25: train/acc 0.8120, ...``) every ``every_n_epochs`` epochs and
    at the end, for a console that is not a terminal (a log file), where a redrawn bar would leave
    every redraw behind. The previous epoch's metrics are logged after every callback's epoch end,
    so each is shown when the next epoch starts."""

    def __init__(self, every_n_epochs: int = 5) -> None:
        super().__init__()
        self.every_n_epochs = every_n_epochs

    def disable(self) -> None:
        pass

    def enable(self) -> None:
        pass

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch % self.every_n_epochs == 0 and trainer.current_epoch:
            self.show(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.show(trainer, pl_module)  # the last epoch: never shown yet, no epoch starts after it

    def show(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in sorted(self.get_metrics(trainer, pl_module).items()))
        job = Path(trainer.log_dir or trainer.default_root_dir).name  # jobs side by side: whose line it is
        log.info("%s: epoch %d/%d: %s", job, trainer.current_epoch, trainer.max_epochs, metrics)


def progress_bar(refresh_rate: int = 10, every_n_epochs: int = 5) -> ProgressBar:
    """Lightning's bar on a terminal (``refresh_rate`` batches between redraws); :class:`EpochLines` otherwise."""
    return TQDMProgressBar(refresh_rate) if sys.stdout.isatty() else EpochLines(every_n_epochs)
