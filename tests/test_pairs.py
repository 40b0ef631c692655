"""The course's pair protocol, the validation split and the datamodule."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pairmnist.data import PairMNISTDataModule, generate_pair_sets, make_pair_splits
from pairmnist.data.pairs import check_sizes, pair_indices


def course_generate_pair_sets(nb, seed, mnist):
    """The course's dlc_practical_prologue.generate_pair_sets, verbatim in spirit: global RNG,
    pool the whole split, randperm, concatenate channels."""

    def mnist_to_pairs(nb, input, target):
        input = F.avg_pool2d(input, kernel_size=2)
        a = torch.randperm(input.size(0))
        a = a[: 2 * nb].view(nb, 2)
        input = torch.cat((input[a[:, 0]], input[a[:, 1]]), 1)
        classes = target[a]
        target = (classes[:, 0] <= classes[:, 1]).long()
        return input, target, classes

    torch.manual_seed(seed)
    train = mnist_to_pairs(nb, mnist.train_images.view(-1, 1, 28, 28).float(), mnist.train_labels)
    test = mnist_to_pairs(nb, mnist.test_images.view(-1, 1, 28, 28).float(), mnist.test_labels)
    return train + test


def test_pairs_equal_the_course_pairs(mnist, data_dir):
    ours = generate_pair_sets(300, seed=7, data_dir=data_dir)
    theirs = course_generate_pair_sets(300, 7, mnist)
    for a, b in zip(ours, theirs, strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b)


def test_shapes_dtypes_and_target_rule(data_dir):
    train_input, train_target, train_classes, test_input, test_target, test_classes = generate_pair_sets(
        1000, seed=0, data_dir=data_dir
    )
    for x, y, c in ((train_input, train_target, train_classes), (test_input, test_target, test_classes)):
        assert x.shape == (1000, 2, 14, 14) and x.dtype == torch.float32
        assert y.shape == (1000,) and y.dtype == torch.int64
        assert c.shape == (1000, 2) and c.dtype == torch.int64
        assert x.min() >= 0 and x.max() <= 255 and x.max() > 200  # raw pooled values
        assert torch.equal(y, (c[:, 0] <= c[:, 1]).long())
        assert 0.5 < y.float().mean() < 0.6  # ~55 % ones: ties count as 1, classes unbalanced


def test_classes_are_the_labels_of_the_pooled_images(mnist):
    splits = make_pair_splits(50, 20, seed=3, mnist=mnist)
    train_idx, _, test_idx = pair_indices(50, 20, seed=3)
    assert torch.equal(splits.train.classes, mnist.train_labels[train_idx])
    assert torch.equal(splits.test.classes, mnist.test_labels[test_idx])
    first = F.avg_pool2d(mnist.train_images[train_idx[0, 1]][None].float(), 2)[0]
    assert torch.equal(splits.train.input[0, 1], first)


def test_no_image_twice_and_validation_disjoint_from_training():
    train, val, test = pair_indices(1000, 1000, seed=11)
    assert train.unique().numel() == 2000 and val.unique().numel() == 2000 and test.unique().numel() == 2000
    assert not set(train.flatten().tolist()) & set(val.flatten().tolist())


def test_same_seed_same_pairs_other_seed_other_pairs(mnist):
    a, b, c = (make_pair_splits(100, 50, s, mnist) for s in (5, 5, 6))
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(a, split).input, getattr(b, split).input)
        assert not torch.equal(getattr(a, split).input, getattr(c, split).input)


@pytest.mark.parametrize(
    "n_pairs, n_val_pairs, message",
    [(0, 10, "^n_pairs=0: must be"), (100, 29_950, "at most 60000"), (5001, 10, "^n_pairs=5001: .*at most 10000")],
)
def test_sizes_the_splits_cannot_hold(n_pairs, n_val_pairs, message):
    with pytest.raises(ValueError, match=message):
        pair_indices(n_pairs, n_val_pairs, seed=0)


def test_datamodule_normalises_with_training_statistics(data_dir, mnist):
    dm = PairMNISTDataModule(n_pairs=200, n_val_pairs=100, batch_size=64, seed=2, data_dir=str(data_dir))
    dm.setup("fit")
    raw = make_pair_splits(200, 100, 2, mnist)
    mean, std = raw.train.input.mean(), raw.train.input.std()
    assert dm.train.input.mean().abs() < 1e-4 and (dm.train.input.std() - 1).abs() < 1e-4
    assert torch.allclose(dm.val.input, (raw.val.input - mean) / std)
    assert torch.allclose(dm.test.input, (raw.test.input - mean) / std)  # never the test set's own statistics


def test_datamodule_batches_and_reproducible_order(data_dir):
    def first_epochs(seed):
        dm = PairMNISTDataModule(
            n_pairs=200, n_val_pairs=100, batch_size=64, eval_batch_size=60, seed=seed, data_dir=str(data_dir)
        )
        dm.setup("fit")
        loader = dm.train_dataloader()
        return [torch.cat([b[1] for b in loader]) for _ in range(2)], [len(b[0]) for b in loader], dm

    (e1, e2), sizes, dm = first_epochs(4)
    assert sizes == [64, 64, 64, 8]
    assert not torch.equal(e1, e2) and sorted(e1.tolist()) == sorted(dm.train.target.tolist())  # reshuffled
    assert torch.equal(first_epochs(4)[0][0], e1)  # same seed, same order
    val = list(dm.val_dataloader())
    assert [len(b[1]) for b in val] == [60, 40]  # evaluation batches, in order
    assert val[0][0].shape == (60, 2, 14, 14) and torch.equal(torch.cat([b[1] for b in val]), dm.val.target)


def test_test_pairs_are_the_same_at_every_training_size(mnist):
    for seed in (0, 7):
        small = make_pair_splits(250, 1000, seed, mnist, n_test_pairs=1000)
        large = make_pair_splits(4000, 1000, seed, mnist, n_test_pairs=1000)
        assert len(small.test.target) == len(large.test.target) == 1000
        for a, b in zip(small.test, large.test, strict=True):
            assert torch.equal(a, b)
        assert torch.equal(small.train.input, large.train.input[:250])  # nested training sets
    train, val, test = pair_indices(4000, 1000, 0, n_test_pairs=1000)
    assert not set(train.flatten().tolist()) & set(val.flatten().tolist())  # validation stays disjoint
    assert torch.equal(pair_indices(1000, 1000, 0)[2], pair_indices(1000, 1000, 0, n_test_pairs=1000)[2])  # the course


def test_test_pair_count_is_checked():
    with pytest.raises(ValueError, match=r"^n_test_pairs=5001: 2\*n_test_pairs must be at most 10000"):
        check_sizes(1000, 1000, 5001)
    check_sizes(6000, 1000, 1000)  # more training pairs than the test set could hold for the course
