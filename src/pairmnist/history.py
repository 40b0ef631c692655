"""``EpochHistory``: the per-epoch curves that go into metrics.json."""

from __future__ import annotations

import pytorch_lightning as pl

HISTORY_KEYS = ("train/loss", "train/acc", "val/loss", "val/acc")


class EpochHistory(pl.Callback):
    """Record ``train/loss``, ``train/acc``, ``val/loss`` and ``val/acc`` once per training epoch.

    ``history`` maps ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc`` to lists of
    floats, one per epoch; accuracies are fractions in [0, 1] (rounded to 6 decimals, which
    removes float32 noise: 0.915, not 0.9150000214576721). Lightning calls
    ``on_train_epoch_end`` after the epoch's validation pass, so both are complete there.
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {k.replace("/", "_"): [] for k in HISTORY_KEYS}

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        for key in HISTORY_KEYS:
            value = trainer.callback_metrics.get(key)
            value = float("nan") if value is None else value.item()
            self.history[key.replace("/", "_")].append(round(value, 6) if key.endswith("acc") else value)
