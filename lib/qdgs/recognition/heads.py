"""Margin heads for face-recognition training: AdaFace, ArcFace and CosFace.

Each head holds one unit-norm prototype per training identity and turns a batch of embeddings
into scaled cosine logits with a margin on the true identity, to be fed to cross-entropy.
The margin forces identities apart on the sphere, which is what makes embeddings of unseen people
comparable by cosine similarity.

- CosFace (Wang et al., 2018): s · (cos θ − m) on the target.
- ArcFace (Deng et al., 2019): s · cos(θ + m) on the target.
- AdaFace (Kim et al., 2022): the margin adapts to image quality, estimated by the embedding norm
  standardised with running batch statistics: for quality q = clip(h · (‖e‖ − μ) / σ, −1, 1),
  the target logit is s · (cos(θ − m·q) − (m + m·q)). High-quality faces get an ArcFace-like
  angular margin, low-quality ones a CosFace-like additive margin.

All margins are multiplied by :attr:`MarginHead.margin_scale` (1 by default), which the trainer
ramps from 0 to 1 for a margin warm-up: a large margin from step one can keep a small network
from learning anything on a CPU budget.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from qdgs.recognition.distributed import global_mean_std

HEADS = ("adaface", "arcface", "cosface")
_EPS = 1e-3


class MarginHead(nn.Module):
    """Common part of the margin heads: prototypes, cosines, scale and margin.

    Args:
        num_classes: training identities.
        embedding_dim: size of the embeddings.
        scale: s, the logit scale.
        margin: m, the margin.
    """

    def __init__(self, num_classes: int, embedding_dim: int = 512, scale: float = 64.0, margin: float = 0.4) -> None:
        super().__init__()
        if num_classes < 2 or scale <= 0 or margin < 0:
            raise ValueError(f"a margin head needs num_classes ≥ 2, scale > 0, margin ≥ 0 "
                             f"(got {num_classes}, {scale}, {margin})")
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim).normal_(0, 0.01))
        self.scale, self.margin = scale, margin
        self.margin_scale = 1.0

    def cosines(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, C) cosine of each (B, D) embedding with each identity prototype."""
        return (F.normalize(embeddings, dim=1) @ F.normalize(self.weight, dim=1).T).clamp(-1 + 1e-7, 1 - 1e-7)

    def target_logit(self, cos: torch.Tensor, embeddings: torch.Tensor, m: float) -> torch.Tensor:
        """The (B,) margin-modified cosine of each sample's true identity (before scaling)."""
        raise NotImplementedError

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Scaled logits (B, C) for cross-entropy, with the margin applied on ``labels`` (B,)."""
        cos = self.cosines(embeddings)
        target = cos.gather(1, labels[:, None])[:, 0]
        modified = self.target_logit(target, embeddings, self.margin * self.margin_scale)
        logits = cos.scatter(1, labels[:, None], modified[:, None].to(cos.dtype))
        return logits * self.scale


class CosFace(MarginHead):
    """Additive cosine margin: the target logit is cos θ − m."""

    def target_logit(self, cos: torch.Tensor, embeddings: torch.Tensor, m: float) -> torch.Tensor:
        return cos - m


class ArcFace(MarginHead):
    """Additive angular margin: the target logit is cos(θ + m), kept monotonic past θ = π − m."""

    def target_logit(self, cos: torch.Tensor, embeddings: torch.Tensor, m: float) -> torch.Tensor:
        theta = torch.acos(cos)
        # past π − m, cos(θ + m) would rise again; InsightFace's linear continuation keeps it falling
        return torch.where(theta + m < math.pi, torch.cos(theta + m), cos - m * math.sin(m))


class AdaFace(MarginHead):
    """Quality-adaptive margin (AdaFace), with running feature-norm statistics.

    Args:
        num_classes: training identities.
        embedding_dim: size of the embeddings.
        scale: s (paper 64).
        margin: m (paper 0.4).
        h: how strongly quality moves the margin (paper 0.333).
        momentum: update rate t_alpha of the running norm mean and std (paper 0.01).
    """

    def __init__(self, num_classes: int, embedding_dim: int = 512, scale: float = 64.0, margin: float = 0.4,
                 h: float = 0.333, momentum: float = 0.01) -> None:
        super().__init__(num_classes, embedding_dim, scale, margin)
        self.h, self.momentum = h, momentum
        self.register_buffer("batch_mean", torch.tensor(20.0))
        self.register_buffer("batch_std", torch.tensor(100.0))

    def quality(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(B,) margin scaler in [−1, 1] from the embedding norms; updates the running stats in training."""
        norms = embeddings.detach().norm(dim=1).clamp(0.001, 100)
        if self.training and len(norms) > 1:
            mean, std = global_mean_std(norms)  # the global batch's, when data-parallel
            self.batch_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
            self.batch_std.mul_(1 - self.momentum).add_(self.momentum * std)
        return ((norms - self.batch_mean) / (self.batch_std + _EPS) * self.h).clamp(-1, 1)

    def target_logit(self, cos: torch.Tensor, embeddings: torch.Tensor, m: float) -> torch.Tensor:
        q = self.quality(embeddings)
        theta = torch.acos(cos) - m * q
        return torch.cos(theta.clamp(_EPS, math.pi - _EPS)) - (m + m * q)


def make_head(name: str, num_classes: int, embedding_dim: int = 512, scale: float = 64.0,
              margin: float = 0.4, h: float = 0.333) -> MarginHead:
    """Build a head by name (``"adaface"``, ``"arcface"`` or ``"cosface"``)."""
    if name == "adaface":
        return AdaFace(num_classes, embedding_dim, scale, margin, h)
    if name == "arcface":
        return ArcFace(num_classes, embedding_dim, scale, margin)
    if name == "cosface":
        return CosFace(num_classes, embedding_dim, scale, margin)
    raise ValueError(f"unknown margin head {name!r}; choose one of {HEADS}")
