"""The paper's own shapes generator: the reference implementation's plain convolutional VAE.

Written here from the architecture of the reference implementation's state dict
(``shapes/pretrained/vae-shapes.pt`` in github Cylumn/qd-generative-sampling; facts file): an
encoder of three 3 × 3 stride-2 convolutions (3 → 16 → 32 → 32, ReLU) with linear heads from
16 · 16 · 32 features to a 6-d mean and log-variance, and a decoder from the 6-d latent through a
linear layer to 32 × 16 × 16 (ReLU) and three 4 × 4 stride-2 transposed convolutions
(32 → 32 → 16 → 3, ReLU between, sigmoid out) to a 128 × 128 RGB image.

Its random samples are blobby and colour–shape biased (red squares and blue triangles are rare),
which is the premise QDGS is meant to overcome. The repository has no licence, so the weights are
never redistributed: the user passes a path, or :func:`load_reference_vae` downloads the public
file (:data:`PRETRAINED`) and keeps it only if its sha256 matches.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from qdgs import downloads

#: The reference implementation's shipped weights, pinned to a commit, with the sha256 of that file.
PRETRAINED = downloads.WeightFile(
    "vae-shapes.pt",
    "https://raw.githubusercontent.com/Cylumn/qd-generative-sampling/"
    "5d18c0b11cb91a1a75c17f4b66ebe641b969ac61/shapes/pretrained/vae-shapes.pt",
    sha256="acc1d1526827cba22a8c389103f56a54a5dab552223b0100c468a4aa52837bbf", size="787 kB")
LATENT_DIM = 6
IMAGE_SIZE = 128
_FEATURES = (32, 16, 16)  # the encoder's last feature map and the decoder's first


class _Encoder(nn.Module):
    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(32, 32, 3, stride=2, padding=1)
        n = _FEATURES[0] * _FEATURES[1] * _FEATURES[2]
        self.fc_mu = nn.Linear(n, latent_dim)
        self.fc_logvar = nn.Linear(n, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for conv in (self.conv1, self.conv2, self.conv3):
            x = F.relu(conv(x))
        x = x.flatten(1)
        return self.fc_mu(x), self.fc_logvar(x)


class _Decoder(nn.Module):
    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(latent_dim, _FEATURES[0] * _FEATURES[1] * _FEATURES[2])
        self.convT1 = nn.ConvTranspose2d(32, 32, 4, stride=2, padding=1)
        self.convT2 = nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1)
        self.convT3 = nn.ConvTranspose2d(16, 3, 4, stride=2, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc1(z)).view(len(z), *_FEATURES)
        x = F.relu(self.convT1(x))
        x = F.relu(self.convT2(x))
        return torch.sigmoid(self.convT3(x))


class ReferenceShapesVAE(nn.Module):
    """The reference shapes VAE as a QDGS generator: ``forward(z (B, 6)) -> (B, 3, 128, 128)`` in [0, 1].

    The parameter names are the reference state dict's (``encoder.conv1`` … ``decoder.convT3``),
    so its file loads directly.
    """

    latent_dim = LATENT_DIM
    output_size = IMAGE_SIZE

    def __init__(self) -> None:
        super().__init__()
        self.encoder = _Encoder(LATENT_DIM)
        self.decoder = _Decoder(LATENT_DIM)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, 128, 128) in [0, 1] → mean and log-variance, each (B, 6)."""
        return self.encoder(images)

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Encode (posterior mean) and decode."""
        return self.decoder(self.encoder(images)[0])

    def sample_latents(self, n: int, seed: int) -> torch.Tensor:
        """(n, 6) draws from the prior N(0, I), on the model's device (drawn on the CPU: the same on every device)."""
        z = torch.randn(n, LATENT_DIM, generator=torch.Generator().manual_seed(seed))
        return z.to(self.decoder.fc1.weight.device)


def load_reference_vae(path: str | Path | None = None, download: bool | None = None) -> ReferenceShapesVAE:
    """Read the reference implementation's state dict (``vae-shapes.pt``) into :class:`ReferenceShapesVAE`.

    Args:
        path: a state dict of this architecture (the reference file, or one you trained); by default
            ``$QDGS_REFERENCE_VAE``, the artifact cache, or a download checked against :data:`PRETRAINED`.
        download: fetch the file when absent (default: unless ``HF_HUB_OFFLINE`` or ``QDGS_OFFLINE``).

    Raises:
        FileNotFoundError: the file is absent and cannot be fetched (says what to download and where).
        RuntimeError: the downloaded or cached file's sha256 differs from the recorded one.
        ValueError: the file is not a state dict of this architecture (corrupt, or another model).
    """
    if path is None:  # only the published file is hash-checked: a user's own weights are theirs
        path = downloads.weights_file(PRETRAINED, "the reference shapes VAE's weights", env="QDGS_REFERENCE_VAE",
                                      download_missing=download)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no reference shapes VAE at {path}: download {PRETRAINED.url} and pass its path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError) as err:  # torch's errors for a damaged or foreign file
        raise ValueError(f"{path} is not a readable PyTorch state dict ({err}); download it again") from None
    vae = ReferenceShapesVAE()
    expected = {k: tuple(v.shape) for k, v in vae.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()} if isinstance(state, dict) else {}
    if found != expected:
        missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
        wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        raise ValueError(f"{path} is not the reference shapes VAE's state dict (missing {missing[:3]}, "
                         f"unexpected {extra[:3]}, other shapes {wrong[:3]})")
    vae.load_state_dict(state)
    return vae.eval()
