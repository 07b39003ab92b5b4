"""An audit of a synthetic set's colour × shape balance that never asks the scorer that labelled it.

Colour comes from pixel statistics (:func:`pixel_colour`); shape from an oracle CNN trained on
balanced renders, each randomly recoloured (:func:`train_oracle`), so it judges outline only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from qdgs.images import recolour
from qdgs.seeds import derive, seeded_init, torch_generator
from qdgs.shapes.classifier import ShapeClassifier, predict, train_classifier
from qdgs.shapes.render import SHAPE_NAMES, balanced_set, nearest_colour
from qdgs.shapes.synthetic import synthetic_set


def pixel_colour(images: torch.Tensor, margin: float = 0.25) -> np.ndarray:
    """(N,) colour by pixel statistics: 0 red, 1 blue, −1 neither (e.g. purple) or no shape.

    The mean colour of the pixels that are not near-white is named by
    :func:`qdgs.shapes.render.nearest_colour`.
    """
    x = images.float().permute(0, 2, 3, 1).reshape(len(images), -1, 3).numpy()
    if images.dtype == torch.uint8:
        x = x / 255
    ink = (1 - x).sum(axis=2) > 0.3
    means = np.full((len(images), 3), np.nan)
    for i in range(len(images)):
        if ink[i].sum() >= 4:
            means[i] = x[i][ink[i]].mean(axis=0)
    named = nearest_colour(np.nan_to_num(means, nan=1.0), margin)
    return np.where(np.isnan(means[:, 0]), -1, named)


def train_oracle(n: int, size: int, epochs: int, seed: int) -> ShapeClassifier:
    """A shape classifier that ignores colour: balanced renders, every one randomly recoloured.

    Its renders, recolouring, initialisation and batch order are named streams of ``seed``
    (``"shapes-oracle"``), so the same seed gives the same oracle whatever ran before.
    """
    data = balanced_set(n, derive(seed, "shapes-oracle", "data"), size)
    images = recolour(data.masks, torch_generator(seed, "shapes-oracle", "recolour"))
    with seeded_init(seed, "shapes-oracle", "init"):
        model = ShapeClassifier(size)
    return train_classifier(model, images, data.shape, epochs, torch_generator(seed, "shapes-oracle", "batches"))


def _floats(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1], from uint8 or floats."""
    return images.float() / 255 if images.dtype == torch.uint8 else images


def audit(images: torch.Tensor, oracle: ShapeClassifier) -> pd.DataFrame:
    """Colour × shape counts of a set, by pixel colour and the oracle's shape (not the scorer's)."""
    colour = pixel_colour(images)
    shape = predict(oracle, _floats(images))
    names = {0: "red", 1: "blue", -1: "neither"}
    table = pd.crosstab(pd.Series([names[c] for c in colour], name="colour (pixels)"),
                        pd.Series([SHAPE_NAMES[s] for s in shape], name="shape (oracle)"))
    return table.reindex(index=["red", "blue", "neither"], columns=list(SHAPE_NAMES), fill_value=0)


def label_agreement(oracle: ShapeClassifier, images: torch.Tensor, labels: np.ndarray) -> float:
    """The share of a set's shape labels (0 triangle, 1 square) that the oracle gives too; NaN for no images.

    The labels come from the scorer's shape measure; where the oracle disagrees, the scorer
    misjudged the outline or the image is ambiguous.
    """
    labels = np.asarray(labels)
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    return float(np.mean(predict(oracle, _floats(images)) == labels)) if len(labels) else float("nan")


#: The oracle's shape accuracy on held-out renders below which its judgement of a set's labels is withheld.
ORACLE_MIN_ACCURACY = 0.95


def trusted_agreements(oracle: ShapeClassifier, oracle_accuracy: float,
                       sets: Mapping[str, tuple[torch.Tensor, np.ndarray]],
                       minimum: float = ORACLE_MIN_ACCURACY) -> tuple[dict[str, float], str]:
    """:func:`label_agreement` of each set, or NaN for all with the reason when the oracle is not accurate.

    An oracle that misjudges clean renders cannot tell a mislabelled image from its own mistake:
    an agreement it reports says nothing about the labels (a smoke run once printed an oracle
    accuracy of 0.535 and then 95 % agreement).

    Returns:
        (set name → agreement, the reason it was withheld or "").
    """
    if not oracle_accuracy >= minimum:
        return ({name: float("nan") for name in sets},
                f"label agreement withheld: the oracle's shape accuracy on renders is {oracle_accuracy:.3f}, "
                f"below {minimum}; train it longer (oracle_images, oracle_epochs) before trusting its judgement")
    return {name: label_agreement(oracle, images, labels) for name, (images, labels) in sets.items()}, ""


def association(table: pd.DataFrame) -> pd.Series:
    """How much colour predicts shape in an :func:`audit` table (images of neither colour left out).

    ``P(red | triangle) − P(red | square)``: renders at colour bias ``b`` have ``2b − 1`` (0.9 at
    b = 0.95), a balanced set 0. Both conditional shares are returned with it.
    """
    red = table.loc["red", ["triangle", "square"]] / table.loc[["red", "blue"], ["triangle", "square"]].sum()
    return pd.Series({"P(red | triangle)": red["triangle"], "P(red | square)": red["square"],
                      "association": red["triangle"] - red["square"]})


def agreement_by_gap(generator: nn.Module, oracle: ShapeClassifier, latents: np.ndarray, m2: np.ndarray,
                     zero: float, gaps: Sequence[float]) -> pd.DataFrame:
    """For each label gap: the share of candidates the label rule keeps and the oracle's agreement with its labels.

    A wider dropped band around the rule's zero keeps fewer, less ambiguous images; this shows what
    each width buys, on one set of candidate latents (an archive's elites or random samples).
    """
    rows = []
    for gap in gaps:
        images, labels, keep = synthetic_set(generator, latents, m2, zero, gap)
        rows.append({"label_gap": gap, "kept": keep.mean(), "oracle agrees": label_agreement(oracle, images, labels)})
    return pd.DataFrame(rows).set_index("label_gap")
