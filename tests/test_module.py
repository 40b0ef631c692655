"""The auxiliary-loss formula and the LightningModule's step."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pairmnist.models.module import PairModule, pair_loss, predict
from pairmnist.models.nets import Shallow, Siamese


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    logits, digits = torch.randn(6, 2, generator=g), torch.randn(6, 2, 10, generator=g)
    classes = torch.randint(0, 10, (6, 2), generator=g)
    return logits, digits, (classes[:, 0] <= classes[:, 1]).long(), classes


@pytest.mark.parametrize("w", [0.0, 0.5, 1.0])
def test_aux_loss_formula(batch, w):
    logits, digits, target, classes = batch
    ce_target = F.cross_entropy(logits, target)
    ce_digits = (F.cross_entropy(digits[:, 0], classes[:, 0]) + F.cross_entropy(digits[:, 1], classes[:, 1])) / 2
    expected = (1 - w) * ce_target + w * ce_digits
    assert math.isclose(pair_loss(logits, digits, target, classes, w).item(), expected.item(), rel_tol=1e-6)


def test_aux_loss_needs_digit_outputs(batch):
    logits, _, target, classes = batch
    assert torch.equal(pair_loss(logits, None, target, classes, 0.0), F.cross_entropy(logits, target))
    with pytest.raises(ValueError, match="model.aux_weight=0.5"):
        pair_loss(logits, None, target, classes, 0.5)


def test_predict_counts_ties_as_one():
    assert predict(torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.3, 0.3]])).tolist() == [1, 0, 1]


def test_aux_weight_one_leaves_the_learned_head_without_gradient(batch):
    _, _, target, classes = batch
    module = PairModule(Siamese(), lr=1e-3, aux_weight=1.0)
    loss = module.training_step((torch.randn(6, 2, 14, 14), target, classes), 0)
    loss.backward()
    assert all(p.grad is None or not p.grad.any() for p in module.net.head.parameters())
    assert any(p.grad.any() for p in module.net.branch.parameters())


def test_adam_with_the_configured_lr():
    optimizer = PairModule(Shallow(), lr=3e-4).configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.param_groups[0]["lr"] == 3e-4


def _conv_weights(net):
    """Weights of the convolutions with several input channels (with one, both layouts are the same)."""
    return [m.weight for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1]


def test_nets_are_channels_last_only_when_training_on_the_cpu():
    cpu = PairModule(Siamese())
    assert all(w.is_contiguous() for w in _conv_weights(cpu.net))  # built in the default layout
    cpu.setup("fit")
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(cpu.net))
    other = PairModule(Siamese())
    other._device = torch.device("mps")  # as Lightning sets it before setup on Apple's GPU
    other.setup("fit")
    assert all(not w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(other.net))
