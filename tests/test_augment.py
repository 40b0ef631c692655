"""Training-set augmentation: swapped pairs, shifts, and untouched validation/test data."""

from __future__ import annotations

import torch

from pairmnist.data import PairMNISTDataModule, PairSet
from pairmnist.data.augment import random_shift, swap_pairs


def test_swap_recomputes_targets_including_ties():
    classes = torch.tensor([[3, 7], [7, 3], [5, 5]])
    pairs = PairSet(torch.randn(3, 2, 14, 14), (classes[:, 0] <= classes[:, 1]).long(), classes)
    out = swap_pairs(pairs)
    assert out.target.tolist() == [1, 0, 1, 0, 1, 1]  # the tie stays 1 in both orders
    assert out.classes[3:].tolist() == [[7, 3], [3, 7], [5, 5]]
    assert torch.equal(out.input[3:, 0], pairs.input[:, 1]) and torch.equal(out.input[3:, 1], pairs.input[:, 0])
    assert torch.equal(out.target, (out.classes[:, 0] <= out.classes[:, 1]).long())


def test_shift_moves_each_image_by_its_own_offset_and_fills_background():
    x = torch.zeros(50, 2, 14, 14)
    x[:, :, 7, 7] = 1.0  # one lit pixel in the middle of every image
    out = random_shift(x, 2, fill=-1.0, generator=torch.Generator().manual_seed(0))
    lit = (out == 1.0).nonzero()
    assert len(lit) == 100  # the pixel survives in every image (shift 2 keeps it inside)
    assert ((lit[:, 2] - 7).abs() <= 2).all() and ((lit[:, 3] - 7).abs() <= 2).all()
    assert len({(r, c) for r, c in lit[:, 2:].tolist()}) > 5  # offsets differ between images
    assert (out != 0).sum() > 100  # pixels moved in from outside are the fill value
    assert torch.equal(random_shift(x, 0, -1.0, torch.Generator()), x)


def test_augmentation_never_touches_validation_or_test(data_dir):
    def datamodule(augment):
        dm = PairMNISTDataModule(n_pairs=100, n_val_pairs=50, seed=1, data_dir=str(data_dir), augment=augment)
        dm.setup("fit")
        return dm

    plain, augmented = datamodule(None), datamodule({"swap": True, "shift": 2})
    assert len(augmented.train.target) == 200 and len(plain.train.target) == 100
    for split in ("val", "test"):
        for a, b in zip(getattr(plain, split), getattr(augmented, split), strict=True):
            assert torch.equal(a, b)
    batch = next(iter(augmented.val_dataloader()))
    assert augmented.on_after_batch_transfer(batch, 0) is batch  # no trainer training: unchanged


def test_unknown_augment_key_is_refused(data_dir):
    try:
        PairMNISTDataModule(n_pairs=10, n_val_pairs=5, data_dir=str(data_dir), augment={"rotate": 10})
    except ValueError as e:
        assert "data.augment" in str(e) and "swap" in str(e)
    else:
        raise AssertionError("no error")
