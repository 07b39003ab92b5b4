"""Synthetic shapes sets: latents decoded, labelled by the shape measure, written as image folders.

A written set is keyed by its content (images, labels, latents, scores, name and note), not by
the parameters of the run that made it: a parameter that only acts downstream (fine-tuning
epochs, test size) reuses the set, and anything that changes an image or a label writes a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from qdgs.cache import arrays_hash, artifact
from qdgs.datasets import write_image_folder
from qdgs.scoring import PromptScoring
from qdgs.seeds import derive, numpy_rng
from qdgs.shapes.labels import label_by_measure
from qdgs.shapes.render import SHAPE_NAMES


@torch.no_grad()
def synthetic_set(generator: nn.Module, latents: np.ndarray, m2: np.ndarray, zero: float, gap: float,
                  batch_size: int = 256) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Decode latents and label them by the shape measure (the paper's rule, gap dropped).

    Args:
        generator: the shapes VAE (or its bounded view).
        latents: (N, D) latents (archive elites or random samples).
        m2: (N,) their shape measure.
        zero: the rule's zero point (0 in the paper; calibrated for an in-repo scorer).
        gap: width of the dropped band below ``zero``.

    Returns:
        images (n, 3, H, W) in [0, 1] on the CPU, labels (n,) and the (N,) bool mask of the kept latents.
    """
    labels = label_by_measure(m2, zero, gap)
    keep = labels >= 0
    device = next(iter(generator.parameters()), torch.zeros(())).device  # decoded where the generator is
    z = torch.as_tensor(np.asarray(latents)[keep], dtype=torch.float32, device=device)
    # an empty batch decodes to (0, 3, H, W): no generator attribute needed (a bounded view has none)
    images = torch.cat([generator(z[i:i + batch_size]).cpu() for i in range(0, max(len(z), 1), batch_size)])
    return images, labels[keep], keep


def write_synthetic(name: str, images: torch.Tensor, labels: np.ndarray, latents: np.ndarray, objective: np.ndarray,
                    measures: np.ndarray, note: str = "") -> Path:
    """Write a labelled synthetic shapes set in the image-folder layout, through the artifact cache.

    Args:
        name: the set's name ("qdgs", "random").
        images: (n, 3, H, W) images in [0, 1].
        labels: (n,) shape labels.
        latents: (n, D) their latents; objective (n,) and measures (n, M) their scores.
        note: how the set was made, for the datasheet.

    Returns:
        The dataset directory (read it with :class:`qdgs.datasets.ImageFolderDataset`); the same
        content always gives the same directory.
    """
    labels, measures = np.asarray(labels), np.asarray(measures)

    def build(tmp: Path) -> None:
        columns = {"latent": list(np.asarray(latents)), "objective": objective,
                   **{f"m{k}": measures[:, k] for k in range(measures.shape[1])}}
        counts = np.bincount(labels, minlength=2)
        sheet = (f"# Synthetic shapes: {name}\n\n{len(labels)} images ({counts[0]} labelled triangle, "
                 f"{counts[1]} square) decoded by the shapes VAE. {note}\n\nColumns: latent (JSON), objective, "
                 "m0 (colour measure, negative = red), m1 (shape measure, negative = triangle).\n")
        write_image_folder(tmp, images, labels, class_names=SHAPE_NAMES, columns=columns, datasheet=sheet)

    key = {"name": name, "note": note, "n": len(labels),
           "content": arrays_hash(images, labels, latents, objective, measures)}
    return artifact(f"shapes-synthetic-{name}", key, build)


@dataclass
class SampledSet:
    """One labelled synthetic set and where it came from.

    Attributes:
        images, labels: the kept images (n, 3, H, W) in [0, 1] and their shape labels (n,).
        latents, objective, measures: every candidate latent (N, D) and its scores, labelled or not.
        keep: (N,) which candidates were labelled (and are in ``images``).
        path: the written image folder.
    """

    images: torch.Tensor
    labels: np.ndarray
    latents: np.ndarray
    objective: np.ndarray
    measures: np.ndarray
    keep: np.ndarray
    path: Path


def qdgs_and_random_sets(scoring: PromptScoring, elites: Mapping[str, np.ndarray], zero: float, gap: float,
                         seed: int, size: int = 0, tag: str = "") -> dict[str, SampledSet]:
    """The QDGS set (the archive's labelled elites) and a random set of as many labelled prior samples, written.

    Both go through the same labelling rule and writer. The random set draws prior latents (the
    stream ``"random-set"`` of ``seed``) until as many are labelled as the QDGS set holds, so the
    two sets are the same size whatever share of each the rule drops. With ``size`` a random subset
    of that many elites is taken first.

    Args:
        scoring: the search's scoring (its generator decodes, its scorer labels the random samples).
        elites: :meth:`qdgs.search.SearchResult.elites` of the QDGS archive.
        tag: appended to the written sets' names (e.g. "-generator-bias-0.5").
    """
    n_elites = len(elites["solution"])
    if size:
        pick = numpy_rng(seed, "synthetic-subset").permutation(n_elites)[:size]
        elites = {k: v[pick] for k, v in elites.items()}
    kept = len(elites["solution"])
    wanted = int((label_by_measure(elites["measures"][:, 1], zero, gap) >= 0).sum())
    z_rand, ev, n = None, None, max(kept, 1)
    while z_rand is None or (label_by_measure(ev.measures[:, 1], zero, gap) >= 0).sum() < wanted:
        n *= 2
        z_rand = scoring.generator.sample_latents(n, derive(seed, "random-set")).cpu().numpy()
        ev = scoring.evaluate(z_rand)
    labelled = np.flatnonzero(label_by_measure(ev.measures[:, 1], zero, gap) >= 0)
    last = labelled[wanted - 1] + 1 if wanted else 0  # the shortest prefix of the stream with enough labels
    qdgs_note = (f"A random {kept} of the passive QDGS archive's {n_elites} elites." if kept < n_elites
                 else "Every elite of the passive QDGS archive.")
    out = {}
    for name, z, objective, measures, note in (
            ("qdgs", elites["solution"], elites["objective"], elites["measures"], qdgs_note),
            ("random", z_rand[:last], ev.objective[:last], ev.measures[:last],
             "Random prior latents, labelled by the same rule, drawn until as many are labelled.")):
        images, labels, keep = synthetic_set(scoring.generator, z, measures[:, 1], zero, gap)
        path = write_synthetic(name + tag, images, labels, z[keep], objective[keep], measures[keep], note=note)
        out[name] = SampledSet(images, labels, z, objective, measures, keep, path)
    return out
