"""``PairModule``: the LightningModule that trains any net of :mod:`pairmnist.models.nets`."""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.functional.classification import multiclass_accuracy


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

    Per epoch it computes ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc`` and, for
    nets with digit outputs, ``val/digit_acc``; after testing ``test/loss``, ``test/acc`` and
    ``test/digit_acc``. Losses are means over the epoch's pairs, accuracies fractions in
    [0, 1] (torchmetrics). Steps only keep their detached outputs; the metrics are computed
    once at epoch end and written straight to the Trainer's loggers (x-axis: epoch), because
    ``self.log`` costs about 1 ms a metric in Lightning's bookkeeping, 0.1 s of a 1-second
    run (benchmarks/README.md). So they are not in ``trainer.callback_metrics``: the study
    trains a fixed number of epochs and never monitors a metric to stop or pick a model.

    ``results[stage]`` holds the last epoch's values of a stage as floats; ``history`` the
    values of train_loss, train_acc, val_loss and val_acc, one per epoch. A non-finite
    training loss stops the run with ``FloatingPointError``.

    Args:
        net: a net of :mod:`pairmnist.models.nets` (not stored in the hyperparameters: pass it
            again to ``load_from_checkpoint``).
        lr: Adam learning rate (the peak rate with ``schedule="onecycle"``).
        aux_weight: weight w of the auxiliary digit loss, in [0, 1].
        weight_decay: decoupled weight decay (AdamW) when > 0; 0 is plain Adam.
        schedule: None (constant rate, the original report) or ``"onecycle"`` (PyTorch's
            ``OneCycleLR`` over all training steps: warm-up then cosine annealing).

    Raises:
        ValueError: unknown ``schedule``.
    """

    SCHEDULES = (None, "onecycle")

    def __init__(
        self,
        net: nn.Module,
        lr: float = 1e-3,
        aux_weight: float = 0.0,
        weight_decay: float = 0.0,
        schedule: str | None = None,
    ) -> None:
        super().__init__()
        if schedule not in self.SCHEDULES:
            raise ValueError(f"model.module.schedule={schedule!r}: allowed null, onecycle")
        self.save_hyperparameters(ignore=["net"])
        self.net = net
        self.lr, self.aux_weight, self.weight_decay, self.schedule = lr, aux_weight, weight_decay, schedule
        self.outputs: dict[str, list[tuple[torch.Tensor, ...]]] = {"train": [], "val": [], "test": []}
        self.results: dict[str, dict[str, float]] = {}
        self.history: dict[str, list[float]] = {k: [] for k in ("train_loss", "train_acc", "val_loss", "val_acc")}

    def setup(self, stage: str) -> None:
        """On the CPU, move the net's convolution weights to channels-last memory format.

        The activations follow the weights, and PyTorch's CPU max-pooling is about 10 times
        faster on channels-last tensors, a whole training step about 2 times
        (benchmarks/README.md); same layers, same numbers, only the memory layout differs.
        Other devices keep the default layout, which is what they are tested with (a
        channels-last max-pooling backward has crashed on Apple's MPS).
        """
        if self.device.type == "cpu":
            self.net.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, 2, 14, 14) float32 -> ((B, 2) comparison logits, (B, 2, 10) digit logits or None)."""
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, ...], stage: str) -> torch.Tensor:
        x, target, classes = batch
        logits, digits = self.net(x)
        loss = pair_loss(logits, digits, target, classes, self.aux_weight)
        digit_pred = None if digits is None or stage == "train" else digits.argmax(-1)
        self.outputs[stage].append((loss.detach() * len(x), predict(logits), target, digit_pred, classes))
        return loss

    def _epoch_metrics(self, stage: str) -> dict[str, float]:
        """Compute, log and forget the epoch's ``<stage>/loss``, ``/acc`` and ``/digit_acc``."""
        loss_sums, preds, targets, digit_preds, classes = zip(*self.outputs[stage], strict=True)
        self.outputs[stage].clear()
        preds, targets = torch.cat(preds), torch.cat(targets)
        metrics = {
            f"{stage}/loss": torch.stack(loss_sums).sum() / len(targets),
            f"{stage}/acc": multiclass_accuracy(preds, targets, 2, average="micro", validate_args=False),
        }
        if digit_preds[0] is not None:
            metrics[f"{stage}/digit_acc"] = multiclass_accuracy(
                torch.cat(digit_preds).flatten(), torch.cat(classes).flatten(), 10, average="micro", validate_args=False
            )
        values = {k: v.item() for k, v in metrics.items()}
        if self.trainer.sanity_checking:
            return values
        for logger in self.loggers:
            logger.log_metrics(values, step=self.current_epoch)
        self.results[stage] = values
        if stage != "test":
            for key in (f"{stage}/loss", f"{stage}/acc"):
                self.history[key.replace("/", "_")].append(values[key])
        return values

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def on_train_epoch_end(self) -> None:
        """Log the training metrics; stop when the loss is NaN or infinite (diverged).

        Raises:
            FloatingPointError: naming the epoch and ``model.lr``.
        """
        loss = self._epoch_metrics("train")["train/loss"]
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"train/loss is {loss} at epoch {self.current_epoch}: training diverged (model.lr={self.lr})"
            )

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self._step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._epoch_metrics("val")

    def test_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self._step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._epoch_metrics("test")

    def configure_optimizers(self) -> torch.optim.Optimizer | dict:
        if self.weight_decay > 0:
            optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        else:
            optimizer = torch.optim.Adam(self.parameters(), lr=self.lr)
        if self.schedule is None:
            return optimizer
        steps = int(self.trainer.estimated_stepping_batches)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.lr, total_steps=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
