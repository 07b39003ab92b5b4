"""Skin tone by the individual typology angle (ITA), from skin pixels, with and without illumination normalisation.

ITA is ``arctan((L* − 50) / b*)`` in degrees (colorimetry), computed on skin pixels: a YCrCb skin
rule inside a central face ellipse. ITA falls when a photo is dim, so dark *lighting* reads as
dark *skin*: a confound the offline-scorer notes ran into. We report ITA twice: raw, and after a
white-patch illumination normalisation that scales each channel so the image's bright end (98th
percentile) is white. Normalisation removes global exposure and colour cast, not shading across
the face; neither number is a measurement of a person, and the book says so.

An image with too few skin-coloured pixels (very dark or strongly tinted images fail colour rules)
gets no ITA (NaN) rather than one measured on whatever the ellipse holds; callers count them.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["DARK_ITA", "LIGHT_ITA", "SKIN_LABEL_ITA", "MIN_SKIN_SHARE", "white_patch", "skin_mask", "ita",
           "skin_tone", "skin_labels"]

#: The book's one definition of dark skin: normalised ITA below this (degrees), in every chapter.
#: Chardon's "brown" bound (10°) assumes studio colorimetry; after white-patch normalisation it
#: calls only about a third of UTKFace's Black faces dark, while 25° separates UTKFace's Black
#: from its White and Asian faces about as well as any single angle does (chapter 02 measures it).
DARK_ITA = 25.0
#: Normalised ITA above which a face counts as light where a clean split is wanted (UTKFace's
#: skin labels, chapter 03's pairs); faces between the two are neither.
LIGHT_ITA = 30.0
#: Thresholds on normalised ITA that, with the race label, define skin labels on UTKFace.
SKIN_LABEL_ITA = (DARK_ITA, LIGHT_ITA)
#: Fewest skin-coloured pixels, as a share of the face ellipse, for an image to get an ITA.
MIN_SKIN_SHARE = 0.05


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB in [0, 1] → CIE L*a*b* (D65)."""
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def white_patch(images: np.ndarray, percentile: float = 98.0) -> np.ndarray:
    """Illumination normalisation: scale each channel so its ``percentile`` becomes 1 (clipped).

    Args:
        images: (N, H, W, 3) RGB in [0, 1].
        percentile: the per-channel brightness treated as white.
    """
    top = np.percentile(images.reshape(len(images), -1, 3), percentile, axis=1)
    return np.clip(images / np.maximum(top, 0.05)[:, None, None, :], 0, 1)


def skin_mask(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """YCrCb skin-coloured pixels inside a central ellipse (the face), and which images have enough.

    Args:
        images: (N, H, W, 3) RGB in [0, 1].

    Returns:
        (N, H, W) bool skin pixels, and (N,) bool: at least :data:`MIN_SKIN_SHARE` of the
        ellipse is skin-coloured (only those images are measurable).
    """
    n, h, w, _ = images.shape
    y, x = np.mgrid[0:h, 0:w]
    ellipse = ((x - w / 2) / (0.3 * w)) ** 2 + ((y - 0.55 * h) / (0.38 * h)) ** 2 <= 1
    rgb = images * 255
    yy = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    cr = (rgb[..., 0] - yy) * 0.713 + 128
    cb = (rgb[..., 2] - yy) * 0.564 + 128
    rule = (cr >= 133) & (cr <= 180) & (cb >= 70) & (cb <= 130) & (yy > 15) & ellipse
    enough = rule.reshape(n, -1).mean(1) >= MIN_SKIN_SHARE * ellipse.mean()
    return rule, enough


def ita(images: np.ndarray | torch.Tensor, normalise: bool = True) -> np.ndarray:
    """Individual typology angle of each face's skin pixels (median L*, median b*).

    Args:
        images: (N, H, W, 3) RGB in [0, 1] or uint8, or a (N, 3, H, W) tensor in [0, 1].
        normalise: apply :func:`white_patch` first (removes global exposure and colour cast).

    Returns:
        (N,) ITA in degrees (higher = lighter; the book calls < :data:`DARK_ITA` dark);
        NaN for an image with too few skin pixels (:func:`skin_mask`).
    """
    arr = _hwc(images)
    if normalise:
        arr = white_patch(arr)
    lab = _srgb_to_lab(arr)
    mask, enough = skin_mask(arr)
    out = np.full(len(arr), np.nan)
    for i in np.flatnonzero(enough):
        L, b = np.median(lab[i, ..., 0][mask[i]]), np.median(lab[i, ..., 2][mask[i]])
        out[i] = math.degrees(math.atan2(L - 50, max(b, 1e-3)))
    return out


def _hwc(images: np.ndarray | torch.Tensor) -> np.ndarray:
    """(N, H, W, 3) float64 in [0, 1] from a (N, 3, H, W) tensor or an HWC float / uint8 array."""
    if isinstance(images, torch.Tensor):
        return images.detach().cpu().permute(0, 2, 3, 1).clamp(0, 1).numpy().astype(np.float64)
    arr = np.asarray(images)
    return arr.astype(np.float64) / 255 if arr.dtype == np.uint8 else arr.astype(np.float64)


def skin_tone(ita_norm: np.ndarray) -> np.ndarray:
    """Skin tone by the book's definition: 0 dark (ITA < :data:`DARK_ITA`), 1 light (> :data:`LIGHT_ITA`), -1 neither or NaN."""
    values = np.asarray(ita_norm, dtype=float)
    return np.where(values < DARK_ITA, 0, np.where(values > LIGHT_ITA, 1, -1))


def skin_labels(race: np.ndarray, ita_norm: np.ndarray) -> np.ndarray:
    """UTKFace skin labels from race AND normalised ITA: 0 dark, 1 light, -1 none (also for NaN ITA).

    Race alone is a category, not a skin tone; ITA alone tracks lighting. Requiring both to agree
    keeps only faces whose tone is unambiguous, so lighting cannot define the label.
    """
    race, tone = np.asarray(race), skin_tone(ita_norm)
    dark = (race == 1) & (tone == 0)
    light = np.isin(race, (0, 2)) & (tone == 1)
    return np.where(dark, 0, np.where(light, 1, -1))
