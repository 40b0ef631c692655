"""The study's networks as plain ``nn.Module``s (no Lightning), layers as in docs/STUDY.md.

Every net maps a (B, 2, 14, 14) float32 pair to ``(comparison logits (B, 2),
digit logits (B, 2, 10) or None)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from pairmnist.checks import fraction, number, require
from pairmnist.models.heads import make_head


class Shallow(nn.Module):
    """Flatten (392) -> Linear(392, nb_hidden) -> ReLU -> Linear(nb_hidden, 2); no digit outputs.

    Original report's tuned width: nb_hidden = 500.
    """

    def __init__(self, nb_hidden: int = 500) -> None:
        super().__init__()
        require(number(nb_hidden, 1, integer=True), "nb_hidden", nb_hidden, "must be an integer >= 1")
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(392, nb_hidden), nn.ReLU(), nn.Linear(nb_hidden, 2))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        """(B, 2, 14, 14) float32 -> ((B, 2) float32 logits, None)."""
        return self.layers(x), None


class DigitConvNet(nn.Module):
    """One digit branch: (B, 1, 14, 14) float32 -> (B, 10) float32 digit logits.

    Conv(1->32, k3) -> MaxPool 2 -> ReLU -> Conv(32->32, k3) -> MaxPool 2 -> ReLU ->
    Conv(32->64, k2) -> ReLU -> Flatten -> Linear(64, 64) -> ReLU -> Linear(64, 10);
    spatial size 14 -> 12 -> 6 -> 4 -> 2 -> 1 (the original report). 22,634 parameters.

    Built in PyTorch's default memory layout; :class:`~pairmnist.models.module.PairModule`
    moves it to channels-last when it trains on the CPU, where that is about 2 times faster.
    """

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(1, 32, 3),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(32, 64, 2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 14, 14) float32 -> (B, 10) float32."""
        return self.layers(x)


class DigitConvNetPlus(nn.Module):
    """A stronger digit branch: (B, 1, 14, 14) float32 -> (B, 10) float32 digit logits.

    Two blocks of two padded 3x3 convolutions with batch normalisation and ReLU, each block
    followed by 2x2 max-pooling (14 -> 7 -> 3), then dropout -> Linear(2*width*9, 128) ->
    ReLU -> dropout -> Linear(128, 10). Memory layout as :class:`DigitConvNet`.

    Args:
        width: channels of the first block (the second has 2*width); 32.
        dropout: dropout probability before each linear layer, in [0, 1); 0.3.

    Raises:
        BadValue: ``width`` not an integer >= 1, or ``dropout`` outside [0, 1).
    """

    def __init__(self, width: int = 32, dropout: float = 0.3) -> None:
        super().__init__()
        require(number(width, 1, integer=True), "width", width, "must be an integer >= 1")
        require(fraction(dropout), "dropout", dropout, "must be in [0, 1)")

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]

        self.layers = nn.Sequential(
            *block(1, width),
            *block(width, 2 * width),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(2 * width * 9, 128),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(128, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 14, 14) float32 -> (B, 10) float32."""
        return self.layers(x)


def shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """(N, C, H, W) images moved by ``dy`` rows and ``dx`` columns; the border pixel fills the gap.

    MNIST's borders are background, so repeating the border pixel brings in background.
    """
    if dy == dx == 0:
        return x
    k = max(abs(dy), abs(dx))
    padded = F.pad(x, (k, k, k, k), mode="replicate")
    h, w = x.shape[-2:]
    return padded[..., k - dy : k - dy + h, k - dx : k - dx + w]


def tta_offsets(max_shift: int) -> list[tuple[int, int]]:
    """The copies averaged at evaluation: the image itself, then moved by 1..max_shift pixels
    up, down, left and right (1 + 4 * max_shift copies)."""
    moves = [(s * dy, s * dx) for s in range(1, max_shift + 1) for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))]
    return [(0, 0), *moves]


class PairNet(nn.Module):
    """Digit logits for both digits from a digit branch, then a comparison head: the study's nets.

    ``share_weights`` is the study's first question. True: one branch applied to both digits,
    in one batched call on the 2B images (weight sharing; the original report's siamese net).
    False: two branches, one per digit, each built by its own call of the ``branch`` factory,
    so independently initialised (the report's twin net). Any ``nn.Module`` works as a branch.
    With the default branch and the learned head (nb_hidden 100) that is 24,936 parameters
    shared and 47,570 unshared.

    Weights are drawn in this order (so a seed gives the original report's nets): a given
    branch, the head, then :class:`DigitConvNet` when ``branch`` is None, then the second branch.

    Args:
        branch: makes the digit net, (B, 1, 14, 14) float32 -> (B, 10) float32, e.g. a Hydra
            ``_partial_: true`` node; None: :class:`DigitConvNet`.
        share_weights: one branch for both digits (True) or one per digit (False).
        nb_hidden: hidden units of the learned head.
        head: the comparison head's name: ``"learned"`` (original report), ``"digits"`` or
            ``"probabilistic"`` (:mod:`pairmnist.models.heads`).
        tta_shift: test-time augmentation, an integer in [0, 3]. 0: off. k > 0: in evaluation
            mode the digit logits are the mean over the input and its copies moved by 1..k
            pixels in the four directions (:func:`tta_offsets`); it uses the test input only,
            and training is unchanged.

    Raises:
        BadValue: ``share_weights`` not a bool, ``tta_shift`` outside [0, 3], or a bad ``head``
            or ``nb_hidden`` (:func:`~pairmnist.models.heads.make_head`).
    """

    def __init__(
        self,
        branch: Callable[[], nn.Module] | None = None,
        share_weights: bool = True,
        nb_hidden: int = 100,
        head: str = "learned",
        tta_shift: int = 0,
    ) -> None:
        super().__init__()
        require(isinstance(share_weights, bool), "share_weights", share_weights, "must be true or false")
        require(number(tta_shift, 0, 3, integer=True), "tta_shift", tta_shift, "must be an integer in [0, 3] (pixels)")
        given = branch() if branch is not None else None  # before the head, where Hydra used to build it
        self.head = make_head(head, nb_hidden)
        make_branch = branch or DigitConvNet
        branches = [given if given is not None else make_branch()]
        if not share_weights:
            branches.append(make_branch())
        self.branches = nn.ModuleList(branches)
        self.offsets = tta_offsets(tta_shift)
        self.share_weights = share_weights

    def digit_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2, 14, 14) float32 -> (B, 2, 10) float32."""
        if self.share_weights:
            b = x.shape[0]
            return self.branches[0](x.reshape(2 * b, 1, *x.shape[2:])).view(b, 2, -1)
        return torch.stack([branch(x[:, i : i + 1]) for i, branch in enumerate(self.branches)], dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 2, 14, 14) float32 -> ((B, 2) comparison logits, (B, 2, 10) digit logits), float32."""
        if self.training or len(self.offsets) == 1:
            digits = self.digit_logits(x)
        else:
            copies = torch.cat([shifted(x, dy, dx) for dy, dx in self.offsets])  # (C*B, 2, 14, 14), one pass
            digits = self.digit_logits(copies).view(len(self.offsets), *x.shape[:2], -1).mean(0)
        return self.head(digits), digits
