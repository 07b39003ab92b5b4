"""The shapes generator: a small VAE (latent dimension 6) that decodes a shape mask and one colour.

The paper uses a small convolutional VAE with a 6-d latent. A plain conv VAE with a per-pixel
likelihood averages red and blue into purple blobs, and a conv *mask* decoder still rounds small
squares into blobs (see the feasibility notes): six latent numbers must carry shape, colour, zoom,
rotation and position, and a blurry mask is the cheapest compromise. Our decoder is therefore a
differentiable rasteriser: an MLP maps ``z`` to the parameters the renderer itself uses (shape,
rotation, zoom, centre, one RGB colour) and draws a soft-edged polygon, so squares keep straight
sides and corners. The encoder is a plain conv net. Training is a VAE with the renderer's exact
mask as a Bernoulli likelihood and the colour as a Gaussian one.

Resolution: the encoder reads, and training compares masks at, ``internal_size`` (32 px on a CPU);
the analytic decoder draws at any size, so :meth:`ShapesVAE.forward` returns ``output_size``
images directly. It draws as the renderer does: at ``supersample`` × the size with 1 px soft edges,
then box-filtered down. Drawn once at the size itself (``supersample`` 1), the soft edges blunt
the corners, and a classifier that learns shape from such drawings reads the renderer's sharp
triangles as squares (chapter 01 measures this transfer ceiling).

The architecture and the training recipe are one JSON config (``configs/shapes_vae.json``), so the
cached VAE's key is the config: a changed recipe retrains it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from qdgs.committed import artifact
from qdgs.progress import progress
from qdgs.scoring import BoundedLatent
from qdgs.seeds import derive, numpy_rng, seeded_init, torch_generator
from qdgs.shapes.render import CANVAS, COLOURS, SQUARE_SIDE, TRIANGLE_BASE, biased_set, blueness

LATENT_DIM = 6
CONFIG_PATH = Path(__file__).resolve().parents[1] / "configs" / "shapes_vae.json"


def vae_config() -> dict:
    """The shipped architecture (``architecture``) and training recipe (``train``) of the shapes VAE."""
    return json.loads(CONFIG_PATH.read_text())


def _levels(size: int) -> int:
    levels = round(math.log2(size / 4))
    if 4 * 2**levels != size:
        raise ValueError(f"internal_size must be 4·2^k (16, 32, 64, 128), got {size}")
    return levels


class ShapesVAE(nn.Module):
    """Conv encoder + polygon decoder; as a QDGS generator ``forward(z) -> (B, 3, S, S)`` in [0, 1].

    The decoder maps ``z`` through an MLP to a shape mixture weight, a rotation per shape (a
    2-vector whose angle is divided by the shape's symmetry order, 3 or 4, so every rotation of a
    triangle or a square has one code), a zoom, a centre and one RGB colour, and rasterises an
    equilateral triangle and a square with the renderer's geometry. Each polygon's soft mask is the
    product of sigmoids of the signed distances to its edges (edge width ``edge`` px), so the image
    is differentiable in every parameter and hence in ``z``; the two masks are mixed by the weight.
    Squares therefore always have straight sides and corners, and an in-between latent shows an
    in-between (overlaid) shape rather than a blob.

    Args:
        latent_dim: size of ``z`` (the paper: 6).
        internal_size: side at which the encoder reads images and training compares masks.
        output_size: side of the images :meth:`forward` returns.
        width: channels of the encoder's widest convolution.
        supersample: the decoder draws at this multiple of the asked size and box-filters down.
    """

    def __init__(self, latent_dim: int = LATENT_DIM, internal_size: int = 32, output_size: int = 128,
                 width: int = 64, supersample: int = 1) -> None:
        super().__init__()
        if supersample < 1:
            raise ValueError(f"supersample must be a positive integer, got {supersample}")
        self.latent_dim, self.internal_size, self.output_size, self.width = latent_dim, internal_size, output_size, width
        self.supersample = supersample
        n = _levels(internal_size)
        chans = [max(16, width // 2**(n - 1 - i)) for i in range(n)]
        enc, c_in = [], 3
        for c in chans:
            enc += [nn.Conv2d(c_in, c, 4, 2, 1), nn.LeakyReLU(0.2)]
            c_in = c
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(c_in * 16, 256), nn.LeakyReLU(0.2),
                                     nn.Linear(256, 2 * latent_dim))
        # mixture logit, triangle rotation (2), square rotation (2), log zoom, centre (2), colour (3)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, 128), nn.LeakyReLU(0.2), nn.Linear(128, 128),
                                     nn.LeakyReLU(0.2), nn.Linear(128, 11))
        self.edge = 1.0

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) in [0, 1] → mean and log-variance, each (B, latent_dim)."""
        if images.shape[-1] != self.internal_size:
            images = F.interpolate(images, size=self.internal_size, mode="bilinear", antialias=True,
                                   align_corners=False)
        mu, logvar = self.encoder(images * 2 - 1).chunk(2, dim=1)
        return mu, logvar

    def decode_parts(self, z: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D) latents → soft masks (B, 1, size, size) and colours (B, 3) in [0, 1]."""
        masks, weight, colour = self.decode_shapes(z, size)
        return self.blend(masks, weight), colour

    @staticmethod
    def blend(masks: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """(B, 2, S, S) triangle and square masks mixed by the (B,) square weight → (B, 1, S, S)."""
        return ((1 - weight)[:, None, None] * masks[:, 0] + weight[:, None, None] * masks[:, 1])[:, None]

    def decode_shapes(self, z: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, D) latents → (B, 2, size, size) triangle and square masks, (B,) square weight, (B, 3) colour."""
        out, ss = self.decoder(z), self.supersample
        size = size * ss
        weight = torch.sigmoid(out[:, 0])
        zoom = torch.exp(0.35 * torch.tanh(out[:, 5]))  # linear zoom in [0.70, 1.42] = sqrt(0.5 … 2)
        unit = size / CANVAS
        radii = ((3, TRIANGLE_BASE / np.sqrt(3), 90.0), (4, SQUARE_SIDE / np.sqrt(2), 45.0))
        # The centre stays where the drawn shape's circumcircle fits the canvas, as the renderer places
        # its shapes: a decoder free to push shapes over the border draws cut-off shapes no training
        # render shows, and that is where a search finds images the scorer misjudges.
        reach = ((1 - weight) * radii[0][1] + weight * radii[1][1]) * unit * zoom + 2 * self.edge
        centre = size / 2 + (size / 2 - reach)[:, None] * torch.tanh(out[:, 6:8])
        masks = []
        for k, (order, radius, phase) in enumerate(radii):
            rot = out[:, 1 + 2 * k: 3 + 2 * k]
            angle = torch.atan2(rot[:, 1], rot[:, 0] + 1e-6) / order
            masks.append(_polygon_mask(order, radius * unit * zoom, angle + np.deg2rad(phase), centre, size,
                                       self.edge))
        masks = torch.stack(masks, dim=1)
        return (F.avg_pool2d(masks, ss) if ss > 1 else masks), weight, torch.sigmoid(out[:, 8:11])

    def compose(self, mask: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
        """Paint ``colour`` through ``mask`` onto white: (B, 3, S, S)."""
        return 1 - mask + mask * colour[:, :, None, None]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) latents → (B, 3, output_size, output_size) images in [0, 1]; differentiable in ``z``."""
        return self.compose(*self.decode_parts(z, self.output_size))

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Encode (posterior mean) and decode, at the input's size."""
        return self.compose(*self.decode_parts(self.encode(images)[0], images.shape[-1]))

    def sample_latents(self, n: int, seed: int) -> torch.Tensor:
        """(n, D) draws from the prior N(0, I), on the model's device (drawn on the CPU: the same on every device)."""
        z = torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(seed))
        return z.to(self.decoder[0].weight.device)

    @torch.no_grad()
    def decoder_samples(self, n: int, seed: int, size: int, latent_bound: float = 3.0,
                        spread: float = 1.5) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """``n`` samples from where the search may go, with what the decoder drew.

        Latents are drawn wider than the prior (``spread``) and bounded as the search bounds them
        (:class:`qdgs.scoring.BoundedLatent`). The decoder states what it draws: a square weight
        (0 a triangle, 1 a square, between an overlay of both) and an RGB colour, read as its place
        between red (0) and blue (1). These are the scorer's graded training captions.

        Returns:
            images (n, 3, size, size) in [0, 1], square weight (n,) and blueness (n,), both in [0, 1].
        """
        z = spread * torch.randn(n, self.latent_dim, generator=torch_generator(seed, "decoder-samples"))
        if latent_bound > 0:
            z = BoundedLatent(self, latent_bound).squash(z)
        masks, weight, rgb = self.decode_shapes(z, size)
        return self.compose(self.blend(masks, weight), rgb), weight.numpy(), blueness(rgb.numpy())


def _polygon_mask(order: int, radius: torch.Tensor, angle: torch.Tensor, centre: torch.Tensor, size: int,
                  edge: float) -> torch.Tensor:
    """(B, size, size) soft mask of regular ``order``-gons: Π sigmoid(distance inside each edge / edge).

    Each edge's signed distance is affine in the pixel coordinates, so all edges of a batch are one
    matrix product of per-image coefficients (B, order, 3) with the pixel grid (3, size²): a
    handful of passes over the pixels instead of several per edge: about twice as fast forward and
    back, the VAE's training step 1.4× (chapter 04 times it against
    :func:`qdgs.benchmark.per_edge_polygon_mask`, the definition).
    """
    coords = torch.arange(size, dtype=radius.dtype, device=radius.device) + 0.5
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    grid = torch.stack([xs.reshape(-1), ys.reshape(-1), torch.ones(size * size, dtype=radius.dtype,
                                                                   device=radius.device)])
    # the edge normals point at angle + (2j+1)π/order
    normals = angle[:, None] + torch.arange(1, 2 * order, 2, dtype=radius.dtype, device=radius.device) * (np.pi / order)
    cos, sin = torch.cos(normals), torch.sin(normals)
    apothem = radius[:, None] * np.cos(np.pi / order)
    offset = apothem + centre[:, 0, None] * cos + centre[:, 1, None] * sin
    scaled = (torch.stack([-cos, -sin, offset], dim=2) / edge) @ grid  # (B, order, size²): distance / edge
    return F.logsigmoid(scaled).sum(1).exp().view(-1, size, size)


def train_vae(vae: ShapesVAE, steps: int, seed: int, recipe: Mapping[str, float], bias: float = 0.5,
              progress_bar: bool = True) -> dict:
    """Train ``vae`` in place on rendered shapes with colour bias ``bias``; return losses and seconds.

    ``bias`` is the share of red triangles among triangles and of blue squares among squares
    (:func:`qdgs.shapes.render.biased_set`): 0.5 is a balanced generator; the paper's premise is a
    generator trained on data as biased as the classifier's, whose random samples inherit the bias.

    The loss per image is the summed binary cross-entropy of the decoded mask against the
    render's exact mask + ``colour_weight`` × colour MSE + ``beta`` × KL, plus ``shape_weight`` ×
    the cross-entropy between the decoded square weight and the render's shape label. Without that
    last term the branch that first fits anything (the square) takes every image and the triangle
    branch, multiplied by a near-zero weight, never learns. The renders are labelled anyway (the
    renderer knows what it drew), so this is a semi-supervised VAE; its prior still decodes a mix
    of shapes, colours and in-between images, which is what random sampling is compared on.

    Args:
        steps: optimiser steps.
        bias: colour bias of the training renders.
        seed: the renders, batches and reparameterisation noise are its named streams
            (``"shapes-vae"``); the global RNG is neither read nor changed.
        recipe: ``n_images``, ``batch_size``, ``lr``, ``beta``, ``colour_weight``, ``shape_weight``
            (the ``train`` section of :func:`vae_config`).
    """
    missing = {"n_images", "batch_size", "lr", "beta", "colour_weight", "shape_weight"} - set(recipe)
    if missing:
        raise ValueError(f"the VAE training recipe lacks {sorted(missing)}; see {CONFIG_PATH}")
    n_images, batch_size = int(recipe["n_images"]), int(recipe["batch_size"])
    rng = numpy_rng(seed, "shapes-vae", "batches")
    noise = torch_generator(seed, "shapes-vae", "noise")
    data = biased_set(n_images, bias, derive(seed, "shapes-vae", "data"), vae.internal_size)
    images, masks = data.floats(), data.masks[:, None]
    labels = torch.from_numpy(data.shape).float()
    colours = torch.tensor(COLOURS, dtype=torch.float32)[torch.from_numpy(data.colour)] / 255
    opt = torch.optim.Adam(vae.parameters(), lr=recipe["lr"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe["lr"], total_steps=steps, pct_start=0.1)
    losses, t0 = [], time.perf_counter()
    vae.train()
    for _ in progress(range(steps), enabled=progress_bar, desc="training shapes VAE"):
        idx = torch.from_numpy(rng.integers(0, n_images, batch_size))
        mu, logvar = vae.encode(images[idx])
        z = mu + torch.randn(mu.shape, generator=noise) * (0.5 * logvar).exp()
        both, weight, colour = vae.decode_shapes(z, vae.internal_size)
        mask = vae.blend(both, weight)[:, 0]
        rec = F.binary_cross_entropy(mask.clamp(1e-5, 1 - 1e-5), masks[idx, 0], reduction="sum") / batch_size
        rec = rec + recipe["shape_weight"] * F.binary_cross_entropy(weight.clamp(1e-6, 1 - 1e-6), labels[idx])
        col = F.mse_loss(colour, colours[idx], reduction="sum") / batch_size
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum() / batch_size
        loss = rec + recipe["colour_weight"] * col + recipe["beta"] * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    vae.eval()
    return {"losses": losses, "seconds": time.perf_counter() - t0}


def save_vae(vae: ShapesVAE, path) -> None:
    """Write the weights and the constructor settings to one ``.pt`` file."""
    torch.save({"config": {"latent_dim": vae.latent_dim, "internal_size": vae.internal_size,
                           "output_size": vae.output_size, "width": vae.width, "supersample": vae.supersample},
                "state_dict": vae.state_dict()}, path)


def load_vae(path) -> ShapesVAE:
    """Read a VAE written by :func:`save_vae`, or say how to make one."""
    try:
        saved = torch.load(path, weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"no shapes VAE at {path}: train one with qdgs.generators.shapes_vae.train_vae "
                                "(the shapes notebook does it and caches it)") from None
    with torch.device("meta"):  # no initialisation: it would draw from (and move) the global RNG
        vae = ShapesVAE(**saved["config"])
    vae.load_state_dict(saved["state_dict"], assign=True)
    return vae.eval()


def cached_vae(steps: int, seed: int, output_size: int = 64, bias: float = 0.5, config: Mapping | None = None,
               progress_bar: bool = True) -> tuple[ShapesVAE, float]:
    """Train (or load from the artifact cache, or copy from the committed ones) the shapes VAE; return it and its training seconds.

    The initialisation is the stream ``("shapes-vae", "init")`` of ``seed`` (:func:`qdgs.seeds.seeded_init`),
    so a VAE trained afresh equals the cached one whatever ran before, and building it leaves the
    global RNG as it found it.

    Args:
        steps: training steps.
        seed: seeds the initialisation and training.
        output_size: side of the images :meth:`ShapesVAE.forward` returns (not in the key: the
            analytic decoder draws at any size).
        bias: colour bias of the training renders (see :func:`train_vae`).
        config: architecture and recipe (default: :func:`vae_config`); all of it is the cache key.
    """
    config = dict(config or vae_config())
    settings = {"config": config, "steps": steps, "seed": seed, "bias": bias}

    def build(tmp: Path) -> None:
        with seeded_init(seed, "shapes-vae", "init"):
            vae = ShapesVAE(**config["architecture"])
        info = train_vae(vae, steps, seed, config["train"], bias=bias, progress_bar=progress_bar)
        save_vae(vae, tmp / "vae.pt")
        (tmp / "seconds.txt").write_text(f"{info['seconds']:.1f}")

    path = artifact("shapes-vae", settings, build)
    vae = load_vae(path / "vae.pt")
    vae.output_size = output_size
    return vae, float((path / "seconds.txt").read_text())
