"""``PairModule``: the LightningModule that trains any net of :mod:`pairmnist.models.nets`."""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import EMAWeightAveraging
from torch import nn
from torchmetrics.functional.classification import multiclass_accuracy

from pairmnist.checks import fraction, number, only, require

SCHEDULER_KEYS = ("interval", "frequency", "monitor", "strict", "name")  # Lightning's lr-scheduler settings


def pair_loss(
    logits: torch.Tensor,
    digits: torch.Tensor | None,
    target: torch.Tensor,
    classes: torch.Tensor,
    aux_weight: float,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """(1 - w) * CE(logits, target) + w * (CE(digit 1) + CE(digit 2)) / 2, with w = ``aux_weight``.

    The original report's loss (docs/STUDY.md). Cross-entropies are batch means; the mean over
    the 2B digit predictions equals the average of the two digits' losses.

    Args:
        logits: (B, 2) float32 comparison logits.
        digits: (B, 2, 10) float32 digit logits, or None for a net without digit outputs (then
            ``aux_weight`` must be 0).
        target: (B,) int64 comparison target.
        classes: (B, 2) int64 digit classes.
        aux_weight: w in [0, 1].
        label_smoothing: ε of the digit cross-entropies (targets (1 - ε) one-hot + ε / 10;
            Szegedy et al. 2016, "Rethinking the Inception architecture"); 0 is plain CE.

    Returns:
        () float32 loss.
    """
    loss = F.cross_entropy(logits, target)
    if aux_weight == 0:
        return loss
    aux = F.cross_entropy(digits.reshape(-1, digits.shape[-1]), classes.reshape(-1), label_smoothing=label_smoothing)
    return (1 - aux_weight) * loss + aux_weight * aux


def average(
    outputs: list[tuple[torch.Tensor, torch.Tensor | None]], head: nn.Module | None
) -> tuple[torch.Tensor, ...]:
    """An ensemble's prediction from its members' ``(comparison logits, digit logits)``; one member's unchanged.

    With digit outputs, the digits become the log of the members' mean digit probabilities, (B, 2, 10)
    float32. A head without parameters (digits, probabilistic: a function of the digit probabilities)
    then compares the averaged digits; any other head's comparison probabilities are averaged, as are
    those of a net without digit outputs: (B, 2) float32 log-probabilities (read like logits by
    :func:`predict`). Averaging probabilities, not logits, is the usual way to combine independently
    trained nets (Lakshminarayanan et al. 2017, "Simple and scalable predictive uncertainty estimation
    using deep ensembles").

    Args:
        outputs: K >= 1 pairs of (B, 2) float32 comparison logits and (B, 2, 10) float32 digit logits or None.
        head: the first member's comparison head (``net.head``), or None.
    """
    if len(outputs) == 1:
        return outputs[0]
    logits, digits = zip(*outputs, strict=True)

    def mean_log_prob(values: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return torch.stack([F.log_softmax(v, dim=-1) for v in values]).logsumexp(0) - math.log(len(values))

    if digits[0] is None:
        return mean_log_prob(logits), None
    mean_digits = mean_log_prob(digits)
    if head is not None and not any(True for _ in head.parameters()):
        return head(mean_digits), mean_digits
    return mean_log_prob(logits), mean_digits


def predict(logits: torch.Tensor) -> torch.Tensor:
    """(B, 2) comparison logits -> (B,) int64: 1 when logit 1 >= logit 0 (ties count as 1)."""
    return (logits[:, 1] >= logits[:, 0]).long()


class PairModule(pl.LightningModule):
    """Trains a pair net with the auxiliary loss (:func:`pair_loss`) and the configured optimizer.

    Per epoch it computes ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc`` and, for
    nets with digit outputs, ``val/digit_acc``; after testing ``test/loss``, ``test/acc`` and
    ``test/digit_acc``. Losses are means over the epoch's pairs, accuracies fractions in
    [0, 1] (torchmetrics). Steps only keep their detached outputs; the metrics are computed
    once at epoch end and logged there with ``self.log_dict``, so they reach
    ``trainer.callback_metrics``, the progress bar (losses and accuracies) and callbacks
    such as ``EarlyStopping`` or ``ModelCheckpoint(monitor="val/acc")``. Each log call also
    logs ``step`` = the epoch, which Lightning's loggers take as their x-axis.

    ``history`` holds the values of train_loss, train_acc, val_loss and val_acc as floats,
    one per epoch that ran them; ``validated`` the last validation's ``epoch`` (counted from 1)
    and metrics (``val/acc``, ...), empty before any.
    A non-finite training loss stops the run with ``FloatingPointError``.

    Args:
        net: makes the net, e.g. a net class of :mod:`pairmnist.models.nets` or a Hydra
            ``_partial_: true`` node; called once, here.
        optimizer: makes the optimizer from the parameters, e.g. ``functools.partial(torch.optim.Adam,
            lr=1e-3)`` (a ``_partial_: true`` config); its ``lr``, if given, must be > 0.
        scheduler: None (constant learning rate, the original report), or makes a
            learning-rate scheduler from the optimizer, stepped as ``scheduler_config`` says.
            If it takes a ``total_steps`` argument left unset (``OneCycleLR``), it gets the
            run's number of training steps (``trainer.estimated_stepping_batches``).
        scheduler_config: how Lightning steps the scheduler (:data:`SCHEDULER_KEYS`):
            ``interval`` (``epoch`` or ``step``), ``frequency`` (every that many intervals),
            ``monitor`` (the metric a ``ReduceLROnPlateau`` reads, e.g. ``val/loss``); None:
            Lightning's defaults, once per epoch.
        aux_weight: weight w of the auxiliary digit loss, in [0, 1]: 0 for a net without digit
            outputs, 1 for one whose comparison output has no gradient (the digits head).
        label_smoothing: label smoothing of the digit loss (:func:`pair_loss`), in [0, 1); 0.
        ema_decay: None (off), or the decay in [0, 1) of an exponential moving average of the
            weights, updated after every step, used for validation and as the final model
            (Lightning's ``EMAWeightAveraging``, given to the Trainer by :meth:`configure_callbacks`).
        ensemble: K >= 1, the number of nets trained side by side on the same batches: ``net`` is
            called K times, so each starts from its own initialisation (drawn one net after the
            other; the first is the net alone). Their training losses are summed, so each net gets
            the gradient of its own loss and keeps its own optimizer state; evaluation combines them
            (:func:`average`). 1: the net alone, bit for bit. ``train/loss`` is the nets' mean
            training loss; ``val/*`` and ``test/*`` are the combined prediction's.

    Raises:
        BadValue: an argument outside what is allowed above, named as above (the net's own
            arguments by the net, e.g. ``head``).

    ``net``, ``optimizer``, ``scheduler`` and ``scheduler_config`` are not stored in the
    checkpoint's hyperparameters (a checkpoint holds tensors and plain values only, so torch's
    weights-only loader reads it): :func:`pairmnist.jobs.load.load_job` builds the module from
    the job's config and loads the weights.
    """

    def __init__(
        self,
        net: Callable[[], nn.Module],
        optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        scheduler_config: dict[str, Any] | None = None,
        aux_weight: float = 0.0,
        label_smoothing: float = 0.0,
        ema_decay: float | None = None,
        ensemble: int = 1,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler", "scheduler_config"])
        require(number(ensemble, 1, integer=True), "ensemble", ensemble, "must be an integer >= 1 (nets side by side)")
        self.nets = nn.ModuleList([net() for _ in range(ensemble)])
        self.make_optimizer, self.make_scheduler = optimizer, scheduler
        self.scheduler_config = dict(scheduler_config or {})
        self.aux_weight, self.label_smoothing, self.ema_decay = aux_weight, label_smoothing, ema_decay
        require(callable(optimizer), "optimizer", optimizer, "must make an optimizer (_partial_: true)")
        require(scheduler is None or callable(scheduler), "scheduler", scheduler, "must be null or make a scheduler")
        require(number(aux_weight, 0, 1), "aux_weight", aux_weight, "must be within [0, 1]")
        require(fraction(label_smoothing), "label_smoothing", label_smoothing, "must be in [0, 1)")
        require(ema_decay is None or fraction(ema_decay), "ema_decay", ema_decay, "must be null (off) or in [0, 1)")
        require(
            self.lr is None or number(self.lr) and self.lr > 0, "optimizer.lr", self.lr, "must be a finite number > 0"
        )
        only(self.scheduler_config, SCHEDULER_KEYS, "scheduler_config")
        interval, frequency = self.scheduler_config.get("interval", "epoch"), self.scheduler_config.get("frequency", 1)
        require(interval in ("epoch", "step"), "scheduler_config.interval", interval, "allowed: epoch, step")
        require(number(frequency, 1, integer=True), "scheduler_config.frequency", frequency, "must be an integer >= 1")
        self._check_outputs()
        optimizer(self.nets.parameters())  # once now: the optimizer's own checks of its arguments, before any training
        self.outputs: dict[str, list[tuple[torch.Tensor, ...]]] = {"train": [], "val": [], "train_eval": [], "test": []}
        self.history: dict[str, list[float]] = {k: [] for k in ("train_loss", "train_acc", "val_loss", "val_acc")}
        self.validated: dict[str, float] = {}  # the last validation: its epoch (from 1) and metrics

    def _check_outputs(self) -> None:
        """Check ``aux_weight`` against what the net outputs, on a pair of blank inputs (in evaluation
        mode: nothing random is drawn, no statistic is updated); warn when a head cannot learn."""
        net = self.nets[0]
        net.eval()
        logits, digits = net(torch.zeros(2, 2, 14, 14))
        net.train()
        w = self.aux_weight
        require(digits is not None or w == 0, "aux_weight", w, "allowed: 0 (this net has no digit outputs)")
        require(
            logits.requires_grad or w == 1,
            "aux_weight",
            w,
            "allowed: 1 (the comparison has no gradient, e.g. the digits head)",
        )
        head = getattr(net, "head", None)
        if w == 1 and head is not None and any(True for _ in head.parameters()):
            warnings.warn(
                "aux_weight=1: the comparison head gets no gradient and stays untrained (at its random "
                "initialisation); the digits or probabilistic head compare the digits instead",
                stacklevel=3,
            )

    @property
    def lr(self) -> float | None:
        """The configured learning rate (the ``lr`` given to the optimizer; None if none was given)."""
        return getattr(self.make_optimizer, "keywords", {}).get("lr")

    def setup(self, stage: str) -> None:
        """On the CPU, move the net's convolution weights to channels-last memory format.

        The activations follow the weights, and PyTorch's CPU max-pooling is about 10 times
        faster on channels-last tensors, a whole training step about 2 times
        (benchmarks/README.md); same layers, same numbers, only the memory layout differs.
        Other devices keep the default layout, which is what they are tested with (a
        channels-last max-pooling backward has crashed on Apple's MPS).
        """
        if self.device.type == "cpu":
            self.nets.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, 2, 14, 14) float32 -> ((B, 2) comparison logits, (B, 2, 10) digit logits or None)."""
        return average([net(x) for net in self.nets], getattr(self.nets[0], "head", None))

    def _step(self, batch: tuple[torch.Tensor, ...], stage: str) -> torch.Tensor:
        x, target, classes = batch
        outputs = [net(x) for net in self.nets]
        logits, digits = average(outputs, getattr(self.nets[0], "head", None))
        if stage == "train":  # each net learns from its own loss; the sum adds nothing to a single net's
            losses = [pair_loss(*out, target, classes, self.aux_weight, self.label_smoothing) for out in outputs]
            loss = sum(losses[1:], losses[0])
            shown = loss / len(losses)
        else:
            loss = shown = pair_loss(logits, digits, target, classes, self.aux_weight, self.label_smoothing)
        digit_pred = None if digits is None or stage == "train" else digits.argmax(-1)
        self.outputs[stage].append((shown.detach() * len(x), predict(logits), target, digit_pred, classes))
        return loss

    def _epoch_metrics(self, stage: str) -> dict[str, float]:
        """Compute, log and forget the epoch's ``<stage>/loss``, ``/acc`` and ``/digit_acc``; return them as floats."""
        loss_sums, preds, targets, digit_preds, classes = zip(*self.outputs[stage], strict=True)
        self.outputs[stage].clear()
        preds, targets = torch.cat(preds), torch.cat(targets)
        shown = {
            f"{stage}/loss": torch.stack(loss_sums).sum() / len(targets),
            f"{stage}/acc": multiclass_accuracy(preds, targets, 2, average="micro", validate_args=False),
        }
        self.log_dict(shown, prog_bar=True)
        metrics = dict(shown)
        if digit_preds[0] is not None:
            metrics[f"{stage}/digit_acc"] = multiclass_accuracy(
                torch.cat(digit_preds).flatten(), torch.cat(classes).flatten(), 10, average="micro", validate_args=False
            )
            self.log(f"{stage}/digit_acc", metrics[f"{stage}/digit_acc"])
        self.log("step", float(self.current_epoch))  # the loggers' x-axis: epochs
        values = {k: v.item() for k, v in metrics.items()}
        if stage != "test" and not self.trainer.sanity_checking:
            for key in (f"{stage}/loss", f"{stage}/acc"):
                self.history.setdefault(key.replace("/", "_"), []).append(values[key])
            if stage == "val":
                self.validated = {"epoch": self.current_epoch + 1, **values}
        return values

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def on_train_epoch_end(self) -> None:
        """Log the training metrics; stop when the loss is NaN or infinite (diverged).

        Raises:
            FloatingPointError: naming the epoch and the optimizer's ``lr``.
        """
        loss = self._epoch_metrics("train")["train/loss"]
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"train/loss is {loss} at epoch {self.current_epoch}: training diverged (optimizer.lr={self.lr})"
            )

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int, dataloader_idx: int = 0) -> None:
        """Dataloader 0: the validation pairs; 1 (``data.eval_train``): the training pairs, as ``train_eval/*``."""
        self._step(batch, "val" if dataloader_idx == 0 else "train_eval")

    def on_validation_epoch_end(self) -> None:
        self._epoch_metrics("val")
        if self.outputs["train_eval"]:
            self._epoch_metrics("train_eval")

    def test_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self._step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._epoch_metrics("test")

    def configure_callbacks(self) -> list[pl.Callback]:
        """The weight average of ``ema_decay`` (if set), added to the Trainer's callbacks."""
        return [] if self.ema_decay is None else [EMAWeightAveraging(decay=self.ema_decay)]

    def configure_optimizers(self) -> torch.optim.Optimizer | dict:
        """The optimizer, and the scheduler with its ``scheduler_config``, the way Lightning takes them."""
        optimizer = self.make_optimizer(self.parameters())
        if self.make_scheduler is None:
            return optimizer
        scheduler = {"scheduler": self._scheduler(optimizer), **self.scheduler_config}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def _scheduler(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        """``make_scheduler(optimizer)``, given ``total_steps`` (the run's training steps) if it takes it unset."""
        total_steps = inspect.signature(self.make_scheduler).parameters.get("total_steps")
        if total_steps is not None and total_steps.default is None:
            return self.make_scheduler(optimizer, total_steps=int(self.trainer.estimated_stepping_batches))
        return self.make_scheduler(optimizer)
