"""The light-skewed face generator of ``default``: the DigiFace DCGAN fine-tuned on a skewed UTKFace sample.

The paper's StyleGAN2-FFHQ is about 7 : 1 light : dark and 2 : 1 young : old, and QDGS corrects
that. The DigiFace DCGAN (:mod:`qdgs.generators.dcgan`) has no such imbalance, so the book
fine-tunes it on real faces subsampled to FFHQ-like ratios (:func:`qdgs.faces.skew.skewed_sample`),
as a practitioner training on skewed web data would, and its random samples inherit the skew.
Fine-tuning the MIT-licensed weights of ``gan-face-generate`` (C. Liu) with a fresh DCGAN
discriminator (the package's own architecture) converges in minutes where training from scratch
would take hours on two CPU cores.

Training takes longer than a cold book build allows, so the weights made by :func:`fine_tune` are
committed (``weights/dcgan-skewed.pt``, 14 MB, checked against :data:`WEIGHTS_SHA256`) and
``make models`` reproduces them (``OMP_NUM_THREADS=1 python -m qdgs.generators.skewed_dcgan``:
1,200 steps at batch 16: 9.2 minutes with one thread, beside other jobs on a 2-core machine). A run with another
thread count or library build may differ in the last bits: then the checksum says so.

The step count was chosen by the premise the issue sets for random samples (5 : 1 to 10 : 1
light : dark, about 2 : 1 young : old), never by what QDGS then does. Measured on 1,024 random
samples of one seed-0 run checkpointed along the way (chapter 02's audit classifier at 400 steps):

=====  =============  ===========  ==========================
steps  light : dark   ITA          under 40 : 40 and over
=====  =============  ===========  ==========================
800    9.9 : 1        4.2 : 1      0.86 : 1 (the last recipe)
1,200  8.2 : 1        4.8 : 1      2.31 : 1 (this recipe)
1,600  10.0 : 1       4.8 : 1      2.13 : 1
2,000  5.7 : 1        2.8 : 1      1.76 : 1
2,400  7.1 : 1        4.1 : 1      1.71 : 1
=====  =============  ===========  ==========================

Before 1,200 steps the faces are blurred and blotchy, which the age head reads as old; the
DigiFace DCGAN it starts from is 42.5 % dark by the audit classifier (64.1 % by ITA).
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from qdgs.generators.dcgan import DCGANFaces
from qdgs.progress import progress
from qdgs.seeds import numpy_rng, seeded_init, torch_generator

__all__ = ["WEIGHTS", "WEIGHTS_SHA256", "RECIPE", "fine_tune", "load_skewed_dcgan", "sha256"]

#: The committed weights (a state dict of the DCGAN generator, float32).
WEIGHTS = Path(__file__).with_name("weights") / "dcgan-skewed.pt"
#: Their sha256: a file that differs was not made by this recipe and is refused.
WEIGHTS_SHA256 = "859da370fa62ff4df1b12a809d85be875fb463ed72e4649243d4e5fec1af6cac"
#: The fine-tuning recipe (DCGAN's Adam settings; one-sided label smoothing steadies a fresh discriminator).
RECIPE = {"steps": 1200, "batch_size": 16, "lr": 2e-4, "betas": (0.5, 0.999), "real_label": 0.9,
          "light_dark": 7.0, "young_old": 2.0, "split_seed": 0, "bn_batches": 40}


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _discriminator(seed: int) -> nn.Module:
    """A fresh DCGAN discriminator (the package's architecture) with DCGAN's N(0, 0.02) initialisation."""
    from gan_face_generate.models import Discriminator

    with seeded_init(seed, "skewed-dcgan", "discriminator"):
        net = Discriminator(ngpu=0, nc=3, ndf=64)
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)
    return net


def fine_tune(steps: int = RECIPE["steps"], seed: int = 0, progress_bar: bool = True,
              recipe: dict | None = None) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Fine-tune the DigiFace DCGAN on the light-skewed UTKFace training sample.

    Args:
        steps: optimiser steps of each network (``batch_size`` real faces, flipped at random).
        seed: seeds the sample, the discriminator, the batches and the latents.
        progress_bar: show progress.
        recipe: overrides of :data:`RECIPE`.

    Returns:
        The generator's state dict (batch-norm statistics re-estimated on its own samples, so
        eval mode renders what training rendered) and a log: ``faces`` in the sample, its
        ``light_dark`` and ``young_old`` ratios, ``seconds``, final ``loss_d`` and ``loss_g``.
    """
    from qdgs import data
    from qdgs.faces.skew import sample_ratios, skewed_sample
    from qdgs.faces.utkface import to_tensor, utkface_split

    r = {**RECIPE, **(recipe or {})}
    faces = data.load_utkface(64)
    train_rows, _ = utkface_split(len(faces.table), r["split_seed"])
    rows = skewed_sample(faces.table, train_rows, seed, r["light_dark"], r["young_old"])
    real = to_tensor(faces.images[rows]) * 2 - 1
    with seeded_init(seed, "skewed-dcgan", "generator"):  # overwritten by the weights; the global RNG stays untouched
        gen = DCGANFaces(pretrained=True).net.train()
    disc = _discriminator(seed).train()
    opt_g = torch.optim.Adam(gen.parameters(), lr=r["lr"], betas=r["betas"])
    opt_d = torch.optim.Adam(disc.parameters(), lr=r["lr"], betas=r["betas"])
    rng, noise = numpy_rng(seed, "skewed-dcgan", "batches"), torch_generator(seed, "skewed-dcgan", "latents")
    b, t0 = r["batch_size"], time.perf_counter()
    for _ in progress(range(steps), enabled=progress_bar, desc="fine-tuning the skewed DCGAN"):
        x = real[rng.choice(len(real), b, replace=False)]
        flip = torch.as_tensor(rng.random(b) < 0.5)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        fake = gen(torch.randn(b, 100, 1, 1, generator=noise))
        d_real, d_fake = disc(x).view(-1), disc(fake.detach()).view(-1)
        loss_d = (F.binary_cross_entropy(d_real, torch.full_like(d_real, r["real_label"]))
                  + F.binary_cross_entropy(d_fake, torch.zeros_like(d_fake)))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        d_fake = disc(fake).view(-1)
        loss_g = F.binary_cross_entropy(d_fake, torch.ones_like(d_fake))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    _reestimate_batch_norm(gen, torch_generator(seed, "skewed-dcgan", "batch-norm"), r["bn_batches"], b)
    log = {**sample_ratios(faces.table, rows), "seconds": time.perf_counter() - t0,
           "loss_d": loss_d.item(), "loss_g": loss_g.item()}
    return {k: v.detach().clone() for k, v in gen.state_dict().items()}, log


@torch.no_grad()
def _reestimate_batch_norm(gen: nn.Module, noise: torch.Generator, batches: int, batch_size: int) -> None:
    """Replace running statistics by their plain average over ``batches`` batches of the generator's own latents."""
    norms = [m for m in gen.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    gen.train()
    for _ in range(batches):
        gen(torch.randn(batch_size, 100, 1, 1, generator=noise))
    for m in norms:
        m.momentum = 0.1
    gen.eval()


def load_skewed_dcgan(path: str | Path | None = None, sha256_expected: str | None = None) -> DCGANFaces:
    """The skewed generator from its weights, behind the QDGS generator interface.

    Args:
        path: a state dict written by ``python -m qdgs.generators.skewed_dcgan`` (default: the committed one).
        sha256_expected: its checksum (default: :data:`WEIGHTS_SHA256` for the committed file; no
            check for another path unless given).

    Raises:
        FileNotFoundError: the file is missing (with the command that makes it).
        ValueError: its checksum differs.
    """
    path = Path(path) if path else WEIGHTS
    expected = sha256_expected if sha256_expected is not None else (WEIGHTS_SHA256 if path == WEIGHTS else "")
    if not path.is_file():
        raise FileNotFoundError(f"the skewed face generator's weights {path} are missing: run `make models` "
                                "(about 10 minutes on 2 CPU cores) or restore the file from git")
    if expected and sha256(path) != expected:
        raise ValueError(f"{path} has sha256 {sha256(path)}, not the expected {expected}: it was not made by "
                         "this recipe; restore it from git or rerun `make models` and update WEIGHTS_SHA256")
    with seeded_init(0, "skewed-dcgan", "load"):  # overwritten by the weights; the global RNG stays untouched
        model = DCGANFaces(pretrained=False)
    model.net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def main(argv: list[str] | None = None) -> None:
    """``make models``: fine-tune and write the weights, printing the sample's ratios and the sha256."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--steps", type=int, default=RECIPE["steps"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args(argv)
    state, log = fine_tune(args.steps, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, args.out)
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in log.items()})
    print(f"wrote {args.out}, sha256 {sha256(args.out)}")


if __name__ == "__main__":
    main()
