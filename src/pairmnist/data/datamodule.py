"""``PairMNISTDataModule``: the course's pairs of one seed as in-memory batches."""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

from pairmnist.checks import MAX_SEED, fraction, number, only, require
from pairmnist.data.augment import mix_digits, random_affine, random_shift, swap_pairs
from pairmnist.data.mnist import check_source, load_mnist
from pairmnist.data.pairs import PairSet, check_sizes, make_pair_splits

log = logging.getLogger(__name__)
AUGMENTATIONS = ("swap", "shift", "rotate", "scale", "mix")


class IndexBatches(Sampler):
    """Batches of indices for a ``TensorDataset``, so one batch costs one index operation per tensor.

    Yields ``slice`` objects in order (views, no copy) or, with a ``generator``, (B,) int64
    slices of a new random permutation each epoch. ``DataLoader(dataset, sampler=this,
    batch_size=None)`` then returns whole batches; per-sample indexing plus collation, or a
    ``BatchSampler``'s Python lists, cost more than a small net's training step.

    Args:
        n: dataset length.
        batch_size: indices per batch (the last batch may be smaller).
        generator: shuffles when given; None keeps the order.
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator | None = None) -> None:
        self.n, self.batch_size, self.generator = n, batch_size, generator

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.generator) if self.generator is not None else None
        for start in range(0, self.n, self.batch_size):
            stop = min(start + self.batch_size, self.n)
            yield slice(start, stop) if order is None else order[start:stop]


class PairMNISTDataModule(pl.LightningDataModule):
    """Training, validation and test pairs (see :mod:`pairmnist.data.pairs`) as batches.

    Each batch is ``(input, target, classes)``: (B, 2, 14, 14) float32, (B,) int64,
    (B, 2) int64, sliced from in-memory tensors with one index operation per batch
    (:class:`IndexBatches`), not gathered sample by sample.
    When the trainer runs on a GPU the tensors are moved there once, in :meth:`setup`.

    Args:
        n_pairs: training pairs, and test pairs unless ``n_test_pairs`` is set (the course
            uses the same N for both); 1000.
        n_val_pairs: validation pairs from unused MNIST training images, at least 1; 1000.
        n_test_pairs: test pairs; None: ``n_pairs``. For one seed the test pairs are the
            same whatever ``n_pairs`` (:func:`~pairmnist.data.pairs.pair_indices`).
        batch_size: training pairs per batch; 100 (the original report).
        eval_batch_size: validation and test pairs per batch; 1000. Evaluation computes no
            gradients, so one large batch gives the same numbers with fewer, faster steps.
        seed: draws the pairs and the training order, an integer in [0, 2**32 - 1]; the same
            seed gives the same data.
        source: where MNIST comes from, ``"packaged"`` or ``"torchvision"``.
        data_dir: MNIST cache folder.
        normalize: standardise every split with the training pairs' mean and std (scalars).
        num_workers: DataLoader worker processes; must be 0. Each batch is one slice of
            in-memory tensors, so workers would have nothing to do.
        augment: training-set augmentation, off by default (:mod:`pairmnist.data.augment`):
            ``swap`` (bool) adds every training pair with its digits swapped (2N pairs);
            ``shift`` (int k in [0, 7]) translates each training image by up to k pixels, drawn
            anew every epoch from a generator seeded with ``seed``; ``rotate`` (degrees, in [0,
            180]) and ``scale`` (fraction, in [0, 1)) rotate and zoom each training digit by its
            own random amount; ``mix`` (fraction, in [0, 1]) re-pairs that share of each batch's
            pairs with the batch's own digits. Validation and test data are never augmented.
        eval_train: also evaluate the model at the end of every epoch on the training pairs
            (not augmented), as a second validation dataloader: the training accuracy of the
            end-of-epoch model, where ``train/acc`` is a running accuracy over the epoch's
            batches, each seen by a model still learning.

    Raises:
        BadValue: a value outside what is allowed above (the sizes:
            :func:`~pairmnist.data.pairs.check_sizes`), or an unknown ``augment`` key.
    """

    def __init__(
        self,
        n_pairs: int = 1000,
        n_val_pairs: int = 1000,
        batch_size: int = 100,
        eval_batch_size: int = 1000,
        seed: int = 0,
        source: str = "packaged",
        data_dir: str = "data",
        normalize: bool = True,
        num_workers: int = 0,
        augment: dict | None = None,
        n_test_pairs: int | None = None,
        eval_train: bool = False,
    ) -> None:
        super().__init__()
        require(number(n_val_pairs, 1, integer=True), "n_val_pairs", n_val_pairs, "must be an integer >= 1")
        check_sizes(n_pairs, n_val_pairs, n_test_pairs)
        for key, size in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            require(number(size, 1, integer=True), key, size, "must be an integer >= 1")
        require(number(seed, 0, MAX_SEED, integer=True), "seed", seed, f"must be an integer in [0, {MAX_SEED}]")
        check_source(source)
        require(isinstance(normalize, bool), "normalize", normalize, "must be true or false")
        require(isinstance(eval_train, bool), "eval_train", eval_train, "must be true or false")
        require(num_workers == 0 and type(num_workers) is int, "num_workers", num_workers, "must be 0: each batch is one slice of the pairs in memory")
        augment = dict(augment or {})
        only(augment, AUGMENTATIONS, "augment")
        self.swap, self.shift = augment.get("swap", False), augment.get("shift", 0)
        self.rotate, self.scale, self.mix = augment.get("rotate", 0), augment.get("scale", 0), augment.get("mix", 0)
        require(isinstance(self.swap, bool), "augment.swap", self.swap, "must be true or false")
        require(number(self.shift, 0, 7, integer=True), "augment.shift", self.shift, "must be an integer in [0, 7] (pixels of a 14x14 image)")
        require(number(self.rotate, 0, 180), "augment.rotate", self.rotate, "must be in [0, 180] (degrees)")
        require(fraction(self.scale), "augment.scale", self.scale, "must be in [0, 1) (a fraction of the size)")
        require(number(self.mix, 0, 1), "augment.mix", self.mix, "must be in [0, 1] (a fraction of each batch)")
        self.save_hyperparameters(ignore=["data_dir", "num_workers"])
        self.n_pairs, self.n_val_pairs, self.n_test_pairs = n_pairs, n_val_pairs, n_test_pairs
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seed, self.source, self.data_dir = seed, source, data_dir
        self.normalize, self.num_workers, self.eval_train = normalize, num_workers, eval_train
        self._shift_generator = torch.Generator().manual_seed(seed + 1)  # not the shuffling stream
        self.train: PairSet | None = None
        self.val: PairSet | None = None
        self.test: PairSet | None = None
        self.mean, self.std = 0.0, 1.0

    def prepare_data(self) -> None:
        """Build the MNIST cache if needed (download for ``source="torchvision"``)."""
        load_mnist(self.source, self.data_dir)

    def setup(self, stage: str | None = None) -> None:
        """Draw the pairs of ``seed`` (once) and put them on the trainer's device."""
        if self.train is None:
            mnist = load_mnist(self.source, self.data_dir)
            splits = make_pair_splits(self.n_pairs, self.n_val_pairs, self.seed, mnist, self.n_test_pairs)
            if self.normalize:
                self.mean, self.std = splits.train.input.mean().item(), splits.train.input.std().item()
            self.train, self.val, self.test = (
                PairSet((s.input - self.mean) / self.std, s.target, s.classes) for s in splits
            )
            if self.swap:
                self.train = swap_pairs(self.train)
            if self.batch_size > len(self.train.target):  # allowed, but rarely meant: say it once
                log.warning(
                    "data.batch_size=%d is larger than the %d training pairs: every step uses all of them",
                    self.batch_size,
                    len(self.train.target),
                )
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        if self.train.input.device != device:
            self.train, self.val, self.test = (PairSet(*(t.to(device) for t in s)) for s in (self.train, self.val, self.test))

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Batches already live on the trainer's device (see :meth:`setup`): nothing to move.

        Lightning's generic transfer walks the batch structure at about 0.2 ms a batch.
        """
        if all(isinstance(t, torch.Tensor) and t.device == device for t in batch):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Augment training batches (``augment.shift``, ``rotate``/``scale``, ``mix``); others pass unchanged.

        All draws come from one generator seeded from ``seed``, each only when its augmentation
        is on, so turning one on leaves the draws of the others as they were.
        """
        if not (self.trainer is not None and self.trainer.training):
            return batch
        x, target, classes = batch
        background = -self.mean / self.std
        x = random_shift(x, self.shift, background, self._shift_generator)
        x = random_affine(x, self.rotate, self.scale, background, self._shift_generator)
        if self.mix:
            x, target, classes = mix_digits(x, classes, self.mix, self._shift_generator)
        return x, target, classes

    def _loader(self, pairs: PairSet, shuffle: bool) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        batches = IndexBatches(len(pairs.target), self.batch_size if shuffle else self.eval_batch_size, generator)
        return DataLoader(TensorDataset(*pairs), sampler=batches, batch_size=None, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        """Training pairs, reshuffled every epoch from a generator seeded with ``seed``."""
        return self._loader(self.train, shuffle=True)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        """Validation pairs, in order; then the training pairs when ``eval_train``."""
        if self.eval_train:
            return [self._loader(self.val, shuffle=False), self._loader(self.train, shuffle=False)]
        return self._loader(self.val, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Test pairs, in order."""
        return self._loader(self.test, shuffle=False)
