"""Batched image operations shared by the domains: (B, 3, H, W) float images in [0, 1].

Geometry (:func:`reframe`), blur, lighting (:func:`relight`), the degradations that the offline
face scorer learns as "a fake or discoloured photo" (:func:`degrade`), and repainting shapes
through their masks (:func:`recolour`). Every random choice draws from a ``torch.Generator`` the
caller passes, so the operations never touch the global RNG.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["DEGRADATION_KINDS", "reframe", "blur", "relight", "degrade", "recolour"]

#: The degradations :func:`degrade` knows; none of them darkens on average.
DEGRADATION_KINDS = ("recolour", "cast", "pixelate", "shuffle", "noise")


def reframe(images: torch.Tensor, gen: torch.Generator, max_angle: float = 25.0,
            scale: tuple[float, float] = (0.75, 1.25), shift: float = 0.12) -> torch.Tensor:
    """Random rotation, zoom (in and out, reflection-padded), shift and flip.

    UTKFace crops are upright and tightly centred; the DCGAN's faces are tilted, shifted and
    framed more loosely or more tightly. Training on reframed faces closes that gap.
    """
    b = len(images)
    angle = (torch.rand(b, generator=gen) * 2 - 1) * math.radians(max_angle)
    s = torch.exp(math.log(scale[0]) + (math.log(scale[1]) - math.log(scale[0])) * torch.rand(b, generator=gen))
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    t = (torch.rand(b, 2, generator=gen) * 2 - 1) * shift
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos * flip, -sin, t[:, 0]], 1), torch.stack([sin * flip, cos, t[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode="reflection", align_corners=False)


def blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Gaussian blur with a per-image ``sigma`` ((B,) pixels; 0 leaves an image unchanged)."""
    radius = 4
    x = torch.arange(-radius, radius + 1, dtype=images.dtype)
    k = torch.exp(-x[None] ** 2 / (2 * sigma.clamp(min=1e-3)[:, None].to(images) ** 2))
    k = k / k.sum(1, keepdim=True)
    b, c, h, w = images.shape
    flat = F.pad(images.reshape(1, b * c, h, w), (radius,) * 4, mode="reflect")
    kernels = k.repeat_interleave(c, 0)
    flat = F.conv2d(flat, kernels[:, None, None, :], groups=b * c)
    flat = F.conv2d(flat, kernels[:, None, :, None], groups=b * c)
    return flat.reshape(b, c, h, w)


def relight(images: torch.Tensor, gen: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """Random exposure, gamma, white balance and desaturation (lighting augmentation).

    Applied to faces of every skin tone alike, so that a model trained on the result cannot read
    skin tone from overall brightness or colour cast.

    Args:
        images: (B, 3, H, W) in [0, 1].
        gen: the random generator.
        strength: 0 = identity, 1 = the full ranges (exposure ×0.35–1.6, gamma 0.7–1.4,
            per-channel gain 0.8–1.2, saturation 0.6–1.2).
    """
    b = len(images)

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return (lo + (hi - lo) * torch.rand(b, *shape, generator=gen)).to(images)

    log_exposure = u(math.log(0.35), math.log(1.6), 1, 1, 1) * strength
    x = images.clamp(0, 1) ** torch.exp(u(math.log(0.7), math.log(1.4), 1, 1, 1) * strength)
    x = x * torch.exp(log_exposure) * (1 + (u(0.8, 1.2, 3, 1, 1) - 1) * strength)
    grey = x.mean(1, keepdim=True)
    x = grey + (x - grey) * (1 + (u(0.6, 1.2, 1, 1, 1) - 1) * strength)
    return x.clamp(0, 1)


def degrade(images: torch.Tensor, kind: str, gen: torch.Generator) -> torch.Tensor:
    """One degradation of :data:`DEGRADATION_KINDS` applied to every image of the batch.

    None of them darkens on average, so "degraded" cannot be learnt as "dim".
    """
    b, _, h, w = images.shape
    if kind == "recolour":  # swapped or inverted channels: hues no face has
        perm = [torch.randperm(3, generator=gen) for _ in range(b)]
        x = torch.stack([img[p] for img, p in zip(images, perm)])
        inv = torch.rand(b, 3, 1, 1, generator=gen) < 0.3
        return torch.where(inv, 1 - x, x)
    if kind == "cast":  # a strong colour cast with boosted saturation
        gain = 0.35 + 1.4 * torch.rand(b, 3, 1, 1, generator=gen)
        x = images * gain / gain.mean(1, keepdim=True)
        grey = x.mean(1, keepdim=True)
        return (grey + 1.8 * (x - grey)).clamp(0, 1)
    if kind == "pixelate":
        side = int(torch.randint(5, 12, (1,), generator=gen))
        small = F.interpolate(images, size=(side, side), mode="area")
        return F.interpolate(small, size=(h, w), mode="nearest" if side % 2 else "bilinear")
    if kind == "shuffle":  # a 4 × 4 jigsaw of the face
        g = 4
        tiles = images.unfold(2, h // g, h // g).unfold(3, w // g, w // g)  # (B, 3, g, g, h/g, w/g)
        tiles = tiles.reshape(b, 3, g * g, h // g, w // g)
        tiles = tiles[:, :, torch.randperm(g * g, generator=gen)].reshape(b, 3, g, g, h // g, w // g)
        return tiles.permute(0, 1, 2, 4, 3, 5).reshape(b, 3, h, w)
    if kind == "noise":
        sigma = 0.12 + 0.18 * torch.rand(b, 1, 1, 1, generator=gen)
        return (images + sigma * torch.randn(images.shape, generator=gen)).clamp(0, 1)
    raise ValueError(f"unknown degradation {kind!r}; known: {', '.join(DEGRADATION_KINDS)}")


def recolour(masks: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(N, 3, S, S) shapes painted in uniformly random colours through their (N, S, S) coverage masks.

    An oracle trained on such images can only read outline, never colour.
    """
    colours = torch.rand(len(masks), 3, 1, 1, generator=gen)
    m = masks[:, None]
    return 1 - m + m * colours
