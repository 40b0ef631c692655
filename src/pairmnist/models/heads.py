"""Comparison heads: from the two digits' logits (B, 2, 10) to comparison logits (B, 2).

Column 1 of the comparison logits stands for "first digit <= second digit". Every head is
read the same way: predict 1 when logit[:, 1] >= logit[:, 0] (ties count as 1, as in the
course's target rule).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pairmnist.checks import number, require

HEADS = ("learned", "digits", "probabilistic")


class LearnedHead(nn.Module):
    """The original report's head: ReLU(20 digit logits) -> Linear(20, nb_hidden) -> ReLU -> Linear(nb_hidden, 2)."""

    def __init__(self, nb_hidden: int = 100) -> None:
        super().__init__()
        require(number(nb_hidden, 1, integer=True), "nb_hidden", nb_hidden, "must be an integer >= 1")
        self.layers = nn.Sequential(
            nn.Flatten(), nn.ReLU(), nn.Linear(20, nb_hidden), nn.ReLU(), nn.Linear(nb_hidden, 2)
        )

    def forward(self, digits: torch.Tensor) -> torch.Tensor:
        """(B, 2, 10) float32 digit logits -> (B, 2) float32 comparison logits."""
        return self.layers(digits)


class DigitsHead(nn.Module):
    """Compare the two predicted digits: 1 when argmax(digit 1) <= argmax(digit 2).

    No parameters and no gradient: the digit branches learn only from the auxiliary loss,
    so it needs ``aux_weight = 1``. The logits are one-hot (0/1), so the target loss term
    stays finite (it has weight 0).
    """

    def forward(self, digits: torch.Tensor) -> torch.Tensor:
        """(B, 2, 10) float32 digit logits -> (B, 2) float32 one-hot comparison logits."""
        predicted = digits.argmax(-1)
        return F.one_hot((predicted[:, 0] <= predicted[:, 1]).long(), 2).to(digits.dtype)


class ProbabilisticHead(nn.Module):
    """P(d1 <= d2) = sum over i <= j of p1(i) * p2(j), from the two digits' softmaxes.

    Returns log-probabilities ``[log P(d1 > d2), log P(d1 <= d2)]``, computed in log space
    (logsumexp) so they stay finite for confident digits. Cross-entropy on them is the
    binary cross-entropy of P(d1 <= d2), so the target loss trains the digit branches.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("le", torch.ones(10, 10).triu().bool(), persistent=False)  # le[i, j] = i <= j

    def forward(self, digits: torch.Tensor) -> torch.Tensor:
        """(B, 2, 10) float32 digit logits -> (B, 2) float32 log-probabilities."""
        log_p = F.log_softmax(digits, dim=-1)
        joint = (log_p[:, 0, :, None] + log_p[:, 1, None, :]).flatten(1)  # (B, 100), index 10*i + j
        le = self.le.flatten()
        return torch.stack([joint[:, ~le].logsumexp(-1), joint[:, le].logsumexp(-1)], dim=1)


def make_head(head: str, nb_hidden: int) -> nn.Module:
    """The head named ``head`` (one of :data:`HEADS`); ``nb_hidden`` is used by ``learned`` only.

    Raises:
        BadValue: an unknown head name, or ``nb_hidden`` (learned head) not an integer >= 1.
    """
    require(head in HEADS, "head", head, f"allowed: {', '.join(HEADS)}")
    if head == "learned":
        return LearnedHead(nb_hidden)
    return DigitsHead() if head == "digits" else ProbabilisticHead()
