"""Prompt scorers behind the QDGS scorer interface (``encode_text``, ``encode_image``, unit embeddings).

Load one by name with :func:`load_scorer` (names: :func:`list_scorers`):

- ``"openai-clip"``: OpenAI CLIP ViT-B/32 through open_clip (``paper`` profile;
  :mod:`qdgs.scorers.openai_clip`).
- ``"offline-clip"``: a small CLIP-architecture model trained in the repository from a JSON config
  in ``lib/qdgs/configs``, written by :func:`qdgs.scorers.offline_clip.save_clip`
  (``smoke`` and ``default`` profiles; :mod:`qdgs.scorers.offline_clip`). It knows its training
  captions and warns for a prompt outside them (:func:`qdgs.prompts.check_prompts`).

Backends are imported when loaded: open_clip is a heavy import that a caller listing names, or
reading a parameter spec, should not pay for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qdgs.registry import Registry

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["list_scorers", "load_scorer"]


def _openai_clip(weights: str = "openai", device: str | torch.device = "cpu") -> nn.Module:
    from qdgs.scorers.openai_clip import load_openai_clip  # imported on use: open_clip

    return load_openai_clip(pretrained=weights, device=device)


def _offline_clip(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    from qdgs.scorers.offline_clip import load_trained  # imported on use: open_clip

    return load_trained(path).to(device)


_REGISTRY = Registry("scorer", {"openai-clip": _openai_clip, "offline-clip": _offline_clip})


def list_scorers() -> list[str]:
    """The names :func:`load_scorer` accepts."""
    return _REGISTRY.names()


def load_scorer(name: str, **kwargs: object) -> nn.Module:
    """A frozen prompt scorer by name.

    Args:
        name: one of :func:`list_scorers`.
        **kwargs: ``openai-clip``: ``weights`` (``"openai"`` for the hub or the local Hugging Face
            cache, or a checkpoint file), ``device``; ``offline-clip``: ``path`` (required), ``device``.

    Raises:
        qdgs.params.ParameterError: an unknown name or argument, naming the allowed ones.
    """
    return _REGISTRY.load(name, **kwargs)
