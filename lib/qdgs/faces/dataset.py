"""The dataset writer: latents → an aligned image-folder face dataset with metadata and a datasheet.

The QD dataset takes the search's elites; the Rand dataset takes as many fresh random latents and
is given as many identities. Both go through :func:`write_face_dataset` and are cached artifacts
keyed by their content (latents, measures, identities, offsets, generator weights), so a change
elsewhere in the chapter (say, a recognition setting) never rewrites them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from torch import nn

from qdgs.cache import arrays_hash, artifact, atomic_write, weights_hash
from qdgs.faces.align import FaceAligner
from qdgs.faces.backends import render
from qdgs.faces.calibration import evaluate_batched
from qdgs.faces.identities import (
    assign_identities,
    latent_augmentations,
    matched_random_latents,
    skin_gender_bins,
)
from qdgs.faces.prompts import MEASURE_PROMPTS
from qdgs.progress import progress
from qdgs.scoring import PromptScoring
from qdgs.seeds import numpy_rng

__all__ = ["write_face_dataset", "datasheet", "WrittenDataset", "write_datasets"]


def write_face_dataset(root: str | Path, generator: nn.Module, latents: np.ndarray, measures: np.ndarray,
                       objective: np.ndarray, thresholds: Sequence[tuple[float, float]],
                       augmentations: np.ndarray, identities: np.ndarray | None = None, align: bool = True,
                       seed: int = 0, description: str = "", batch_size: int = 64,
                       progress_bar: bool = True) -> pd.DataFrame:
    """Write an image-folder face dataset: ``images/<identity>/<index>.png``, metadata.csv, datasheet.md.

    Args:
        root: the (empty or new) dataset directory, e.g. a ``qdgs.cache.artifact`` build dir.
        generator: renders latents.
        latents: (n, D) elites (or random latents for the baseline).
        measures: (n, M) their measures; skin and gender (columns 0, 1) choose the bins.
        objective: (n,) their objective.
        thresholds: skin and gender (low, high) bin thresholds (:func:`skin_gender_bins`).
        augmentations: (A, D) latent offsets (:func:`latent_augmentations`); A images per latent.
        identities: (n,) identity of each latent; default k-means, ⌈n_b / 2⌉ per bin.
        align: MTCNN-align to 112 × 112 (else the generator's images as they are), on the generator's device.
        seed: seeds k-means.
        description: one paragraph for the datasheet (what produced the latents).
        batch_size: latents rendered per batch.
        progress_bar: show progress.

    Returns:
        The metadata table (one row per image), also written as ``metadata.csv``.
    """
    root = Path(root)
    bins = skin_gender_bins(measures, thresholds)
    ids = assign_identities(latents, bins, seed) if identities is None else np.asarray(identities)
    aligner = FaceAligner(device=next(generator.parameters()).device) if align else None  # where the faces are made
    counters: dict[int, int] = {}
    rows = []
    for start in progress(range(0, len(latents), batch_size), enabled=progress_bar, desc="writing faces"):
        z = np.asarray(latents[start:start + batch_size], dtype=np.float32)
        base = render(generator, z)
        marks = aligner.landmarks(base) if aligner else [None] * len(base)
        for a, offset in enumerate(augmentations):
            imgs = render(generator, z + offset)
            if aligner:  # the offsets are small: the elite's own landmarks align all its images
                imgs = aligner.warp(imgs, marks)
            for j, img in enumerate(imgs):
                i = start + j
                ident = int(ids[i])
                k = counters[ident] = counters.get(ident, -1) + 1
                rel = f"images/{ident:05d}/{k:03d}.png"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(root / rel)
                rows.append({"path": rel, "identity": ident, "label": ident, "source_index": i,
                             "augmentation": a, "aligned": marks[j] is not None, "bin": int(bins[i]),
                             "objective": float(objective[i]),
                             **{f"m{m}": float(measures[i, m]) for m in range(measures.shape[1])},
                             "latent": json.dumps(np.round(latents[i], 5).tolist())})
    meta = pd.DataFrame(rows)
    np.save(root / "augmentations.npy", augmentations)
    with atomic_write(root / "metadata.csv", "w") as f:
        meta.to_csv(f, index=False)
    with atomic_write(root / "datasheet.md", "w") as f:
        f.write(datasheet(meta, thresholds, description))
    return meta


def datasheet(meta: pd.DataFrame, thresholds: Sequence[tuple[float, float]], description: str) -> str:
    """A short datasheet (Gebru et al. style) for a written face dataset."""
    per_bin = meta.drop_duplicates("source_index").groupby("bin").size().reindex(range(9), fill_value=0)
    skin_names = (MEASURE_PROMPTS[0][0], "mid", MEASURE_PROMPTS[0][1])
    table = "\n".join(f"| {b // 3} ({skin_names[b // 3]}) | {b % 3} | {n} |" for b, n in per_bin.items())
    n_measures = len([c for c in meta if c.startswith("m") and c[1:].isdigit()])
    return f"""# Datasheet: synthetic face dataset

**What.** {description or 'Synthetic faces rendered from generator latents.'}
{meta.identity.nunique()} identities, {len(meta)} images ({meta.source_index.nunique()} latents ×
{meta.augmentation.nunique()} latent augmentations), PNG, {'MTCNN-aligned to 112 × 112' if meta.aligned.any() else 'unaligned'}
({meta.aligned.mean():.1%} of images aligned from detected landmarks, the rest centre-resized).

**How.** Latents are binned 3 × 3 by the scorer's skin and gender measures (thresholds skin
{thresholds[0]}, gender {thresholds[1]}; bin 0 = closer to the first prompt), grouped into
identities by k-means inside each bin, and each latent is rendered with fixed small latent offsets
(`augmentations.npy`, row 0 = none). `metadata.csv` lists every image with its identity, bin,
objective, measures (`m0`–`m{n_measures - 1}`) and source latent.

| skin bin | gender bin | latents |
|---|---|---|
{table}

**Caveats.** Nobody in this dataset exists. Bins come from a text-image scorer's reading of the
images, not from any person's identity; skin-tone and gender bins are coarse, contestable
proxies. Identities are clusters of nearby latents, not verified to look like one person. Use it
for research on synthetic pre-training and bias, not to make decisions about people.
"""


@dataclass
class WrittenDataset:
    """A written face dataset: its directory, metadata and the (n, D) latents it was rendered from."""

    path: Path
    meta: pd.DataFrame
    latents: np.ndarray


def write_datasets(generator: nn.Module, scoring: PromptScoring, elites: dict[str, np.ndarray],
                   thresholds: Sequence[tuple[float, float]], *, dataset_latents: int, augmentations: int,
                   augmentation_scale: float, align: bool, seed: int,
                   backends: str = "") -> tuple[WrittenDataset, WrittenDataset]:
    """Write (or reuse from the cache) the QD dataset of ``elites`` and its matched Rand dataset.

    Rand takes as many fresh random latents as QD has (``dataset_latents`` caps both, keeping a
    seeded random subset of the elites), scored with the same scoring, and is given exactly as many
    identities as QD has. Each dataset is keyed by what is written into it, nothing else.

    Args:
        generator: renders latents.
        scoring: scores the random latents (measures for their bins, objective for the metadata).
        elites: ``solution``, ``measures``, ``objective`` of the QD archive.
        thresholds: skin and gender bin thresholds.
        dataset_latents: latents per dataset, 0 for every elite.
        augmentations: images per latent (fixed latent offsets, :func:`latent_augmentations`).
        augmentation_scale: standard deviation of the offsets.
        align: MTCNN-align to 112 × 112.
        seed: the chapter's seed (subset, offsets, random latents, k-means).
        backends: names the generator and scorer in the datasheets.
    """
    n = len(elites["solution"])
    rng = numpy_rng(seed, "faces", "dataset-subset")
    keep = np.sort(rng.choice(n, dataset_latents, replace=False)) if 0 < dataset_latents < n else np.arange(n)
    qd_z, qd_m, qd_f = (elites[k][keep] for k in ("solution", "measures", "objective"))
    aug = latent_augmentations(qd_z.shape[1], augmentations, augmentation_scale, seed)
    common = {"generator": weights_hash(generator), "thresholds": [list(map(float, t)) for t in thresholds],
              "augmentations": arrays_hash(aug), "align": align, "seed": seed}

    def write(z, m, f, identities, description: str) -> WrittenDataset:
        def build(tmp: Path) -> None:
            write_face_dataset(tmp, generator, z, m, f, thresholds, aug, identities, align, seed, description)

        content = {"latents": arrays_hash(z, m, f, identities), "description": description}
        path = artifact("faces-dataset", {**common, **content}, build)
        return WrittenDataset(path, pd.read_csv(path / "metadata.csv"), z)

    qd = write(qd_z, qd_m, qd_f, None, f"QDGS elites ({backends}, paper prompts).")
    rand_z = matched_random_latents(generator, len(qd_z), seed)
    ev = evaluate_batched(scoring, rand_z)
    ids = assign_identities(rand_z, skin_gender_bins(ev.measures, thresholds), seed, qd.meta.identity.nunique())
    rand = write(rand_z, ev.measures, ev.objective, ids,
                 f"Random latents ({backends}), matched to the QD dataset in latents, identities and images.")
    return qd, rand
