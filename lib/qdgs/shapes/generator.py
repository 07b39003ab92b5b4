"""The shapes chapter's generator: the VAE trained here at a chosen colour bias, or the paper's own.

The paper's premise is a *biased* generator: QDGS should balance a synthetic set "despite the data
coming from a biased generator". ``shapes-vae`` is trained on renders with colour bias
``bias`` (0.5: balanced), as a practitioner with only biased data would train it; ``reference-vae``
is the reference implementation's shipped VAE (:mod:`qdgs.generators.reference_vae`), whose
random samples are biased by its own training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qdgs.params import ParameterError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["shapes_generator"]


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
