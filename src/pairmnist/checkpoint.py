"""``FinalCheckpoint``: save the model once, after the last epoch."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl


class FinalCheckpoint(pl.Callback):
    """Write ``<dirpath>/<filename>`` (a full Lightning checkpoint) when training ends.

    The study keeps only the final model (never a "best epoch" chosen on any data), so this
    replaces ``ModelCheckpoint``, whose per-epoch bookkeeping costs about 1 ms an epoch
    (benchmarks/README.md). Reload with ``PairModule.load_from_checkpoint(path, net=...)``.

    Args:
        dirpath: folder of the checkpoint (created if needed).
        filename: file name; ``final.ckpt``.
    """

    def __init__(self, dirpath: str | Path, filename: str = "final.ckpt") -> None:
        self.path = Path(dirpath) / filename

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(self.path)
