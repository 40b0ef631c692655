"""Comparison heads on hand-made digit logits."""

from __future__ import annotations

import itertools

import pytest
import torch

from pairmnist.models.heads import DigitsHead, ProbabilisticHead, make_head
from pairmnist.models.module import pair_loss, predict


def certain(d1: int, d2: int, scale: float = 50.0) -> torch.Tensor:
    """(1, 2, 10) logits that put (almost) all mass on digits d1 and d2."""
    logits = torch.zeros(1, 2, 10)
    logits[0, 0, d1] = logits[0, 1, d2] = scale
    return logits


@pytest.mark.parametrize("d1, d2", [(3, 7), (7, 3), (5, 5), (0, 9), (9, 0)])
def test_digits_head_compares_the_predicted_digits(d1, d2):
    assert predict(DigitsHead()(certain(d1, d2))).item() == int(d1 <= d2)  # ties count as 1


@pytest.mark.parametrize("d1, d2", [(3, 7), (7, 3), (5, 5)])
def test_probabilistic_head_on_certain_digits(d1, d2):
    p = ProbabilisticHead()(certain(d1, d2)).exp()
    assert p[0, 1].item() == pytest.approx(float(d1 <= d2), abs=1e-6)
    assert predict(ProbabilisticHead()(certain(d1, d2))).item() == int(d1 <= d2)


def test_probabilistic_head_equals_the_brute_force_sum():
    digits = torch.randn(64, 2, 10, generator=torch.Generator().manual_seed(0)) * 3
    log_p = ProbabilisticHead()(digits)
    p1, p2 = digits[:, 0].softmax(-1), digits[:, 1].softmax(-1)
    brute = torch.stack(
        [sum(p1[b, i] * p2[b, j] for i, j in itertools.product(range(10), repeat=2) if i <= j) for b in range(64)]
    )
    p = log_p.exp()
    assert torch.allclose(p[:, 1], brute, atol=1e-6)
    assert torch.allclose(p.sum(1), torch.ones(64), atol=1e-6)  # P(<=) + P(>) = 1
    assert (p >= 0).all() and (p <= 1).all()


def test_probabilistic_head_on_uncertain_digits():
    # digit 1 is 2 or 6 with equal odds, digit 2 is surely 4: P(d1 <= d2) = 1/2, predicted 1 (>= 0.5)
    logits = torch.full((1, 2, 10), -30.0)
    logits[0, 0, [2, 6]] = 0.0
    logits[0, 1, 4] = 0.0
    log_p = ProbabilisticHead()(logits)
    assert log_p.exp()[0, 1].item() == pytest.approx(0.5, abs=1e-6)
    assert torch.isfinite(ProbabilisticHead()(certain(9, 0, scale=1e4))).all()  # stable when very sure


def test_probabilistic_target_loss_is_the_bce_and_trains_the_digits():
    digits = torch.randn(8, 2, 10, requires_grad=True)
    target = torch.randint(0, 2, (8,))
    log_p = ProbabilisticHead()(digits)
    p_le = log_p.exp()[:, 1]
    bce = torch.nn.functional.binary_cross_entropy(p_le, target.float())
    loss = pair_loss(log_p, digits, target, torch.zeros(8, 2, dtype=torch.long), aux_weight=0.0)
    assert loss.item() == pytest.approx(bce.item(), rel=1e-5)
    loss.backward()
    assert digits.grad.abs().sum() > 0


def test_make_head_names_the_allowed_heads():
    with pytest.raises(ValueError, match="^head=mlp: allowed: learned, digits, probabilistic$"):
        make_head("mlp", 100)
