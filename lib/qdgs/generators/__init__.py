"""Generators behind the QDGS generator interface: ``forward(z (B, D)) -> (B, 3, H, W)`` in [0, 1].

Load one by name with :func:`load_generator` (names: :func:`list_generators`):

- ``"dcgan"``: the DCGAN face generator of ``gan-face-generate`` (:mod:`qdgs.generators.dcgan`).
- ``"dcgan-skewed"``: that DCGAN fine-tuned on light-skewed UTKFace (:mod:`qdgs.generators.skewed_dcgan`).
- ``"stylegan2"``: StyleGAN2-FFHQ-256 from NVIDIA's pickle (:mod:`qdgs.generators.stylegan2`).
- ``"shapes-vae"``: a shapes VAE written by :func:`qdgs.generators.shapes_vae.save_vae`.
- ``"reference-vae"``: the paper's own shapes VAE (:mod:`qdgs.generators.reference_vae`).

Backends are imported when loaded, so that one backend's dependencies (a PyPI package, the shapes
renderer) never burden another's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qdgs.registry import Registry

if TYPE_CHECKING:
    from torch import nn

__all__ = ["list_generators", "load_generator"]


def _dcgan(pretrained: bool = True, device: str = "cpu") -> nn.Module:
    from qdgs.generators.dcgan import DCGANFaces  # imported on use: needs gan-face-generate

    return DCGANFaces(pretrained=pretrained, device=device)


def _dcgan_skewed(path: str | Path | None = None, sha256: str | None = None) -> nn.Module:
    from qdgs.generators.skewed_dcgan import load_skewed_dcgan  # imported on use: needs gan-face-generate

    return load_skewed_dcgan(path, sha256)


def _stylegan2(path: str | Path | None = None, sha256: str | None = None, truncation: float = 0.7,
               n_stats: int = 10_000, device: str = "cpu") -> nn.Module:
    from qdgs.generators.stylegan2 import StyleGAN2Faces  # imported on use: the 350 MB pickle's reader

    return StyleGAN2Faces.load(path, sha256=sha256, truncation=truncation, n_stats=n_stats, device=device)


def _shapes_vae(path: str | Path) -> nn.Module:
    from qdgs.generators.shapes_vae import load_vae  # imported on use: pulls in the shapes renderer

    return load_vae(path)


def _reference_vae(path: str | Path | None = None, download: bool | None = None) -> nn.Module:
    from qdgs.generators.reference_vae import load_reference_vae  # imported on use, as every backend

    return load_reference_vae(path, download)


_REGISTRY = Registry("generator", {"dcgan": _dcgan, "dcgan-skewed": _dcgan_skewed, "stylegan2": _stylegan2,
                                   "shapes-vae": _shapes_vae, "reference-vae": _reference_vae})


def list_generators() -> list[str]:
    """The names :func:`load_generator` accepts."""
    return _REGISTRY.names()


def load_generator(name: str, **kwargs: object) -> nn.Module:
    """A frozen generator by name, on the CPU unless a ``device`` is named (``dcgan``, ``stylegan2``).

    Args:
        name: one of :func:`list_generators`.
        **kwargs: ``dcgan``: ``pretrained`` (False gives random weights), ``device``; ``dcgan-skewed``:
            ``path``, ``sha256`` (see :func:`qdgs.generators.skewed_dcgan.load_skewed_dcgan`; ``.to(device)`` it);
            ``stylegan2``: ``path``, ``sha256`` (see :func:`qdgs.generators.stylegan2.weights_path`),
            ``truncation``, ``n_stats``, ``device``; ``shapes-vae``: ``path`` (required); ``reference-vae``: ``path``, ``download``
            (see :func:`qdgs.generators.reference_vae.load_reference_vae`).

    Raises:
        qdgs.params.ParameterError: an unknown name or argument, naming the allowed ones.
    """
    return _REGISTRY.load(name, **kwargs)
