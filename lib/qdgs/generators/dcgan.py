"""The face generator of the ``default`` profile: the DCGAN shipped by ``gan-face-generate``.

The PyPI package ``gan-face-generate`` (MIT, C. Liu) ships a 64×64 DCGAN (the PyTorch tutorial
architecture, 100-d latent) trained on DigiFace-1M, a *rendered* synthetic face dataset, with its
weights (14 MB) inside the wheel. It is small enough to search on two CPU cores, which is why the
book's ``default`` profile uses it in place of StyleGAN2-FFHQ. Its faces are rendered-looking,
dimmer and more loosely framed than photographs: the offline scorer is trained to cope with that
(see :mod:`qdgs.faces`).

We wrap the package's own ``Generator`` class and weight file (no copy of either) as a contract
generator: ``forward(z (B, 100)) -> (B, 3, 64, 64)`` in [0, 1], differentiable in ``z``. Batch
norm runs in eval mode (running statistics), so an image depends only on its own latent, never on
the rest of the batch; the package's own demo leaves it in train mode, which makes a face change
with its batch-mates.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
from torch import nn

from qdgs.device import resolve_device

LATENT_DIM = 100
IMAGE_SIZE = 64


def weights_path() -> Path:
    """Where the package keeps its weight file; one clear error when the package is missing."""
    try:
        root = resources.files("gan_face_generate")
    except ModuleNotFoundError as err:
        raise RuntimeError(
            "the face generator needs the PyPI package gan-face-generate: run "
            "`pip install --no-deps gan-face-generate==1.1.1` (or `make setup`)"
        ) from err
    path = Path(str(root / "weights.tar"))
    if not path.is_file():
        raise FileNotFoundError(f"gan-face-generate is installed but {path} is missing: reinstall the package")
    return path


class DCGANFaces(nn.Module):
    """DCGAN-64 face generator (gan-face-generate) behind the QDGS generator interface.

    Args:
        pretrained: load the package's trained weights; ``False`` gives random weights (tests).
        device: where the generator runs (:func:`qdgs.device.resolve_device`); weights load on the CPU first.
    """

    latent_dim = LATENT_DIM
    image_size = IMAGE_SIZE

    def __init__(self, pretrained: bool = True, device: str | torch.device = "cpu") -> None:
        super().__init__()
        weights_path()  # fail early and clearly when the package is missing
        from gan_face_generate.models import Generator

        self.net = Generator(ngpu=0, nc=3, nz=LATENT_DIM, ngf=64)
        if pretrained:
            state = torch.load(weights_path(), map_location="cpu", weights_only=True)
            self.net.load_state_dict(state["netG_state_dict"])
        self.eval().to(resolve_device(device))

    def train(self, mode: bool = True) -> DCGANFaces:
        """Batch norm stays in eval mode: the generator is frozen, its statistics are the trained ones."""
        return super().train(False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Render faces.

        Args:
            z: (B, 100) latents (standard normal is the training distribution).

        Returns:
            (B, 3, 64, 64) images in [0, 1].
        """
        return (self.net(z[:, :, None, None]) + 1) / 2

    def sample_latents(self, n: int, seed: int) -> torch.Tensor:
        """(n, 100) standard-normal latents, reproducible from ``seed``."""
        g = torch.Generator().manual_seed(seed)
        return torch.randn(n, LATENT_DIM, generator=g).to(next(self.parameters()).device)
