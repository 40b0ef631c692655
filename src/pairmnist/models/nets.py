"""The study's networks as plain ``nn.Module``s (no Lightning), layers as in docs/STUDY.md.

Every net maps a (B, 2, 14, 14) float32 pair to ``(comparison logits (B, 2),
digit logits (B, 2, 10) or None)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pairmnist.models.heads import make_head


class Shallow(nn.Module):
    """Flatten (392) -> Linear(392, nb_hidden) -> ReLU -> Linear(nb_hidden, 2); no digit outputs.

    Original report's tuned width: nb_hidden = 500.
    """

    def __init__(self, nb_hidden: int = 500) -> None:
        super().__init__()
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
        dropout: dropout probability before each linear layer; 0.3.
    """

    def __init__(self, width: int = 32, dropout: float = 0.3) -> None:
        super().__init__()

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


class DigitPairNet(nn.Module):
    """Digit logits for both channels, then a comparison head (see :mod:`pairmnist.models.heads`).

    Subclasses define :meth:`digit_logits`; ``head`` is ``"learned"`` (original report,
    uses ``nb_hidden``), ``"digits"`` or ``"probabilistic"``.

    Args:
        nb_hidden: hidden units of the learned head.
        head: the comparison head's name.
        tta_shift: test-time augmentation. 0: off. k > 0: in evaluation mode the digit logits
            are the mean over the input and its copies moved by 1..k pixels in the four
            directions (:func:`tta_offsets`); it uses the test input only, and training is
            unchanged.
    """

    def __init__(self, nb_hidden: int = 100, head: str = "learned", tta_shift: int = 0) -> None:
        super().__init__()
        self.head = make_head(head, nb_hidden)
        self.offsets = tta_offsets(tta_shift)

    def digit_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2, 14, 14) float32 -> (B, 2, 10) float32."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 2, 14, 14) float32 -> ((B, 2) comparison logits, (B, 2, 10) digit logits), float32."""
        if self.training or len(self.offsets) == 1:
            digits = self.digit_logits(x)
        else:
            copies = torch.cat([shifted(x, dy, dx) for dy, dx in self.offsets])  # (C*B, 2, 14, 14), one pass
            digits = self.digit_logits(copies).view(len(self.offsets), *x.shape[:2], -1).mean(0)
        return self.head(digits), digits


class Twin(DigitPairNet):
    """No weight sharing: a separate digit ConvNet for each channel."""

    def __init__(self, nb_hidden: int = 100, head: str = "learned", tta_shift: int = 0) -> None:
        super().__init__(nb_hidden, head, tta_shift)
        self.branches = nn.ModuleList([DigitConvNet(), DigitConvNet()])

    def digit_logits(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([branch(x[:, i : i + 1]) for i, branch in enumerate(self.branches)], dim=1)


class Siamese(DigitPairNet):
    """Weight sharing: one digit branch applied to both channels in one batched call on 2B images.

    Args:
        branch: the digit network, (B, 1, 14, 14) -> (B, 10); default :class:`DigitConvNet`.
    """

    def __init__(
        self, nb_hidden: int = 100, head: str = "learned", branch: nn.Module | None = None, tta_shift: int = 0
    ) -> None:
        super().__init__(nb_hidden, head, tta_shift)
        self.branch = branch if branch is not None else DigitConvNet()

    def digit_logits(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        return self.branch(x.reshape(2 * b, 1, *x.shape[2:])).view(b, 2, -1)
