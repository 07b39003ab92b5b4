"""The paper's two extra objective terms for faces: ``loss += 0.5·(max(‖w‖, q) − q)² + 0.2·(1 − uniqueness)``.

Both follow the regularizer contract of :class:`qdgs.scoring.PromptScoring`: ``(z, embeddings) →
(B,)`` added to the prompt loss. Their ``repr`` names every setting, because the search's cache
key (:func:`qdgs.search.search_key`) identifies regularizers by it.
"""

from __future__ import annotations

import torch
from torch import nn

from qdgs.prompts import Prompts
from qdgs.scoring import PromptScoring, fold_into_box, spherical_distance
from qdgs.seeds import derive

__all__ = ["LatentNormPenalty", "UniquenessMemory", "typical_latent_norm", "regularizers", "search_scoring"]


class LatentNormPenalty:
    """``weight · (max(‖z‖, q) − q)²``: keeps latents near the generator's typical norm ``q``.

    Gradient steps on prompt losses push latents outward, where a generator renders artefacts;
    the penalty is zero inside the typical shell and grows quadratically outside.

    Args:
        q: the typical latent norm (see :func:`typical_latent_norm`).
        weight: the paper's 0.5.
        bound: for a :class:`qdgs.scoring.BoundedLatent` generator, its bound: the penalty is on
            the latent the generator decodes (:func:`qdgs.scoring.fold_into_box`), so a search latent
            far out (which decodes inside the box) is not scored as off the manifold. 0: on ``z`` itself.
    """

    def __init__(self, q: float, weight: float = 0.5, bound: float = 0.0) -> None:
        self.q, self.weight, self.bound = float(q), weight, float(bound)

    def __repr__(self) -> str:
        return f"LatentNormPenalty(q={self.q!r}, weight={self.weight!r}, bound={self.bound!r})"

    def __call__(self, z: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, D) latents, (B, E) embeddings → (B,) penalty."""
        if self.bound > 0:
            z = fold_into_box(z, self.bound)
        return self.weight * (z.norm(dim=1).clamp(min=self.q) - self.q) ** 2


class UniquenessMemory:
    """``weight · (1 − uniqueness)``: rewards images unlike those already accepted into the archive.

    Uniqueness is an image embedding's smallest spherical distance to a FIFO memory of up to
    ``size`` embeddings of earlier accepted solutions, times ``100 / len(memory)`` (the paper's
    scaling, which favours novelty strongly while the memory is small). An empty memory gives
    uniqueness 1, i.e. no penalty.

    Args:
        weight: the paper's 0.2.
        size: the paper's 100.
    """

    def __init__(self, weight: float = 0.2, size: int = 100) -> None:
        self.weight, self.size = weight, size
        self.memory = torch.empty(0)

    def __repr__(self) -> str:  # the settings, not the memory: a search's identity starts empty
        return f"UniquenessMemory(weight={self.weight!r}, size={self.size!r})"

    def __call__(self, z: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, D) latents, (B, E) embeddings → (B,) penalty."""
        if len(self.memory) == 0:
            return torch.zeros(len(embeddings), device=embeddings.device)
        d = spherical_distance(embeddings, self.memory.to(embeddings))
        uniqueness = d.min(dim=1).values * 100 / len(self.memory)
        return self.weight * (1 - uniqueness)

    def update(self, accepted: torch.Tensor) -> None:
        """Remember (n, E) embeddings of solutions that entered the archive (oldest dropped first)."""
        accepted = accepted.detach().float().cpu()
        self.memory = (accepted if len(self.memory) == 0 else torch.cat([self.memory, accepted]))[-self.size:]


def typical_latent_norm(generator: nn.Module, n: int = 4096, seed: int = 0) -> float:
    """Median norm of ``n`` random latents of ``generator`` as it decodes them (the ``q`` of :class:`LatentNormPenalty`)."""
    z = generator.sample_latents(n, seed=derive(seed, "faces", "typical-latent-norm"))
    squash = getattr(generator, "squash", None)  # a BoundedLatent: the norm the decoder sees
    return float((squash(z) if squash else z).norm(dim=1).median())


def regularizers(generator: nn.Module, seed: int = 0) -> list:
    """The paper's two face regularisers for ``generator``, with ``q`` from its random latents."""
    bound = float(getattr(generator, "bound", 0.0))
    return [LatentNormPenalty(typical_latent_norm(generator, seed=seed), bound=bound), UniquenessMemory()]


def search_scoring(generator: nn.Module, scorer: nn.Module, prompts: Prompts,
                   device: str | torch.device = "cpu") -> PromptScoring:
    """A fresh scoring for one faces search: the prompts, the paper's two regularisers (an empty
    uniqueness memory), and the Jacobian method and precision chosen by measuring on ``device``.

    The chapter's search, its seed replicates and its contrast generator all search through this.
    """
    return PromptScoring(generator, scorer, prompts.objective, prompts.pairs, regularizers=regularizers(generator),
                         jacobian_method="auto", precision="auto", device=device)
