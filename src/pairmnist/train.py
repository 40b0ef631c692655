"""One job of the study, top to bottom: config -> instantiated -> fit -> test -> ``metrics.json``.

:func:`main` is the Hydra task of ``src/run.py``. It returns a finished job's stored result
when ``resume=true`` finds one of the same identity and seed, else seeds everything,
instantiates the datamodule, the LightningModule and the Trainer (:func:`build`), trains and
tests (:func:`train`) and writes the record (:mod:`pairmnist.record`). A job that fails writes
``error.txt`` (the one-line message, :func:`explain`, then the traceback): in a multirun the
sweep goes on and the report names it; a single run ends with that line and exit status 1, or
130/143 when stopped by SIGINT/SIGTERM (:mod:`pairmnist.jobs.signals`). Before a command
starts, the Hydra callback runs :func:`check` on every job's config: the same instantiation.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import re
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
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import ProgressBar, TQDMProgressBar
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch.utils.tensorboard.summary import hparams as hparams_summary

from pairmnist.checks import MAX_SEED, BadValue, number, require
from pairmnist.jobs import signals
from pairmnist.jobs.signals import Interrupted, exit_status, stop_job
from pairmnist.record import (
    DISPLAY_ONLY_CALLBACKS,
    ERROR_FILE,
    STUDY_KEYS,
    JobNotDone,
    Record,
    flatten,
    fraction,
    identity,
    identity_id,
    load_record,
    short_names,
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
    """Resume or train, then write ``metrics.json`` atomically; a failure writes ``error.txt``.

    Returns:
        The final validation accuracy (fraction); None for a failed job of a multirun.

    Raises:
        SystemExit: a single run that failed, after printing its one line: status 1, or 128 + the
            signal's number when stopped by one (130 SIGINT, 143 SIGTERM).
    """
    out = Path(cfg.paths.output_dir)
    try:
        with stop_job():
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
        return failed(out, cfg, e, exit_status(e.signal))
    except Exception as e:
        return failed(out, cfg, e)


def train(cfg: DictConfig) -> Record:
    """Set torch's CPU threads, seed everything, instantiate (:func:`build`), fit, test; return the record.

    Threads: ``cfg.threads``; null: ``OMP_NUM_THREADS`` if set, else one per idle core
    (:func:`idle_cores`). Everything random (pairs, shuffling, weight init) follows ``cfg.seed``;
    seed 0 is a seed.

    Returns:
        The metrics.json record (:class:`pairmnist.record.Record`).

    Raises:
        Interrupted: SIGINT or SIGTERM, its ``where`` set to the epoch under way.
    """
    omp = os.environ.get("OMP_NUM_THREADS", "").split(",")[0]  # set after torch was imported (a forked job)
    torch.set_num_threads(cfg.get("threads") or (int(omp) if omp.isdigit() else 0) or idle_cores())
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule, module, trainer = build(cfg)
    n_params = sum(p.numel() for p in module.nets.parameters())
    model = HydraConfig.get().runtime.choices.get("model") if HydraConfig.initialized() else None
    log.info(
        "training %s, seed %d, %s parameters, max_epochs %d, on %s, in %s",
        model or type(module.nets[0]).__name__,
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
    record = Record(
        model=model,
        seed=cfg.seed,
        identity=identity_id(config),
        **trained_hyperparameters(config),
        n_params=n_params,
        n_pairs=datamodule.n_pairs,
        n_test_pairs=len(datamodule.test.target),
        epochs=trainer.current_epoch,
        test_acc=fraction(tested["test/acc"]),
        test_loss=tested["test/loss"],
        test_digit_acc=fraction(tested.get("test/digit_acc")),
        val_acc=fraction(validated.get("val/acc")),
        val_loss=validated.get("val/loss"),
        val_digit_acc=fraction(validated.get("val/digit_acc")),
        val_epoch=validated.get("epoch"),
        fit_seconds=fit_seconds,
        history={k: [fraction(v) if k.endswith("acc") else v for v in vs] for k, vs in module.history.items()},
        device=str(trainer.strategy.root_device),
        cpu=cpu_name(),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        python=platform.python_version(),
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        overrides=list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else [],
        config=config,
    )
    if record["val_epoch"] != record["epochs"]:  # max_steps, check_val_every_n_epoch: say it, never hide it
        last = "no epoch" if record["val_epoch"] is None else f"epoch {record['val_epoch']}"
        log.warning("the final model (epoch %d) was not validated: val_* come from %s", record["epochs"], last)
    if isinstance(trainer.logger, TensorBoardLogger):  # HPARAMS: what identifies the job, by short names, and results
        keys = flatten(identity(config))
        names = short_names(keys, taken=("model_name", "seed"))
        hparams = {"model_name": model, "seed": cfg.seed, **{names[k]: v for k, v in keys.items()}}
        results = {f"hp/{k}": record[k] for k in ("val_acc", "test_acc") if record[k] is not None}
        log_hparams(trainer.logger, hparams, results)
    return record


def log_hparams(logger: TensorBoardLogger, hparams: dict[str, Any], results: dict[str, float]) -> None:
    """TensorBoard's HPARAMS session of this job, without an experiment summary of its own.

    Lightning's ``log_hyperparams`` also writes an experiment summary (the columns), and TensorBoard
    shows the first one it finds: a sweep mixing shallow (no ``share_weights``) with the others
    would lose that column. Without one, TensorBoard builds the experiment from every job's
    session, so each key any job has is a column (tensorboard.plugins.hparams.backend_context).
    """
    shown = {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in hparams.items()}  # as Lightning
    _, session_start, session_end = hparams_summary(shown, results)
    writer = logger.experiment._get_file_writer()
    for summary in (session_start, session_end):
        writer.add_summary(summary)
    logger.log_metrics(results)
    logger.hparams.update(hparams)  # hparams.yaml, as log_hyperparams writes it
    logger.save()
    logger.finalize("success")


def build(cfg: DictConfig) -> tuple[pl.LightningDataModule, pl.LightningModule, pl.Trainer]:
    """Instantiate the datamodule, LightningModule and Trainer of ``cfg``; each constructor checks its arguments.

    The datamodule gets the job's ``seed`` and the data folder anchored at the launch folder
    (:func:`launch_path`); the Trainer the ``callbacks`` (null ones left out) and
    :class:`StopOnSignal`, the ``logger`` and :func:`accelerator`'s device.

    Raises:
        BadValue: also ``trainer.limit_<split>_batches`` 0 (the record needs every split).
        InstantiationException: Hydra's, around any constructor's error (:func:`explain` tells it in one line).
    """
    datamodule = instantiate(cfg.data, seed=cfg.seed, data_dir=str(launch_path(cfg, cfg.paths.data_dir)))
    module = instantiate(cfg.model)
    callbacks = [instantiate(c) for c in cfg.get("callbacks", {}).values() if c is not None] + [StopOnSignal()]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    devices = cfg.trainer.get("devices", "auto")
    allowed = "must be 1 (or auto on a machine with one device): this study trains one process per job"
    count = len(devices) if OmegaConf.is_list(devices) else devices
    require(count in (1, "1", "auto"), "trainer.devices", devices, allowed)
    trainer = instantiate(
        cfg.trainer, accelerator=accelerator(cfg.trainer.accelerator), callbacks=callbacks, logger=logger
    )
    for split in ("train", "val", "test"):
        limit = getattr(trainer, f"limit_{split}_batches")
        require(limit != 0, f"trainer.limit_{split}_batches", limit, "must be > 0: the record needs every split")
    require(trainer.num_devices == 1, "trainer.devices", devices, allowed)  # auto: every GPU
    return datamodule, module, trainer


def check(cfg: DictConfig) -> None:
    """Check a job without training it: the keys the job reads itself, then :func:`build` (nothing is loaded).

    The Hydra callback runs it on every job's config before a command starts, so a bad value
    stops the command before any job trains, with the line the job would have written.

    Raises:
        BadValue: ``tuning_seeds``, ``threads`` or ``resume`` not allowed; and see :func:`build`.
    """
    seeds = cfg.get("tuning_seeds")
    distinct = OmegaConf.is_list(seeds) and len(seeds) > 0 and len(set(seeds)) == len(seeds)
    allowed = f"must be null or a non-empty list of distinct seeds in [0, {MAX_SEED}], e.g. [1000,1001]"
    require(
        seeds is None or distinct and all(number(s, 0, MAX_SEED, True) for s in seeds), "tuning_seeds", seeds, allowed
    )
    threads = cfg.get("threads")
    require(
        threads is None or number(threads, 1, integer=True),
        "threads",
        threads,
        "must be null (measured) or an integer >= 1",
    )
    require(isinstance(cfg.get("resume"), bool), "resume", cfg.get("resume"), "must be true or false")
    build(cfg)


def explain(error: BaseException, cfg: DictConfig) -> str:
    """The one line a user sees for ``error``, raised while building or running the job of ``cfg``.

    A bad value (:class:`~pairmnist.checks.BadValue`) or an unknown key (a constructor's
    "unexpected keyword argument") is named by its full key: the first key under the config
    node that failed to instantiate that ends with the argument's name (``model.net.head=mlp:
    allowed: ...``, ``model.net.foo: unknown key: ...``); anything else is ``<type>: <message>``
    (of the cause, for Hydra's instantiation errors), on one line.
    """
    node = ""
    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        node = (re.findall(r"full_key: (\S+)", str(error)) or [node])[-1]
        error = error.__cause__
    unknown = re.search(r"unexpected keyword argument '(\w+)'", str(error)) if isinstance(error, TypeError) else None
    if not isinstance(error, BadValue) and not unknown:  # named by the node that failed to instantiate, if any
        return f"{node + ': ' if node else ''}{type(error).__name__}: {' '.join(str(error).split())}"
    name = error.key if isinstance(error, BadValue) else unknown[1]
    under = flatten(OmegaConf.to_container(OmegaConf.select(cfg, node) if node else cfg, resolve=False))
    key = next((f"{node}.{k}".strip(".") for k in under if f".{k}".endswith(f".{name}")), name)
    if isinstance(error, BadValue):
        return f"{key}={error.value}: {error.allowed}"
    return f"{key}: unknown key: {' '.join(str(error).split())}"


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


def failed(out: Path, cfg: DictConfig, error: BaseException, status: int = 1) -> None:
    """Write ``error.txt`` (:func:`explain`'s line, then the traceback); in a multirun log the line and
    return (the sweep goes on), in a single run end the command: print the line (and where the
    traceback is) and exit ``status``. When even ``error.txt`` cannot be written (a full disk), the
    line says so and is all that is left."""
    message = explain(error, cfg)
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


def launch_path(cfg: DictConfig, path: str | Path) -> Path:
    """``path`` anchored at the folder the command was started from (Hydra's ``runtime.cwd``).

    A relative ``paths.*`` value then names the same folder whatever the job's working folder
    (``hydra.job.chdir=true`` moves that into the job folder); an absolute path stays as it is.
    """
    if "hydra" in cfg:
        return Path(cfg.hydra.runtime.cwd, path)
    return Path(HydraConfig.get().runtime.cwd if HydraConfig.initialized() else os.getcwd(), path)


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
