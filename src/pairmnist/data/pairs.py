"""The course's pair protocol (EPFL EE-559 ``dlc_practical_prologue.generate_pair_sets``).

For each split: 2x2 average pooling of the raw 0-255 images (28 -> 14), a random
permutation of the split's images, consecutive images taken two by two as the pair's two
channels, target 1 when the first digit is lesser than or equal to the second. The
permutations come from ``torch.Generator().manual_seed(seed)``, train first then test,
which reproduces the course's pairs drawn from the global generator after
``torch.manual_seed(seed)`` (docs/STUDY.md, "The data").
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from pairmnist.checks import number, require
from pairmnist.data.mnist import MNIST, N_TEST, N_TRAIN, load_mnist


class PairSet(NamedTuple):
    """One split of pairs.

    Attributes:
        input: (N, 2, 14, 14) float32, pooled pixel values (0-255 unless normalised).
        target: (N,) int64, 1 if classes[:, 0] <= classes[:, 1] else 0.
        classes: (N, 2) int64, the two digits.
    """

    input: torch.Tensor
    target: torch.Tensor
    classes: torch.Tensor


class PairSplits(NamedTuple):
    """Training, validation and test pairs of one seed (see :func:`make_pair_splits`)."""

    train: PairSet
    val: PairSet
    test: PairSet


def check_sizes(n_pairs: int, n_val_pairs: int = 0, n_test_pairs: int | None = None) -> None:
    """Check that the splits can be drawn without using an image twice.

    Raises:
        BadValue: ``n_pairs`` or ``n_test_pairs`` (None: ``n_pairs``) not an integer >= 1,
            ``n_val_pairs`` not one >= 0, 2*(n_pairs + n_val_pairs) > 60,000 training images,
            or 2*n_test_pairs > 10,000 test images.
    """
    require(number(n_pairs, 1, integer=True), "n_pairs", n_pairs, "must be an integer >= 1")
    require(number(n_val_pairs, 0, integer=True), "n_val_pairs", n_val_pairs, "must be an integer >= 0")
    require(n_test_pairs is None or number(n_test_pairs, 1, integer=True), "n_test_pairs", n_test_pairs, "must be null (= n_pairs) or an integer >= 1")
    limit = f"2*(n_pairs + n_val_pairs) must be at most {N_TRAIN} MNIST training images (n_pairs={n_pairs})"
    require(2 * (n_pairs + n_val_pairs) <= N_TRAIN, "n_val_pairs", n_val_pairs, limit)
    test_key, n_test = ("n_pairs", n_pairs) if n_test_pairs is None else ("n_test_pairs", n_test_pairs)
    require(2 * n_test <= N_TEST, test_key, n_test, f"2*{test_key} must be at most {N_TEST} MNIST test images")


def mnist_to_pairs(images: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> PairSet:
    """Build pairs from image indices.

    Args:
        images: (n, 28, 28) uint8 MNIST images.
        labels: (n,) int64 digits.
        index: (N, 2) int64 indices into ``images``; pair i is (index[i, 0], index[i, 1]).

    Returns:
        The pairs; pooling is done per image, so the values equal the course's (which pools
        the whole split first) bit for bit.
    """
    n = index.shape[0]
    pooled = F.avg_pool2d(images[index.reshape(-1)].unsqueeze(1).float(), kernel_size=2)
    classes = labels[index]
    return PairSet(pooled.view(n, 2, 14, 14), (classes[:, 0] <= classes[:, 1]).long(), classes)


def pair_indices(
    n_pairs: int, n_val_pairs: int, seed: int, n_test_pairs: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Image indices of the training, validation and test pairs of ``seed``.

    Training and test indices are exactly the course's. Validation continues the training
    permutation (its images 2*n_pairs .. 2*(n_pairs + n_val_pairs) - 1), so it never shares
    an image with the training pairs and never touches the test set. The test permutation is
    drawn after the whole training permutation, so for one seed the test pairs do not depend
    on ``n_pairs``, and the training pairs of a smaller ``n_pairs`` are the first of a larger.

    Args:
        n_test_pairs: test pairs; None: ``n_pairs``, as the course does.

    Returns:
        (n_pairs, 2), (n_val_pairs, 2) int64 indices into MNIST's 60,000 training images,
        and (n_test_pairs, 2) int64 indices into its 10,000 test images.

    Raises:
        BadValue: see :func:`check_sizes`.
    """
    check_sizes(n_pairs, n_val_pairs, n_test_pairs)
    g = torch.Generator().manual_seed(seed)
    train_perm = torch.randperm(N_TRAIN, generator=g)
    test_perm = torch.randperm(N_TEST, generator=g)
    n, v, t = 2 * n_pairs, 2 * n_val_pairs, 2 * (n_pairs if n_test_pairs is None else n_test_pairs)
    return train_perm[:n].view(-1, 2), train_perm[n : n + v].view(-1, 2), test_perm[:t].view(-1, 2)


def make_pair_splits(
    n_pairs: int, n_val_pairs: int, seed: int, mnist: MNIST, n_test_pairs: int | None = None
) -> PairSplits:
    """Draw the training, validation and test pairs of ``seed`` (indices: :func:`pair_indices`).

    Raises:
        BadValue: see :func:`check_sizes`.
    """
    train, val, test = pair_indices(n_pairs, n_val_pairs, seed, n_test_pairs)
    return PairSplits(
        train=mnist_to_pairs(mnist.train_images, mnist.train_labels, train),
        val=mnist_to_pairs(mnist.train_images, mnist.train_labels, val),
        test=mnist_to_pairs(mnist.test_images, mnist.test_labels, test),
    )


def generate_pair_sets(
    n_pairs: int, seed: int, source: str = "packaged", data_dir: str = "data"
) -> tuple[torch.Tensor, ...]:
    """The course's ``generate_pair_sets(nb)`` for ``torch.manual_seed(seed)``.

    Returns:
        ``(train_input, train_target, train_classes, test_input, test_target, test_classes)``:
        (N, 2, 14, 14) float32 raw pooled values 0-255, (N,) int64, (N, 2) int64, twice.

    Raises:
        BadValue: see :func:`check_sizes`; an unknown ``source``.
    """
    splits = make_pair_splits(n_pairs, 0, seed, load_mnist(source, data_dir))
    return (*splits.train, *splits.test)
