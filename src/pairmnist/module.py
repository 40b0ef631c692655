"""``PairModule``: the LightningModule that trains any net of :mod:`pairmnist.nets`."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy


def pair_loss(
    logits: torch.Tensor,
    digits: torch.Tensor | None,
    target: torch.Tensor,
    classes: torch.Tensor,
    aux_weight: float,
) -> torch.Tensor:
    """(1 - w) * CE(logits, target) + w * (CE(digit 1) + CE(digit 2)) / 2, with w = ``aux_weight``.

    The original report's loss (STUDY.md). Cross-entropies are batch means; the mean over
    the 2B digit predictions equals the average of the two digits' losses.

    Args:
        logits: (B, 2) float32 comparison logits.
        digits: (B, 2, 10) float32 digit logits, or None for a net without digit outputs.
        target: (B,) int64 comparison target.
        classes: (B, 2) int64 digit classes.
        aux_weight: w in [0, 1].

    Returns:
        () float32 loss.

    Raises:
        ValueError: ``aux_weight`` > 0 without digit logits.
    """
    loss = F.cross_entropy(logits, target)
    if aux_weight == 0:
        return loss
    if digits is None:
        raise ValueError(f"model.aux_weight={aux_weight}: this net has no digit outputs, use 0")
    aux = F.cross_entropy(digits.reshape(-1, digits.shape[-1]), classes.reshape(-1))
    return (1 - aux_weight) * loss + aux_weight * aux


def predict(logits: torch.Tensor) -> torch.Tensor:
    """(B, 2) comparison logits -> (B,) int64: 1 when logit 1 >= logit 0 (ties count as 1)."""
    return (logits[:, 1] >= logits[:, 0]).long()


class PairModule(pl.LightningModule):
    """Trains a pair net with the auxiliary loss (:func:`pair_loss`) and Adam.

    Logs per epoch ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc`` and, for nets
    with digit outputs, ``val/digit_acc``; after testing ``test/loss``, ``test/acc`` and
    ``test/digit_acc``. Accuracies are fractions in [0, 1]. A non-finite training loss stops
    the run with ``FloatingPointError`` at the end of its epoch.

    Args:
        net: a net of :mod:`pairmnist.nets` (not stored in the hyperparameters: pass it
            again to ``load_from_checkpoint``).
        lr: Adam learning rate.
        aux_weight: weight w of the auxiliary digit loss, in [0, 1].
    """

    def __init__(self, net: nn.Module, lr: float = 1e-3, aux_weight: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net"])
        self.net = net
        self.lr, self.aux_weight = lr, aux_weight
        self.metrics = nn.ModuleDict(
            {f"{s}_acc": MulticlassAccuracy(2, average="micro") for s in ("train", "val", "test")}
            | {f"{s}_digit_acc": MulticlassAccuracy(10, average="micro") for s in ("val", "test")}
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, 2, 14, 14) float32 -> ((B, 2) comparison logits, (B, 2, 10) digit logits or None)."""
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, ...], stage: str) -> torch.Tensor:
        x, target, classes = batch
        logits, digits = self.net(x)
        loss = pair_loss(logits, digits, target, classes, self.aux_weight)
        acc = self.metrics[f"{stage}_acc"]
        acc(predict(logits), target)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, batch_size=len(x))
        self.log(f"{stage}/acc", acc, on_step=False, on_epoch=True)
        if digits is not None and stage != "train":
            digit_acc = self.metrics[f"{stage}_digit_acc"]
            digit_acc(digits.reshape(-1, digits.shape[-1]).argmax(-1), classes.reshape(-1))
            self.log(f"{stage}/digit_acc", digit_acc, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def on_train_epoch_end(self) -> None:
        """Stop the run when the epoch's training loss is NaN or infinite (diverged).

        Raises:
            FloatingPointError: naming the epoch and ``model.lr``.
        """
        loss = self.trainer.callback_metrics.get("train/loss")
        if loss is not None and not torch.isfinite(loss):
            raise FloatingPointError(
                f"train/loss is {loss.item()} at epoch {self.current_epoch}: training diverged (model.lr={self.lr})"
            )

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)
