"""A light-skewed sample of UTKFace with FFHQ-like ratios: the training set of the skewed face generator.

The paper's premise is a generator whose random faces are mostly light-skinned and young
(StyleGAN2-FFHQ: about 7 : 1 light : dark, 2 : 1 young : old), so that a search has an imbalance
to correct. The DigiFace DCGAN has none, so the book trains a generator on UTKFace subsampled to
those ratios, as a practitioner's web-scraped data would be skewed. "Light" and "dark" here are
UTKFace's race labels (White and Asian against Black); Indian and Others faces are left out, so
that the ratio the generator learns is the one requested. Only the training split is sampled
(:func:`qdgs.faces.utkface.utkface_split`): the held-out faces that validate the evaluators stay unseen.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qdgs.faces.audit import age_group
from qdgs.seeds import numpy_rng

__all__ = ["FFHQ_LIKE", "LIGHT_RACES", "DARK_RACES", "skewed_sample", "sample_ratios"]

#: Light : dark and young (under 40) : old (40 and over) of FFHQ as the paper reports it.
FFHQ_LIKE = {"light_dark": 7.0, "young_old": 2.0}
#: UTKFace race labels counted light (White, Asian) and dark (Black).
LIGHT_RACES, DARK_RACES = (0, 2), (1,)


def skewed_sample(table: pd.DataFrame, rows: np.ndarray, seed: int, light_dark: float = FFHQ_LIKE["light_dark"],
                  young_old: float = FFHQ_LIKE["young_old"]) -> np.ndarray:
    """The largest subsample of ``rows`` with the requested ratios, drawn without replacement.

    Each (skin, age group) stratum gets a share fixed by the two ratios, independently (so both
    hold within each other: old faces are as light-skewed as young ones); the sample size is the
    largest that the scarcest stratum allows.

    Args:
        table: UTKFace labels (``race``, ``age``) of :func:`qdgs.data.utkface_table`.
        rows: the candidate row indices (the training split).
        seed: seeds the draw.
        light_dark: light : dark ratio (> 0).
        young_old: under 40 : 40 and over ratio (> 0).

    Returns:
        Sorted row indices into ``table``.
    """
    if light_dark <= 0 or young_old <= 0:
        raise ValueError(f"ratios must be positive, got light_dark={light_dark}, young_old={young_old}")
    rows = np.asarray(rows)
    race, age = table.race.values[rows], age_group(table.age.values[rows])
    skin = np.where(np.isin(race, LIGHT_RACES), 1, np.where(np.isin(race, DARK_RACES), 0, -1))
    share = {1: light_dark / (1 + light_dark), 0: 1 / (1 + light_dark)}
    age_share = {0: young_old / (1 + young_old), 1: 1 / (1 + young_old)}
    strata = {(s, a): rows[(skin == s) & (age == a)] for s in (0, 1) for a in (0, 1)}
    weight = {k: share[k[0]] * age_share[k[1]] for k in strata}
    total = min(len(strata[k]) / weight[k] for k in strata)
    rng = numpy_rng(seed, "faces-skew", "sample")
    picked = [rng.choice(strata[k], int(round(total * weight[k])), replace=False) for k in sorted(strata)]
    return np.sort(np.concatenate(picked))


def sample_ratios(table: pd.DataFrame, rows: np.ndarray) -> dict[str, float]:
    """Light : dark and young : old of ``rows`` by UTKFace labels (the check that the sample is skewed)."""
    race, age = table.race.values[rows], age_group(table.age.values[rows])
    light, dark = np.isin(race, LIGHT_RACES).sum(), np.isin(race, DARK_RACES).sum()
    return {"light_dark": light / max(dark, 1), "young_old": (age == 0).sum() / max((age == 1).sum(), 1),
            "faces": int(len(rows))}
