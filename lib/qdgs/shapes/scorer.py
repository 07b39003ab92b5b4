"""The shapes chapter's prompt scorer: the offline CLIP trained here, its zero-shot check and ranges.

The architecture and the training recipe are one JSON config (``configs/shapes_clip.json``, its
``train`` section the recipe), so the cached scorer's key holds all of it: a changed learning
rate retrains the scorer, a changed notebook parameter that the scorer never sees does not.
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import nn

from qdgs.cache import artifact, weights_hash
from qdgs.scorers.offline_clip import OfflineClipScorer, load_clip, load_config, make_clip, save_clip, train_clip
from qdgs.scoring import prompt_values, remap_objective
from qdgs.seeds import derive
from qdgs.shapes.captions import MEASURE_PROMPTS, OBJECTIVE_PROMPTS, ShapeCaptionSampler, vocabulary
from qdgs.shapes.labels import calibrate_zero
from qdgs.shapes.render import balanced_set, splatters

if TYPE_CHECKING:  # the VAE module imports this package's renderer
    from qdgs.generators.shapes_vae import ShapesVAE

SCORER_CONFIG = "shapes_clip"


def cached_scorer(vae: ShapesVAE, steps: int, seed: int, size: int = 64, generated_fraction: float = 0.3,
                  latent_bound: float = 3.0, progress_bar: bool = True) -> tuple[OfflineClipScorer, float]:
    """Train (or load from the artifact cache) the offline CLIP scorer of the shapes domain.

    Of each batch's shapes, ``generated_fraction`` are generator samples captioned by what the
    decoder drew (:meth:`~qdgs.generators.shapes_vae.ShapesVAE.decoder_samples`, latents bounded
    by ``latent_bound`` as the search bounds them); a share of the rest are VAE reconstructions with
    their true captions (see :class:`~qdgs.shapes.captions.ShapeCaptionSampler`). The recipe
    (learning rate, batch size, the per-pair loss weight that makes every image answer the shape
    question, not only the colour one) is the config's ``train`` section.

    Returns:
        (scorer, training seconds).
    """
    if generated_fraction and not hasattr(vae, "decoder_samples"):
        raise ValueError(f"{type(vae).__name__} does not say what it drew, so it cannot caption its own samples: "
                         "set scorer_generated=0 for this generator")
    config = load_config(SCORER_CONFIG)
    recipe = config["train"]
    settings = {"config": config, "steps": steps, "seed": seed, "size": size, "vocabulary": vocabulary(),
                "generated_fraction": generated_fraction, "latent_bound": latent_bound,
                "vae": weights_hash(vae)}  # many of its training images come from this VAE

    def build(tmp) -> None:
        model = make_clip(SCORER_CONFIG, derive(seed, "shapes-scorer", "init"))
        generated = partial(vae.decoder_samples, size=size, latent_bound=latent_bound) if generated_fraction else None
        sampler = ShapeCaptionSampler(size, splatter_fraction=recipe["splatter_fraction"], reconstruct=vae.reconstruct,
                                      reconstruct_fraction=recipe["reconstruct_fraction"], generated=generated,
                                      generated_fraction=generated_fraction)
        t0 = time.perf_counter()
        train_clip(model, sampler, sampler.vocabulary, steps=steps, lr=recipe["lr"],
                   seed=derive(seed, "shapes-scorer", "train"), progress=progress_bar,
                   batch_size=recipe["batch_size"], weight_decay=recipe["weight_decay"], warmup=recipe["warmup"],
                   pair_weight=recipe["pair_weight"])
        save_clip(model, tmp / "clip.pt", SCORER_CONFIG)
        (tmp / "seconds.txt").write_text(f"{time.perf_counter() - t0:.1f}")

    path = artifact("shapes-offline-clip", settings, build)
    return OfflineClipScorer(load_clip(path / "clip.pt")), float((path / "seconds.txt").read_text())


def prompt_scores(scorer: nn.Module, images: torch.Tensor) -> np.ndarray:
    """(N, 3) [objective, colour measure, shape measure] of (N, 3, H, W) images in [0, 1].

    The paper's prompts through :func:`qdgs.scoring.prompt_values`, the objective remapped as the
    search remaps it, so these are the numbers the search sees.
    """
    values = prompt_values(scorer, images, (OBJECTIVE_PROMPTS, *MEASURE_PROMPTS))
    values[:, 0] = remap_objective(values[:, 0])
    return values


def zero_shot(scorer: nn.Module, vae: ShapesVAE, n: int, seed: int, size: int = 64) -> tuple[pd.DataFrame, dict]:
    """Zero-shot accuracy of the paper's prompts on held-out renders, VAE reconstructions and splatters.

    Colour is right when the colour measure's sign matches (negative = red); shape when the shape
    measure's sign matches (negative = triangle); quality by the mean objective of shapes vs
    splatters. Also returns the calibrated shape zero (see :func:`qdgs.shapes.labels.calibrate_zero`).
    The held-out images draw the stream ``"shapes-zero-shot"`` of ``seed``.
    """
    seed = derive(seed, "shapes-zero-shot")
    test = balanced_set(n, seed, size)
    with torch.no_grad():
        recon = vae.reconstruct(test.floats())
    splat = prompt_scores(scorer, splatters(n // 2, seed, size).float() / 255)
    rows, zero = [], 0.0
    for name, images in (("rendered", test.floats()), ("VAE reconstruction", recon)):
        s = prompt_scores(scorer, images)
        if name == "rendered":
            zero = calibrate_zero(s[:, 2], test.shape)
        rows.append({"images": name, "colour accuracy": np.mean((s[:, 1] >= 0) == (test.colour == 1)),
                     "shape accuracy": np.mean((s[:, 2] >= 0) == (test.shape == 1)),
                     "shape accuracy (calibrated zero)": np.mean((s[:, 2] >= zero) == (test.shape == 1)),
                     "objective (shapes)": s[:, 0].mean(), "objective (splatters)": splat[:, 0].mean()})
    return pd.DataFrame(rows), {"shape_zero": zero}


def calibrate_ranges(scorer: nn.Module, vae: nn.Module, n: int, seed: int,
                     quantile: float) -> list[tuple[float, float]]:
    """Archive ranges of the two measures from random VAE samples: the (q, 1 − q) quantiles, widened 10 %.

    The paper's ±0.1 is a property of OpenAI CLIP's embedding geometry; an in-repo scorer spreads
    its measures differently (the feasibility run saw ≈ ±0.5), and a range that is too wide leaves
    cells no image can reach, one too narrow piles everything into the edge cells. The samples
    draw the stream ``"shapes-ranges"`` of ``seed``.
    """
    with torch.no_grad():
        m = prompt_scores(scorer, vae(vae.sample_latents(n, derive(seed, "shapes-ranges"))))[:, 1:]
    lo, hi = np.quantile(m, quantile, axis=0), np.quantile(m, 1 - quantile, axis=0)
    pad = 0.05 * (hi - lo)
    return [(float(a - d), float(b + d)) for a, b, d in zip(lo, hi, pad)]
