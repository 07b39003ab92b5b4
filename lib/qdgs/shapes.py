"""The shapes domain: procedurally rendered coloured triangles and squares, and colour splatters.

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
import pandas as pd
import torch
from PIL import Image, ImageDraw

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

#: The paper's prompts (facts file).
OBJECTIVE_PROMPTS = ("A regular square or a triangle.", "Splatters of colors.")
MEASURE_PROMPTS = (("A red shape.", "A blue shape."), ("A triangle with 3 edges.", "A square or diamond with 4 edges."))


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

    def group(self) -> np.ndarray:
        """(N,) group index ``2 · colour + shape`` (red-triangle 0, red-square 1, blue-triangle 2, blue-square 3)."""
        return 2 * self.colour + self.shape


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
        seed: seeds rotation, zoom and position.
        size: canvas side in pixels (geometry scales with it).
    """
    rng = np.random.default_rng(seed)
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
    rng = np.random.default_rng(seed)
    shape = np.repeat([0, 1], [n - n // 2, n // 2])
    colour = np.empty(n, dtype=np.int64)
    for s, majority in ((0, 0), (1, 1)):  # triangles mostly red (0), squares mostly blue (1)
        idx = np.flatnonzero(shape == s)
        k = int(round(bias * len(idx)))
        colour[idx] = np.where(np.arange(len(idx)) < k, majority, 1 - majority)
    order = rng.permutation(n)
    return shape[order], colour[order]


def balanced_labels(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(shape, colour) labels with the four groups as equal as ``n`` allows, shuffled."""
    rng = np.random.default_rng(seed)
    group = np.arange(n) % 4
    rng.shuffle(group)
    return group % 2, group // 2


def biased_set(n: int, bias: float, seed: int, size: int = CANVAS) -> ShapeSet:
    """A rendered training set with colour bias ``bias`` (see :func:`biased_labels`)."""
    return render(*biased_labels(n, bias, seed), seed=seed + 1, size=size)


def balanced_set(n: int, seed: int, size: int = CANVAS) -> ShapeSet:
    """A rendered set with the four colour × shape groups equally represented."""
    return render(*balanced_labels(n, seed), seed=seed + 1, size=size)


def splatters(n: int, seed: int, size: int = CANVAS) -> torch.Tensor:
    """(n, 3, size, size) uint8 images of 6–30 blobs of random saturated colours on white."""
    rng = np.random.default_rng(seed)
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


@torch.no_grad()
def decoder_samples(vae, n: int, seed: int, size: int, latent_bound: float = 3.0,
                    spread: float = 1.5) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """``n`` generator samples from where the search may go, with what the decoder drew.

    Latents are drawn wider than the prior (``spread``) and bounded as the search bounds them.
    The VAE's decoder states what it draws: a square weight (0 a triangle, 1 a square, between an
    overlay of both) and an RGB colour, read as its place between red (0) and blue (1).

    Returns:
        images (n, 3, size, size) in [0, 1], square weight (n,) and blueness (n,), both in [0, 1].
    """
    from qdgs.scoring import BoundedLatent

    z = spread * torch.randn(n, vae.latent_dim, generator=torch.Generator().manual_seed(seed))
    if latent_bound > 0:
        z = BoundedLatent(vae, latent_bound).squash(z)
    masks, weight, rgb = vae.decode_shapes(z, size)
    return vae.compose(vae.blend(masks, weight), rgb), weight.numpy(), blueness(rgb.numpy())


# ---------------------------------------------------------------------------------------------
# Captions for the offline scorer
# ---------------------------------------------------------------------------------------------

def vocabulary() -> list[str]:
    """The scorer's caption vocabulary: the paper's six prompts plus plainer variants.

    The variants ("A red triangle.", "A square.") give the contrastive loss more ways to tie the
    colour word and the shape word to the image separately, so the paper's longer prompts inherit
    both meanings.
    """
    words = [OBJECTIVE_PROMPTS[0], OBJECTIVE_PROMPTS[1], "Paint splatters.",
             *MEASURE_PROMPTS[0], *MEASURE_PROMPTS[1], "A triangle.", "A square.", "A red object.", "A blue object."]
    words += [f"A {c} {s}." for c in COLOUR_NAMES for s in SHAPE_NAMES]
    return words


def positives(shape: np.ndarray, colour: np.ndarray, vocab: list[str]) -> torch.Tensor:
    """(N, V) targets in [0, 1]: how far each caption of ``vocab`` describes each shape image.

    ``shape`` is 0 for a triangle, 1 for a square, a value between for an overlay of both, and
    −1 for a splatter; ``colour`` is 0 red, 1 blue, or between for a blend. Renders have hard
    labels and so 0/1 targets; a half-square, half-triangle overlay is half of each caption.
    """
    shape, colour = np.asarray(shape, dtype=float), np.asarray(colour, dtype=float)
    splat = shape < 0
    sq, blue = np.where(splat, 0.0, shape), np.where(splat, 0.0, colour)
    p_shape = {"triangle": 1 - sq, "square": sq}
    p_colour = {"red": 1 - blue, "blue": blue}
    shape_word = dict(zip(SHAPE_NAMES, MEASURE_PROMPTS[1]))
    colour_word = dict(zip(COLOUR_NAMES, MEASURE_PROMPTS[0]))
    target = {OBJECTIVE_PROMPTS[0]: np.maximum(sq, 1 - sq)}  # a clean shape, not an overlay
    for sn in SHAPE_NAMES:
        target[shape_word[sn]] = target[f"A {sn}."] = p_shape[sn]
    for cn in COLOUR_NAMES:
        target[colour_word[cn]] = target[f"A {cn} object."] = p_colour[cn]
        for sn in SHAPE_NAMES:
            target[f"A {cn} {sn}."] = p_colour[cn] * p_shape[sn]
    splatter_captions = (OBJECTIVE_PROMPTS[1], "Paint splatters.")
    out = np.stack([splat.astype(float) if v in splatter_captions else np.where(splat, 0.0, target[v])
                    for v in vocab], axis=1)
    return torch.as_tensor(out, dtype=torch.float32)


class ShapeCaptionSampler:
    """Draws captioned batches of shapes and splatters for :func:`qdgs.scorers.offline_clip.train_clip`.

    A share of the shapes can be passed through ``reconstruct`` (the VAE's encode–decode) and keep
    their true captions, so that the scorer also reads the generator's slightly blurred images
    correctly: the search scores generator output, not renders. A further share can be replaced by
    ``generated`` images: samples from anywhere the search may go, captioned by what the decoder
    drew, graded for overlays and blends (see :func:`decoder_samples`). Without them the search
    finds the scorer's blind spots: in a first default run, 81 % of the elites it scored as
    triangles were squares (small diamonds placed where no render puts a shape), and with clean
    samples only, it moved on to blended shapes in blended colours.

    Args:
        size: image side in pixels.
        splatter_fraction: share of each batch that is splatters.
        reconstruct: optional ``(B, 3, S, S) -> (B, 3, S, S)`` map applied to some shapes.
        reconstruct_fraction: share of the shapes passed through ``reconstruct``.
        generated: optional ``(n, seed) -> (images, square weight, blueness)`` of generator samples.
        generated_fraction: share of the shapes that are ``generated`` samples.
    """

    def __init__(self, size: int, splatter_fraction: float = 0.2, reconstruct=None,
                 reconstruct_fraction: float = 0.5, generated=None, generated_fraction: float = 0.3) -> None:
        self.size = size
        self.splatter_fraction = splatter_fraction
        self.reconstruct = reconstruct
        self.reconstruct_fraction = reconstruct_fraction
        self.generated = generated
        self.generated_fraction = generated_fraction if generated is not None else 0.0
        self.vocabulary = vocabulary()

    def __call__(self, rng: np.random.Generator, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, S, S) images in [0, 1] and (B, V) targets in [0, 1] over :attr:`vocabulary`."""
        n_splat = int(round(self.splatter_fraction * batch_size))
        n_gen = int(round(self.generated_fraction * (batch_size - n_splat)))
        n = batch_size - n_splat - n_gen
        seed = int(rng.integers(2**31))
        shapes = balanced_set(n, seed, self.size)
        images, shape, colour = [shapes.floats()], [shapes.shape], [shapes.colour]
        if self.reconstruct is not None:
            k = int(round(self.reconstruct_fraction * n))
            with torch.no_grad():
                images[0][:k] = self.reconstruct(images[0][:k])
        if n_gen:
            g = self.generated(n_gen, seed + 3)
            images.append(g[0]), shape.append(g[1]), colour.append(g[2])
        images.append(splatters(n_splat, seed + 7, self.size).float() / 255)
        shape.append(-np.ones(n_splat, dtype=np.int64)), colour.append(np.zeros(n_splat, dtype=np.int64))
        return torch.cat(images), positives(np.concatenate(shape), np.concatenate(colour), self.vocabulary)


# ---------------------------------------------------------------------------------------------
# The chapter's scorer and its zero-shot check
# ---------------------------------------------------------------------------------------------

SCORER_CONFIG = "shapes_clip"


def cached_scorer(vae, steps: int, seed: int, size: int = 64, lr: float = 2e-3, batch_size: int = 64,
                  generated_fraction: float = 0.3, latent_bound: float = 3.0, progress_bar: bool = True):
    """Train (or load from the artifact cache) the offline CLIP scorer of the shapes domain.

    Of each batch's shapes, ``generated_fraction`` are generator samples captioned by what the
    decoder drew (:func:`decoder_samples`, latents bounded by ``latent_bound`` as the search
    bounds them); half of the rest are VAE reconstructions with their true captions (see
    :class:`ShapeCaptionSampler`). A per-pair sigmoid loss is added to the InfoNCE so that every
    image answers the shape question, not only the colour one.

    Returns:
        (scorer, training seconds).
    """
    import time

    from qdgs.cache import artifact
    from qdgs.scorers.offline_clip import OfflineClipScorer, load_clip, make_clip, save_clip, train_clip

    settings = {"config": SCORER_CONFIG, "steps": steps, "seed": seed, "size": size, "lr": lr,
                "batch_size": batch_size, "vocabulary": vocabulary(),
                "generated_fraction": generated_fraction, "generated_targets": "graded", "latent_bound": latent_bound,
                "init": "seeded",
                "vae": weights_hash(vae)}  # many of its training images come from this VAE

    def build(tmp) -> None:
        model = make_clip(SCORER_CONFIG, seed)
        generated = (lambda n, s: decoder_samples(vae, n, s, size, latent_bound)) if generated_fraction else None
        sampler = ShapeCaptionSampler(size, reconstruct=vae.reconstruct, generated=generated,
                                      generated_fraction=generated_fraction)
        t0 = time.perf_counter()
        train_clip(model, sampler, sampler.vocabulary, steps=steps, lr=lr, seed=seed, progress=progress_bar,
                   batch_size=batch_size, pair_weight=1.0)
        save_clip(model, tmp / "clip.pt", SCORER_CONFIG)
        (tmp / "seconds.txt").write_text(f"{time.perf_counter() - t0:.1f}")

    path = artifact("shapes-offline-clip", settings, build)
    return OfflineClipScorer(load_clip(path / "clip.pt")), float((path / "seconds.txt").read_text())


def weights_hash(model: torch.nn.Module) -> str:
    """A short hash of a model's weights (keys a cached artifact that depends on the model)."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


@torch.no_grad()
def prompt_scores(scorer, images: torch.Tensor) -> np.ndarray:
    """(N, 3) [objective, colour measure, shape measure] of (N, 3, H, W) images in [0, 1], in batches."""
    from qdgs.scoring import remap_objective, spherical_distance

    text = scorer.encode_text(list(OBJECTIVE_PROMPTS) + [p for pair in MEASURE_PROMPTS for p in pair])
    out = []
    for i in range(0, len(images), 256):
        d = spherical_distance(scorer.encode_image(images[i:i + 256]), text)
        out.append(torch.stack([remap_objective(d[:, 0] - d[:, 1]), d[:, 2] - d[:, 3], d[:, 4] - d[:, 5]], 1))
    return torch.cat(out).numpy()


def zero_shot(scorer, vae, n: int, seed: int, size: int = 64) -> tuple[pd.DataFrame, dict]:
    """Zero-shot accuracy of the paper's prompts on held-out renders, VAE reconstructions and splatters.

    Colour is right when the colour measure's sign matches (negative = red); shape when the shape
    measure's sign matches (negative = triangle); quality by the mean objective of shapes vs
    splatters. Also returns the calibrated shape zero (see :func:`qdgs.debias.calibrate_zero`).
    """
    from qdgs.debias import calibrate_zero

    test = balanced_set(n, seed, size)
    with torch.no_grad():
        recon = vae.reconstruct(test.floats())
    splat = prompt_scores(scorer, splatters(n // 2, seed + 1, size).float() / 255)
    rows, zero = [], 0.0
    for name, images in (("rendered", test.floats()), ("VAE reconstruction", recon)):
        s = prompt_scores(scorer, images)
        if name == "rendered":
            zero = calibrate_zero(s[:, 2], test.shape)
        rows.append({"images": name, "colour accuracy": np.mean((s[:, 1] >= 0) == (test.colour == 1)),
                     "shape accuracy": np.mean((s[:, 2] >= 0) == (test.shape == 1)),
                     "shape accuracy (calibrated zero)": np.mean((s[:, 2] >= zero) == (test.shape == 1)),
                     "objective (shapes)": s[:, 0].mean(), "objective (splatters)": splat[:, 0].mean()})
    return pd.DataFrame(rows), {"shape_zero": zero}


def calibrate_ranges(scorer, vae, n: int, seed: int, quantile: float) -> list[tuple[float, float]]:
    """Archive ranges of the two measures from random VAE samples: the (q, 1 − q) quantiles, widened 10 %.

    The paper's ±0.1 is a property of OpenAI CLIP's embedding geometry; an in-repo scorer spreads
    its measures differently (the feasibility run saw ≈ ±0.5), and a range that is too wide leaves
    cells no image can reach, one too narrow piles everything into the edge cells.
    """
    with torch.no_grad():
        m = prompt_scores(scorer, vae(vae.sample_latents(n, seed)))[:, 1:]
    lo, hi = np.quantile(m, quantile, axis=0), np.quantile(m, 1 - quantile, axis=0)
    pad = 0.05 * (hi - lo)
    return [(float(a - d), float(b + d)) for a, b, d in zip(lo, hi, pad)]


def search_checkpoint(config, vae, scorer, latent_bound: float):
    """Where a search of these models and settings checkpoints in the artifact cache.

    :func:`qdgs.search.run_search` resumes from this file, so an unchanged rerun reloads the
    finished archive instead of searching again, and a longer run continues a shorter one.
    """
    from qdgs.cache import cache_root, params_key

    key = params_key("shapes-search", {"config": config.key(), "vae": weights_hash(vae),
                                       "scorer": weights_hash(scorer), "latent_bound": latent_bound})
    path = cache_root() / "shapes-search" / f"{key}.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
