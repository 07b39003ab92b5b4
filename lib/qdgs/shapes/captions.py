"""The paper's shapes prompts and the captions the offline scorer learns them from.

The prompts are the defaults of chapter 01's ``objective_prompts`` and ``measure_prompts``
parameters (:data:`qdgs.prompts.SHAPES_PAPER`); the captions are the scorer's whole vocabulary,
recorded with the trained scorer, so a prompt outside them is flagged, not silently misjudged.

The scorer is trained contrastively on captioned images (:func:`qdgs.scorers.offline_clip.train_clip`):
renders with hard captions, VAE reconstructions with their renders' captions, generator samples
captioned by what the decoder drew (graded for overlays and blends), and splatters.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from qdgs.prompts import SHAPES_PAPER
from qdgs.seeds import derive
from qdgs.shapes.render import COLOUR_NAMES, SHAPE_NAMES, balanced_set, splatters

#: The paper's prompts (facts file).
OBJECTIVE_PROMPTS = SHAPES_PAPER.objective
MEASURE_PROMPTS = SHAPES_PAPER.pairs

#: ``(n, seed) -> (images (n, 3, S, S) in [0, 1], square weight (n,), blueness (n,))``.
GeneratedSamples = Callable[[int, int], tuple[torch.Tensor, np.ndarray, np.ndarray]]


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
    drew, graded for overlays and blends
    (see :meth:`qdgs.generators.shapes_vae.ShapesVAE.decoder_samples`). Without them the search
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

    def __init__(self, size: int, splatter_fraction: float = 0.2,
                 reconstruct: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 reconstruct_fraction: float = 0.5, generated: GeneratedSamples | None = None,
                 generated_fraction: float = 0.3) -> None:
        self.size = size
        self.splatter_fraction = splatter_fraction
        self.reconstruct = reconstruct
        self.reconstruct_fraction = reconstruct_fraction
        self.generated = generated
        self.generated_fraction = generated_fraction if generated is not None else 0.0
        self.vocabulary = vocabulary()

    def __call__(self, rng: np.random.Generator, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, S, S) images in [0, 1] and (B, V) targets in [0, 1] over :attr:`vocabulary`."""
        n_splat = round(self.splatter_fraction * batch_size)
        n_gen = round(self.generated_fraction * (batch_size - n_splat))
        n = batch_size - n_splat - n_gen
        seed = int(rng.integers(2**31))  # renders, splatters and samples draw named streams of it
        shapes = balanced_set(n, seed, self.size)
        images, shape, colour = [shapes.floats()], [shapes.shape], [shapes.colour]
        if self.reconstruct is not None:
            k = round(self.reconstruct_fraction * n)
            with torch.no_grad():
                images[0][:k] = self.reconstruct(images[0][:k])
        if n_gen:
            g = self.generated(n_gen, derive(seed, "generated"))
            images.append(g[0]), shape.append(g[1]), colour.append(g[2])
        images.append(splatters(n_splat, seed, self.size).float() / 255)
        shape.append(-np.ones(n_splat, dtype=np.int64)), colour.append(np.zeros(n_splat, dtype=np.int64))
        return torch.cat(images), positives(np.concatenate(shape), np.concatenate(colour), self.vocabulary)
