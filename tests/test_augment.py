"""Training-set augmentation: swapped pairs, shifts, and untouched validation/test data."""

from __future__ import annotations

import pytest
import torch

from pairmnist.data import PairMNISTDataModule, PairSet
from pairmnist.data.augment import mix_digits, random_affine, random_shift, swap_pairs


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
    with pytest.raises(ValueError, match=r"^augment.flip=True: unknown key; allowed: swap, shift"):
        PairMNISTDataModule(n_pairs=10, n_val_pairs=5, data_dir=str(data_dir), augment={"flip": True})


def test_random_affine_gives_each_digit_its_own_rotation_and_keeps_the_background():
    x = torch.zeros(4, 2, 14, 14)
    x[:, :, 3:11, 6:8] = 1.0  # the same vertical bar in every image
    g = torch.Generator().manual_seed(0)
    out = random_affine(x - 0.5, 20, 0.1, -0.5, g) + 0.5  # background -0.5 before the shift back
    assert out.shape == x.shape and torch.equal(random_affine(x, 0, 0, 0.0, g), x)
    assert out[:, :, 0, :].abs().max() < 1e-6 and out[:, :, :, 0].abs().max() < 1e-6  # background stays
    flat = out.flatten(2)
    assert len({tuple(v.round(decimals=4).tolist()) for v in flat.flatten(0, 1)}) == 8  # 8 different distortions
    assert torch.allclose(flat.sum(-1), x.flatten(2).sum(-1), rtol=0.3)  # about the same ink
    again = random_affine(x - 0.5, 20, 0.1, -0.5, torch.Generator().manual_seed(0)) + 0.5
    assert torch.equal(again, out)  # drawn from the generator only


def test_mix_digits_repairs_with_the_batch_own_digits_and_recomputes_targets():
    classes = torch.tensor([[0, 9], [5, 1], [3, 3], [7, 2], [4, 8], [6, 0]])
    x = classes.float()[:, :, None, None].expand(6, 2, 14, 14).clone()  # image value = its class
    g = torch.Generator().manual_seed(1)
    mixed, target, new = mix_digits(x, classes, 1.0, g)
    assert torch.equal(mixed[:, 0], x[:, 0]) and torch.equal(new[:, 0], classes[:, 0])  # first digits stay
    assert torch.equal(mixed[:, 1, 0, 0].long(), new[:, 1])  # images and classes move together
    assert sorted(new[:, 1].tolist()) == sorted(classes[:, 1].tolist())  # the batch's own second digits
    assert torch.equal(target, (new[:, 0] <= new[:, 1]).long()) and not torch.equal(new, classes)
    same = mix_digits(x, classes, 0.0, g)
    assert torch.equal(same[0], x) and torch.equal(same[2], classes)
