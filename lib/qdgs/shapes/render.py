"""The shapes domain's renderer: coloured triangles and squares, and colour splatters.

The paper's proof of concept (facts file, "Shapes domain"): 128 × 128 images on a white
background, a triangle (≈ 64 px base) or a square (≈ 36 px side), red (216, 27, 96) or blue
(30, 136, 229), rotated by up to 180° and zoomed by a random resized crop of scale 0.5–2. We read
"scale" as the *area* factor, so the linear zoom is √scale ∈ [0.71, 1.41]: a 64 px triangle at
√2 still fits the canvas. The shape is placed at a random position where it fits.

A colour *bias* ``b`` makes colour predict shape: a fraction ``b`` of triangles is red and a
fraction ``b`` of squares is blue. Splatters (many small blobs of random colours) are what the
negative objective prompt "Splatters of colors." describes; they train the scorer's objective.

Everything is drawn at any ``size`` with the geometry scaled from the 128 px canvas, so a
notebook can work at 64 or 32 px on a CPU and at 128 px for the paper profile. Drawing uses PIL
at 4× supersampling (anti-aliased edges), which renders thousands of images per second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from qdgs.seeds import numpy_rng

CANVAS = 128
RED = (216, 27, 96)
BLUE = (30, 136, 229)
COLOURS = (RED, BLUE)
COLOUR_NAMES = ("red", "blue")
SHAPE_NAMES = ("triangle", "square")
TRIANGLE_BASE = 64.0
SQUARE_SIDE = 36.0
MAX_ROTATION = 180.0
SCALE_RANGE = (0.5, 2.0)
SUPERSAMPLE = 4


@dataclass
class ShapeSet:
    """Rendered shapes with their labels.

    Attributes:
        images: (N, 3, S, S) uint8 images.
        masks: (N, S, S) float32 coverage of the shape in [0, 1].
        shape: (N,) 0 triangle, 1 square (the classification label).
        colour: (N,) 0 red, 1 blue.
    """

    images: torch.Tensor
    masks: torch.Tensor
    shape: np.ndarray
    colour: np.ndarray

    def __len__(self) -> int:
        return len(self.shape)

    def floats(self) -> torch.Tensor:
        """(N, 3, S, S) float images in [0, 1]."""
        return self.images.float() / 255


#: The four colour × shape groups; group ``g`` is colour ``g // 2``, shape ``g % 2``.
GROUP_NAMES = tuple(f"{c} {s}" for c in COLOUR_NAMES for s in SHAPE_NAMES)


def _polygon(shape: int, rng: np.random.Generator, size: int) -> np.ndarray:
    """(k, 2) vertices of one randomly rotated, zoomed and placed shape on a ``size`` canvas."""
    unit = size / CANVAS
    if shape == 0:  # equilateral triangle around its centroid
        radius = TRIANGLE_BASE / np.sqrt(3)
        angles = np.deg2rad([90, 210, 330])
    else:
        radius = SQUARE_SIDE / np.sqrt(2)
        angles = np.deg2rad([45, 135, 225, 315])
    radius *= unit * np.sqrt(rng.uniform(*SCALE_RANGE))
    angles = angles + np.deg2rad(rng.uniform(0, MAX_ROTATION))
    pts = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    lo, hi = -pts.min(axis=0), size - pts.max(axis=0)
    centre = rng.uniform(np.minimum(lo, hi), np.maximum(lo, hi))
    return pts + centre


def render(shape: np.ndarray, colour: np.ndarray, seed: int, size: int = CANVAS) -> ShapeSet:
    """Draw one shape per label pair.

    Args:
        shape: (N,) 0 triangle, 1 square.
        colour: (N,) 0 red, 1 blue.
        seed: seeds rotation, zoom and position (stream ``"render"`` of it).
        size: canvas side in pixels (geometry scales with it).
    """
    rng = numpy_rng(seed, "render")
    shape, colour = np.asarray(shape, dtype=np.int64), np.asarray(colour, dtype=np.int64)
    big = size * SUPERSAMPLE
    masks = np.empty((len(shape), size, size), dtype=np.float32)
    for i, s in enumerate(shape):
        img = Image.new("L", (big, big), 0)
        ImageDraw.Draw(img).polygon([tuple(p) for p in _polygon(int(s), rng, big)], fill=255)
        masks[i] = np.asarray(img.resize((size, size), Image.BOX), dtype=np.float32) / 255
    rgb = np.asarray(COLOURS, dtype=np.float32)[colour]  # (N, 3)
    images = 255 * (1 - masks[:, None]) + masks[:, None] * rgb[:, :, None, None]
    return ShapeSet(torch.from_numpy(np.rint(images).astype(np.uint8)), torch.from_numpy(masks), shape, colour)


def biased_labels(n: int, bias: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(shape, colour) labels of ``n`` images, half triangles, with colour bias ``bias``.

    Exactly ``round(bias · n_triangles)`` triangles are red and ``round(bias · n_squares)``
    squares are blue, so the requested bias holds exactly, not only in expectation. ``bias = 0.5``
    gives a balanced set.
    """
    if not 0.0 <= bias <= 1.0:
        raise ValueError(f"bias must be in [0, 1], got {bias}")
    rng = numpy_rng(seed, "labels")
    shape = np.repeat([0, 1], [n - n // 2, n // 2])
    colour = np.empty(n, dtype=np.int64)
    for s, majority in ((0, 0), (1, 1)):  # triangles mostly red (0), squares mostly blue (1)
        idx = np.flatnonzero(shape == s)
        k = round(bias * len(idx))
        colour[idx] = np.where(np.arange(len(idx)) < k, majority, 1 - majority)
    order = rng.permutation(n)
    return shape[order], colour[order]


def balanced_labels(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(shape, colour) labels with the four groups as equal as ``n`` allows, shuffled."""
    rng = numpy_rng(seed, "labels")
    group = np.arange(n) % 4
    rng.shuffle(group)
    return group % 2, group // 2


def biased_set(n: int, bias: float, seed: int, size: int = CANVAS) -> ShapeSet:
    """A rendered training set with colour bias ``bias`` (see :func:`biased_labels`).

    Labels and renders draw from two named streams of ``seed``, so they are independent.
    """
    return render(*biased_labels(n, bias, seed), seed=seed, size=size)


def balanced_set(n: int, seed: int, size: int = CANVAS) -> ShapeSet:
    """A rendered set with the four colour × shape groups equally represented."""
    return render(*balanced_labels(n, seed), seed=seed, size=size)


def splatters(n: int, seed: int, size: int = CANVAS) -> torch.Tensor:
    """(n, 3, size, size) uint8 images of 6–30 blobs of random saturated colours on white."""
    rng = numpy_rng(seed, "splatters")
    big = size * SUPERSAMPLE
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        img = Image.new("RGB", (big, big), (255, 255, 255))
        draw = ImageDraw.Draw(img)
        for _ in range(rng.integers(6, 31)):
            hsv = np.uint8([[[rng.integers(0, 256), rng.integers(150, 256), rng.integers(120, 256)]]])
            fill = tuple(int(v) for v in Image.fromarray(hsv, "HSV").convert("RGB").getpixel((0, 0)))
            cx, cy = rng.uniform(0, big, size=2)
            rx, ry = big * rng.uniform(0.01, 0.12, size=2)
            draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=fill)
        out[i] = np.asarray(img.resize((size, size), Image.BOX))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def nearest_colour(rgb: np.ndarray, margin: float = 0.25) -> np.ndarray:
    """(N,) 0 red, 1 blue or −1 neither, for (N, 3) colours in [0, 1].

    A colour is called red or blue only when it is closer to that reference by ``margin`` of the
    red–blue distance, so purple blends stay unnamed.
    """
    ref = np.asarray(COLOURS, dtype=float) / 255
    d = np.linalg.norm(np.asarray(rgb, dtype=float)[:, None, :] - ref[None], axis=2)
    clear = np.abs(d[:, 0] - d[:, 1]) > margin * np.linalg.norm(ref[0] - ref[1])
    return np.where(clear, np.argmin(d, axis=1), -1)


def blueness(rgb: np.ndarray) -> np.ndarray:
    """(N,) position of (N, 3) colours in [0, 1] on the segment from red (0) to blue (1), clipped."""
    red, blue = (np.asarray(c, dtype=float) / 255 for c in COLOURS)
    return np.clip((np.asarray(rgb, dtype=float) - red) @ (blue - red) / np.sum((blue - red) ** 2), 0, 1)
