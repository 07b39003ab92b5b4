"""Captions of the offline scorer's training faces, in the paper's vocabulary, and their augmentation.

UTKFace faces are captioned by their labels (skin, gender, decade) in several phrasings, the
paper's prompts among them, plus degraded / discoloured copies captioned like the negative
quality prompt. Hair length has no labels anywhere in UTKFace, so the scorer is never taught the
hair prompts; the book shows what that measure does and says so. :func:`vocabulary` is all the
scorer knows: the trained scorer stores it and flags every other prompt
(:meth:`qdgs.scorers.offline_clip.OfflineClipScorer.check_prompts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from qdgs.faces.prompts import OBJECTIVE_PROMPTS
from qdgs.images import DEGRADATION_KINDS, blur, reframe, relight

__all__ = ["DECADES", "DEGRADATIONS", "Caption", "vocabulary", "positives", "image_attributes", "augment"]

DECADES = {0: "A child.", 1: "A teenager.", **{d: f"A person in their {d}0s." for d in range(2, 8)},
           8: "A person over 80."}
_SKIN = {"dark": ("A person with dark skin.", "A dark-skinned person.", "dark"),
         "light": ("A person with light skin.", "A light-skinned person.", "light")}
_GENDER = {"male": ("A masculine person.", "A man.", "masculine"),
           "female": ("A feminine person.", "A woman.", "feminine")}
#: Degradation kinds of the negative-quality copies, and their own captions.
DEGRADATIONS = dict(zip(DEGRADATION_KINDS, ("A discolored photo of a person.", "A discolored photo of a person.",
                                             "A blurry, pixelated photo of a person.",
                                             "A scrambled, fake image of a face.", "A noisy photo of a person.")))
#: Which attributes survive each degradation (their captions stay positive on the copy).
_SURVIVES = {"recolour": (), "cast": ("gender", "decade"), "pixelate": (), "shuffle": (),
             "noise": ("skin", "gender", "decade")}


@dataclass(frozen=True)
class Caption:
    """A caption and the attribute values an image must have for it to be a positive."""

    text: str
    requires: tuple[tuple[str, str], ...]


def vocabulary() -> list[Caption]:
    """Every caption the offline face scorer is trained on (the paper's prompts among them).

    Attributes are ``skin`` (dark / light), ``gender`` (male / female), ``decade`` (0–8, 8 = 80+)
    and ``quality`` (good / one of :data:`DEGRADATIONS`). Hair prompts are absent: no labels.
    """
    caps = [Caption(OBJECTIVE_PROMPTS[0], (("quality", "good"),))]
    caps += [Caption(OBJECTIVE_PROMPTS[1], (("bad", "yes"),))]
    caps += [Caption(t, (("quality", k),)) for k, t in DEGRADATIONS.items() if k != "cast"]
    caps += [Caption(t, (("skin", s),)) for s, v in _SKIN.items() for t in v[:2]]
    caps += [Caption(t, (("gender", g),)) for g, v in _GENDER.items() for t in v[:2]]
    caps += [Caption(t, (("decade", str(d)),)) for d, t in DECADES.items()]
    for g, gv in _GENDER.items():
        for s, sv in _SKIN.items():
            caps.append(Caption(f"A {gv[2]} person with {sv[2]} skin.", (("gender", g), ("skin", s))))
        for d in range(2, 8):
            caps.append(Caption(f"A {gv[2]} person in their {d}0s.", (("gender", g), ("decade", str(d)))))
    for s, sv in _SKIN.items():
        for d in range(2, 8):
            caps.append(Caption(f"A person with {sv[2]} skin in their {d}0s.", (("skin", s), ("decade", str(d)))))
    return caps


def positives(captions: Sequence[Caption], attrs: Sequence[dict[str, str]]) -> np.ndarray:
    """(B, V) bool: caption v is a positive of image b iff b has every attribute v requires."""
    return np.array([[all(a.get(k) == v for k, v in c.requires) for c in captions] for a in attrs])


def image_attributes(row: pd.Series, skin: int, degradation: str | None) -> dict[str, str]:
    """The caption attributes of one UTKFace image (``skin``: 0 dark, 1 light, -1 none)."""
    attrs = {"gender": ("male", "female")[int(row.gender)], "decade": str(min(int(row.age) // 10, 8))}
    if skin >= 0:
        attrs["skin"] = ("dark", "light")[skin]
    if degradation is None:
        return {**attrs, "quality": "good"}
    kept = {k: v for k, v in attrs.items() if k in _SURVIVES[degradation]}
    return {**kept, "quality": degradation, "bad": "yes"}


def augment(images: torch.Tensor, gen: torch.Generator, blur_p: float = 0.3) -> torch.Tensor:
    """Training augmentation of clean faces: reframing, occasional blur, lighting (:func:`qdgs.images.relight`).

    UTKFace crops are upright, tight and well lit; generated faces are not. Without this, framing
    and lighting could stand in for an attribute.
    """
    x = reframe(images, gen)
    sigma = torch.where(torch.rand(len(x), generator=gen) < blur_p, 0.4 + 1.1 * torch.rand(len(x), generator=gen),
                        torch.zeros(len(x)))
    return relight(blur(x, sigma), gen)
