"""From latents to synthetic people: skin × gender bins, k-means identities, latent augmentations.

Elites are split into 3 × 3 skin × gender bins by the scorer's measures, grouped into identities
by k-means inside each bin (the paper: ⌈n_b / 2⌉ per bin), and each latent is rendered with fixed
small latent offsets, so one elite yields several images of one synthetic person. The random
baseline gets as many identities, shared out over its own bins.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.cluster import KMeans
from torch import nn

from qdgs.seeds import derive, numpy_rng

__all__ = ["skin_gender_bins", "assign_identities", "allocate", "latent_augmentations", "matched_random_latents"]


def skin_gender_bins(measures: np.ndarray, thresholds: Sequence[tuple[float, float]]) -> np.ndarray:
    """(n,) bin 0–8 = 3 · skin bin + gender bin; bin 0 of a measure is "closer to its first prompt".

    Args:
        measures: (n, M) measures; columns 0 (skin) and 1 (gender) are used.
        thresholds: (low, high) for skin and gender: below low → 0, above high → 2, else 1.
    """
    parts = [np.digitize(measures[:, k], thresholds[k], right=False) for k in (0, 1)]
    return 3 * parts[0] + parts[1]


def assign_identities(latents: np.ndarray, bins: np.ndarray, seed: int = 0,
                      n_identities: int | None = None) -> np.ndarray:
    """k-means identities inside each bin; (n,) global identity ids.

    Args:
        latents: (n, D) latents.
        bins: (n,) bin of each latent.
        seed: the chapter's seed (k-means draws from its ``faces/identities`` stream).
        n_identities: total identities; default ⌈n_b / 2⌉ per bin (the paper). When given (the
            random baseline matched to a QDGS set), they are shared out in proportion to bin sizes.
    """
    labels, counts = np.unique(bins, return_counts=True)
    per_bin = np.ceil(counts / 2).astype(int) if n_identities is None else allocate(counts, n_identities)
    state = derive(seed, "faces", "identities") % 2**32  # scikit-learn takes 32-bit seeds
    ids, next_id = np.empty(len(latents), int), 0
    for b, k in zip(labels, per_bin):
        rows = np.flatnonzero(bins == b)
        km = KMeans(k, n_init=4, random_state=state).fit(latents[rows]) if 1 < k < len(rows) else None
        local = km.labels_ if km is not None else (np.arange(len(rows)) % max(k, 1))
        ids[rows] = next_id + local
        next_id += k
    return ids


def allocate(counts: np.ndarray, total: int) -> np.ndarray:
    """Largest-remainder shares of ``total`` in proportion to ``counts``, each in [1, count]."""
    total = int(np.clip(total, len(counts), counts.sum()))
    raw = counts / counts.sum() * total
    share = np.clip(np.floor(raw).astype(int), 1, counts)
    for i in np.argsort(-(raw - np.floor(raw))):
        if share.sum() >= total:
            break
        share[i] += share[i] < counts[i]
    while share.sum() > total:
        share[np.argmax(share)] -= 1
    return share


def latent_augmentations(dim: int, n: int = 9, scale: float = 0.3, seed: int = 0) -> np.ndarray:
    """(n, dim) fixed latent offsets; row 0 is zero (the elite itself). Stored with every dataset.

    Small offsets change pose, expression and lighting more than identity, so one elite yields
    several images of one synthetic person.
    """
    offsets = numpy_rng(seed, "faces", "latent-augmentations").normal(0, scale, (n, dim))
    offsets[0] = 0
    return offsets.astype(np.float32)


def matched_random_latents(generator: nn.Module, n: int, seed: int) -> np.ndarray:
    """(n, D) random latents for the baseline dataset, from the chapter seed's own stream."""
    return generator.sample_latents(n, seed=derive(seed, "faces", "rand-dataset-latents")).cpu().numpy()
