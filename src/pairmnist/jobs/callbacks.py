"""Lightning callbacks of a job: the final checkpoint and a quieter progress bar."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm

from pairmnist.atomic import atomic_path


class FinalCheckpoint(pl.Callback):
    """Write ``<dirpath>/<filename>`` (a full Lightning checkpoint) when training ends, atomically.

    The study keeps only the final model (never a "best epoch" chosen on any data), so this
    replaces ``ModelCheckpoint``, whose per-epoch bookkeeping costs about 1 ms an epoch
    (benchmarks/README.md). Reload with ``pairmnist.jobs.load_job(job folder)``.

    Args:
        dirpath: folder of the checkpoint (created if needed).
        filename: file name; ``final.ckpt``.
    """

    def __init__(self, dirpath: str | Path, filename: str = "final.ckpt") -> None:
        self.path = Path(dirpath) / filename

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        with atomic_path(self.path) as tmp:  # a job stopped meanwhile leaves no half checkpoint
            trainer.save_checkpoint(tmp)


class TrainingProgressBar(TQDMProgressBar):
    """Epoch and test bars as usual; during ``fit`` the validation bar is disabled.

    Validation is one large batch per epoch (``data.eval_batch_size``), so its bar would
    only flash "1/1", and creating and closing it every epoch costs more than the pass's
    bookkeeping (about 2 ms an epoch, benchmarks/README.md). ``Trainer.validate`` keeps it.
    """

    def init_validation_tqdm(self) -> Tqdm:
        if self.trainer.state.fn == "fit":
            return Tqdm(disable=True)
        return super().init_validation_tqdm()
