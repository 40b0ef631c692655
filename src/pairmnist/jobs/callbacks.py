"""Lightning callbacks of a job: the final checkpoint and the progress display."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar, TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm

from pairmnist.atomic import atomic_path

log = logging.getLogger(__name__)


class FinalCheckpoint(pl.Callback):
    """Write ``<dirpath>/<filename>`` (a full Lightning checkpoint) when training ends, atomically.

    The study keeps only the final model (never a "best epoch" chosen on any data), so this
    replaces ``ModelCheckpoint``, whose per-epoch bookkeeping costs about 1 ms an epoch
    (benchmarks/README.md). The checkpoint is a full one (weights, optimizer and loop state),
    so training can go on from it. Reload with :func:`pairmnist.jobs.load.load_job`.

    Args:
        dirpath: folder of the checkpoint (created if needed).
        filename: file name; ``final.ckpt``.
    """

    def __init__(self, dirpath: str | Path, filename: str = "final.ckpt") -> None:
        self.path = Path(dirpath) / filename

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        with atomic_path(self.path) as tmp:  # a job stopped meanwhile leaves no half checkpoint
            trainer.save_checkpoint(tmp, weights_only=False)


class TrainingProgressBar(TQDMProgressBar):
    """The epoch bar, with the epoch's losses and accuracies; no validation or test bar.

    Validation and test are one large batch each (``data.eval_batch_size``), so their bars
    would only flash "1/1", and creating and closing the validation bar every epoch costs
    more than the pass's bookkeeping (about 2 ms an epoch, benchmarks/README.md).
    ``Trainer.validate`` keeps its bar.
    """

    def init_validation_tqdm(self) -> Tqdm:
        if self.trainer.state.fn == "fit":
            return Tqdm(disable=True)
        return super().init_validation_tqdm()

    def init_test_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The module logs the training metrics after the bar's own end-of-epoch update: show the last epoch's.
        self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))
        super().on_train_end(trainer, pl_module)


class EpochLines(ProgressBar):
    """Progress as log lines: ``epoch 5/25: train/loss 0.4123, train/acc 0.8120, ...``.

    One line every ``every_n_epochs`` epochs and one for the last epoch, with the metrics
    the module shows in the progress bar, through the ``logging`` module (so also in the
    job's ``run.log``). Made for a console that is not a terminal (a log file), where a
    redrawn bar would leave hundreds of partial lines.

    Args:
        every_n_epochs: epochs between lines; 5.
    """

    def __init__(self, every_n_epochs: int = 5) -> None:
        super().__init__()
        self.every_n_epochs = every_n_epochs
        self._enabled = True
        self._last_shown = 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_shown = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The previous epoch's training metrics are logged by the module after every callback's
        # on_train_epoch_end, so each epoch is shown when the next one starts, or training ends.
        if trainer.current_epoch % self.every_n_epochs == 0:
            self._show(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._show(trainer, pl_module)

    def _show(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        done = trainer.current_epoch  # epochs finished
        if not self._enabled or done in (0, self._last_shown):
            return
        self._last_shown = done
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in sorted(self.get_metrics(trainer, pl_module).items()))
        log.info("epoch %d/%d: %s", done, trainer.max_epochs, metrics)


def progress_bar(refresh_rate: int = 10, every_n_epochs: int = 5) -> ProgressBar:
    """The progress display of a job: a bar on a terminal, :class:`EpochLines` otherwise.

    Lightning's bars write to ``sys.stdout``; when it is not a terminal (a file, a pipe)
    a bar would leave every redraw in the output.

    Args:
        refresh_rate: batches between redraws of the bar (:class:`TrainingProgressBar`); 0: no bar.
        every_n_epochs: epochs between lines (:class:`EpochLines`).
    """
    if sys.stdout.isatty():
        return TrainingProgressBar(refresh_rate=refresh_rate)
    return EpochLines(every_n_epochs)
