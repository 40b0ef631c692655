"""Training-set augmentation: swapped pairs, random shifts, rotations and scalings, re-paired digits.

Never applied to validation or test data.
"""

from __future__ import annotations

import math

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


def random_affine(
    x: torch.Tensor, degrees: float, scale: float, fill: float, generator: torch.Generator
) -> torch.Tensor:
    """Rotate and scale every image by its own random amount about its centre (bilinear resampling).

    Each image gets an angle uniform in [-degrees, degrees] and a zoom factor uniform in
    [1 - scale, 1 + scale]; pixels brought in from outside take ``fill`` (the background).
    Small rotations and scalings are the classic label-preserving distortions of handwritten
    digits (Simard, Steinkraus & Platt 2003, "Best practices for convolutional neural networks
    applied to visual document analysis"). Parameters are drawn on the CPU from ``generator``.

    Args:
        x: (N, C, H, W) float32 images (each of the C channels is its own digit).
        degrees: largest rotation, in degrees; 0 and ``scale`` 0 return ``x``.
        scale: largest relative change of size, a fraction (0.1: 90 % to 110 %).

    Returns:
        (N, C, H, W) float32, on ``x``'s device.
    """
    if degrees == 0 and scale == 0:
        return x
    n, c, h, w = x.shape
    angles = (torch.rand(n * c, generator=generator) * 2 - 1) * math.radians(degrees)
    zooms = 1 + (torch.rand(n * c, generator=generator) * 2 - 1) * scale
    cos, sin = torch.cos(angles) / zooms, torch.sin(angles) / zooms  # output -> input coordinates
    zeros = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1).to(x.device)
    grid = F.affine_grid(theta, [n * c, 1, h, w], align_corners=False)
    moved = F.grid_sample(x.reshape(n * c, 1, h, w) - fill, grid, mode="bilinear", align_corners=False)
    return (moved + fill).reshape(n, c, h, w)


def mix_digits(
    x: torch.Tensor, classes: torch.Tensor, fraction: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """New pairs from the batch's own digits: for a ``fraction`` of the pairs, the second digit is
    replaced by the second digit of another pair of the batch, and the target recomputed.

    Uses only training images and their labels (the classes of both digits are known), so the
    protocol's data stays the same 1000 training pairs; the net sees more combinations of them.

    Args:
        x: (B, 2, H, W) float32 pairs.
        classes: (B, 2) int64 digit classes.
        fraction: share of the batch's pairs re-paired, in [0, 1]; 0 returns the batch unchanged.

    Returns:
        (input (B, 2, H, W) float32, target (B,) int64, classes (B, 2) int64).
    """
    target = (classes[:, 0] <= classes[:, 1]).long()
    if fraction == 0:
        return x, target, classes
    b = x.shape[0]
    chosen = torch.randperm(b, generator=generator)[: round(fraction * b)].to(x.device)
    partner = torch.randperm(b, generator=generator).to(x.device)[chosen]
    x, classes = x.clone(), classes.clone()
    x[chosen, 1], classes[chosen, 1] = x[partner, 1], classes[partner, 1]
    return x, (classes[:, 0] <= classes[:, 1]).long(), classes
