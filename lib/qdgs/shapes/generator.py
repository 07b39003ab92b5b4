"""The shapes chapter's generator: the VAE trained here at a chosen colour bias, or the paper's own.

The paper's premise is a *biased* generator: QDGS should balance a synthetic set "despite the data
coming from a biased generator". ``shapes-vae`` is trained on renders with colour bias
``bias`` (0.5: balanced), as a practitioner with only biased data would train it; ``reference-vae``
is the reference implementation's shipped VAE (:mod:`qdgs.generators.reference_vae`), whose
random samples are biased by its own training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import torch

from qdgs.params import ParameterError
from qdgs.shapes.render import GROUP_NAMES, balanced_set, nearest_colour

if TYPE_CHECKING:
    from torch import nn

__all__ = ["drawable_groups", "shapes_generator", "short_steps"]

#: A decoded square weight this close to 0 or 1 draws one clean shape, not an overlay of both.
CLEAN_WEIGHT = 0.1


def shapes_generator(name: str, *, steps: int, seed: int, size: int, bias: float,
                     path: str = "") -> tuple[nn.Module, float]:
    """The chapter's generator, on the CPU, and its training seconds (0 for loaded weights).

    It stays on the CPU while the scorer learns from its samples; ``PromptScoring(device=…)`` moves
    it where the search runs.

    Args:
        name: ``"shapes-vae"`` or ``"reference-vae"``.
        steps, seed, bias: the shapes VAE's training steps, seed and training colour bias.
        size: side of the images the chapter works at (the reference VAE draws 128 px only).
        path: the reference VAE's state dict, empty for the cache or a download.
    """
    from qdgs.generators import load_generator  # imported on use: backends load their own dependencies
    from qdgs.generators.shapes_vae import cached_vae

    if name == "shapes-vae":
        vae, seconds = cached_vae(steps, seed, output_size=size, bias=bias)
    elif name == "reference-vae":
        if size != 128:
            raise ParameterError(f"reference-vae draws 128 px images; set image_size=128 (got {size})")
        vae, seconds = load_generator("reference-vae", path=path or None), 0.0
    else:
        raise ParameterError(f"unknown shapes generator {name!r}; allowed values: 'shapes-vae', 'reference-vae'")
    return vae, seconds


def short_steps(steps: int) -> int:
    """The training steps of the shorter VAE that the drawable check sets beside the chapter's: a quarter."""
    return max(1, steps // 4)


@torch.no_grad()
def drawable_groups(vae: nn.Module, n: int, seed: int, size: int) -> pd.DataFrame:
    """Can the generator draw every colour × shape group? Its reconstructions of balanced renders, per group.

    A sampler can only find what the generator can draw. A VAE trained on biased renders may
    draw its rare groups (red squares, blue triangles) as overlays of both shapes rather than as
    the shape itself, and then no search over its latents yields them. The in-repo decoder says
    what it draws (a square weight and one colour), so this reads it directly: a reconstruction is
    *clean* when its weight is within :data:`CLEAN_WEIGHT` of 0 or 1, and *right* when it is clean,
    of the render's shape and of its colour (:func:`qdgs.shapes.render.nearest_colour`).

    Args:
        vae: a :class:`qdgs.generators.shapes_vae.ShapesVAE` (``encode`` and ``decode_shapes``).
        n: balanced renders encoded (a quarter per group).

    Returns:
        One row per group: mean square weight, share clean, share right.
    """
    if not hasattr(vae, "decode_shapes"):
        raise TypeError(f"{type(vae).__name__} does not say what it draws (no decode_shapes); this check is "
                        "for the in-repo shapes VAE")
    renders = balanced_set(n, seed, size)
    _, weight, rgb = vae.decode_shapes(vae.encode(renders.floats())[0], size)
    weight = weight.cpu().numpy()
    clean = (weight < CLEAN_WEIGHT) | (weight > 1 - CLEAN_WEIGHT)
    right = clean & ((weight > 0.5) == renders.shape.astype(bool)) & (nearest_colour(rgb.cpu().numpy()) == renders.colour)
    rows = {}
    for g, name in enumerate(GROUP_NAMES):  # group g is colour g // 2, shape g % 2
        k = (renders.colour == g // 2) & (renders.shape == g % 2)
        rows[name] = {"square weight": float(weight[k].mean()), "clean": float(clean[k].mean()),
                      "drawn right": float(right[k].mean())}
    return pd.DataFrame(rows).T.rename_axis("rendered group")
