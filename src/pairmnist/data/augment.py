"""Training-set augmentation: swapped pairs and random shifts. Never applied to validation or test."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pairmnist.data.pairs import PairSet


def swap_pairs(pairs: PairSet) -> PairSet:
    """The pairs followed by the same pairs with their two digits swapped (2N pairs).

    The swapped pair's target is recomputed for its own order: 1 when the (new) first digit
    is <= the second. Ties (equal digits) are 1 in both orders; every other pair flips.

    Args:
        pairs: input (N, 2, 14, 14) float32, target (N,) int64, classes (N, 2) int64.
    """
    swapped = pairs.classes.flip(1)
    return PairSet(
        torch.cat([pairs.input, pairs.input.flip(1)]),
        torch.cat([pairs.target, (swapped[:, 0] <= swapped[:, 1]).long()]),
        torch.cat([pairs.classes, swapped]),
    )


def random_shift(x: torch.Tensor, max_shift: int, fill: float, generator: torch.Generator) -> torch.Tensor:
    """Translate every image by its own random integer offset in [-max_shift, max_shift]^2.

    Pixels shifted in from outside take the value ``fill`` (the background: 0 in raw pixel
    units, -mean/std once normalised). Offsets are drawn on the CPU from ``generator``.

    Args:
        x: (N, C, H, W) float32 images (each of the C channels is shifted on its own).
        max_shift: largest offset in pixels; 0 returns ``x``.

    Returns:
        (N, C, H, W) float32, on ``x``'s device.
    """
    if max_shift == 0:
        return x
    n, c, h, w = x.shape
    offsets = torch.randint(-max_shift, max_shift + 1, (2, n, c, 1), generator=generator).to(x.device)
    padded = F.pad(x, (max_shift,) * 4, value=fill)  # (N, C, H + 2k, W + 2k)
    rows = (torch.arange(h, device=x.device) + max_shift - offsets[0])[..., :, None]  # (N, C, H, 1)
    cols = (torch.arange(w, device=x.device) + max_shift - offsets[1])[..., None, :]  # (N, C, 1, W)
    ni = torch.arange(n, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[ni, ci, rows, cols]
