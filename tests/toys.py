"""Tiny differentiable generator and text-image scorer for testing the QDGS core in milliseconds."""

import hashlib

import torch
import torch.nn.functional as F
from torch import nn


class ToyGenerator(nn.Module):
    """(B, D) latents → (B, 3, 8, 8) images in [0, 1] through a small tanh MLP."""

    def __init__(self, latent_dim: int = 6, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.latent_dim = latent_dim
        self.net = nn.Sequential(nn.Linear(latent_dim, 32), nn.Tanh(), nn.Linear(32, 3 * 8 * 8))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z)).view(-1, 3, 8, 8)

    def sample_latents(self, n: int, seed: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(seed))


class ToyScorer(nn.Module):
    """A linear image tower and hash-seeded text embeddings, both unit-norm, 16-d."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.image = nn.Linear(3 * 8 * 8, 16)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        images = F.interpolate(images, size=(8, 8), mode="bilinear", align_corners=False)
        return F.normalize(self.image(images.flatten(1)), dim=-1)

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        rows = []
        for p in prompts:
            seed = int(hashlib.sha256(p.encode()).hexdigest()[:8], 16)
            rows.append(torch.randn(16, generator=torch.Generator().manual_seed(seed)))
        return F.normalize(torch.stack(rows), dim=-1)
