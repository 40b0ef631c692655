"""A job folder back in memory: its trained module, and the datamodule of its seed.

    import pytorch_lightning as pl
    from pairmnist.jobs.load import load_job
    module, datamodule = load_job("outputs/multirun/<time>/siamese_seed3")
    pl.Trainer(logger=False).test(module, datamodule)  # [{"test/acc": ...}]

Both are rebuilt from the job's own config (``<job>/.hydra/config.yaml``, written by Hydra);
the weights come from ``<job>/checkpoints/final.ckpt``, read with torch's weights-only loader.
A search trial's folder holds one run per tuning seed, ``<trial>/seed<N>/`` (:func:`runs`); each
is a job folder here, with the trial's config and its own seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from pairmnist.record import fraction
from pairmnist.train import accelerator, tuning_run

CONFIG_FILE = Path(".hydra") / "config.yaml"
CHECKPOINT_FILE = Path("checkpoints") / "final.ckpt"


class NotAJob(Exception):
    """A folder that holds no trained job; the message is one line naming the folder."""


def job_config(folder: str | Path) -> DictConfig:
    """The config a job ran with (``<folder>/.hydra/config.yaml``); for a trial's ``seed<N>/`` run, the
    trial's config with that seed and folder (:func:`pairmnist.train.tuning_run`).

    Raises:
        NotAJob: the folder does not exist, or holds no job config.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotAJob(f"{folder}: does not exist" if not folder.exists() else f"{folder}: not a folder")
    if (folder / CONFIG_FILE).is_file():
        return OmegaConf.load(folder / CONFIG_FILE)
    if (folder.parent / CONFIG_FILE).is_file():  # a trial's run?
        trial = OmegaConf.load(folder.parent / CONFIG_FILE)
        seeds = {f"seed{s}": s for s in trial.get("tuning_seeds") or []}
        if folder.name in seeds:
            return tuning_run(trial, folder.parent, seeds[folder.name])
    raise NotAJob(f"{folder}: not a job folder (no {CONFIG_FILE})")


def runs(folder: str | Path) -> list[Path]:
    """The job folders in ``folder``: itself, or for a search trial its runs ``seed<N>/``, one per tuning seed.

    Raises:
        NotAJob: see :func:`job_config`.
    """
    seeds = job_config(folder).get("tuning_seeds")
    trial = seeds and (Path(folder) / CONFIG_FILE).is_file()
    return [Path(folder) / f"seed{s}" for s in seeds] if trial else [Path(folder)]


def load_job(folder: str | Path, seed: int | None = None) -> tuple[pl.LightningModule, pl.LightningDataModule]:
    """The trained module of a job folder, and the datamodule of its seed (or of ``seed``).

    The module is built from the job's ``model`` config and its weights loaded from the final
    checkpoint (on the CPU; a Trainer moves them). The
    datamodule draws the pairs of the job's seed, or of ``seed`` (same data settings); its
    MNIST cache is the job's ``paths.data_dir``, relative paths read from the current folder.

    Raises:
        NotAJob: no job config, or no checkpoint (the job did not finish training).
    """
    cfg = job_config(folder)
    checkpoint = Path(folder) / CHECKPOINT_FILE
    if not checkpoint.is_file():
        raise NotAJob(f"{folder}: no {CHECKPOINT_FILE} (the job did not finish training)")
    module = instantiate(cfg.model)
    module.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"])
    datamodule = instantiate(cfg.data, seed=cfg.seed if seed is None else seed, data_dir=cfg.paths.data_dir)
    return module, datamodule


def evaluate(folder: str | Path, seed: int | None = None, device: str = "auto") -> dict[str, Any]:
    """Test a job's trained model on the test pairs of its seed (or of ``seed``).

    Uses the job's own trainer settings (determinism) without logger, progress display or
    checkpoint, on ``device`` (``auto``: a CUDA GPU if this machine has one, else the CPU;
    or a Lightning accelerator name), whatever device the job trained on; on the job's own
    machine and device the result equals its metrics.json.

    Returns:
        ``seed``, ``n_pairs`` (test pairs) and the test metrics: ``test_acc`` and
        ``test_digit_acc`` (fractions rounded as in metrics.json; None for a net without
        digit outputs) and ``test_loss``.

    Raises:
        NotAJob: see :func:`load_job`.
    """
    module, datamodule = load_job(folder, seed)
    trainer = instantiate(
        job_config(folder).trainer,
        accelerator=accelerator(device),
        logger=False,
        callbacks=[],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    (tested,) = trainer.test(module, datamodule=datamodule, verbose=False)
    return {
        "seed": datamodule.seed,
        "n_pairs": datamodule.n_pairs,
        "test_acc": fraction(tested["test/acc"]),
        "test_digit_acc": fraction(tested.get("test/digit_acc")),
        "test_loss": tested["test/loss"],
    }
