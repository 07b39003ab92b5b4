"""The paper's labelling rule: a synthetic image's shape label is the sign of its shape measure.

The paper's zero is OpenAI CLIP's; an in-repo scorer may be shifted, so the rule's zero can be
calibrated on labelled renders (:func:`calibrate_zero`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from ribs.archives import GridArchive

from qdgs.shapes.render import GROUP_NAMES


def label_by_measure(m2: np.ndarray, zero: float = 0.0, gap: float = 0.01) -> np.ndarray:
    """The paper's rule: ``m2 < zero − gap`` → triangle (0), ``m2 ≥ zero`` → square (1), else −1 (dropped)."""
    m2 = np.asarray(m2)
    return np.where(m2 < zero - gap, 0, np.where(m2 >= zero, 1, -1))


def calibrate_zero(m2: np.ndarray, shape: np.ndarray) -> float:
    """The threshold on ``m2`` that best separates known triangles from squares (held-out renders).

    The paper's zero is OpenAI CLIP's; a scorer trained here may be shifted, and then the sign of
    ``m2`` mislabels one shape. The best split point on labelled renders (midpoint between sorted
    neighbours) restores the rule's meaning.
    """
    m2, shape = np.asarray(m2, dtype=float), np.asarray(shape)
    order = np.argsort(m2)
    sorted_m, sorted_s = m2[order], shape[order]
    # accuracy when everything up to position i is called a triangle
    correct = np.cumsum(sorted_s == 0) + (sorted_s == 1).sum() - np.cumsum(sorted_s == 1)
    i = int(np.argmax(correct))
    return float((sorted_m[i] + sorted_m[min(i + 1, len(m2) - 1)]) / 2)


def group_coverage(archive: GridArchive, zero: float) -> pd.Series:
    """Coverage of each colour × shape quarter of a (colour, shape) archive: where a sampler fills cells.

    Overall coverage counts cells anywhere; this says which groups' part of the measure space a
    sampler reached (one elite per cell, however many samples fell there). A cell belongs
    to the quarter its centre lies in: red for a negative colour measure ("A red shape." is the
    pair's first prompt), triangle below ``zero`` on the shape measure (the label rule's zero).

    Args:
        archive: an archive over two measures, colour first (e.g. re-binned by
            :func:`qdgs.search.project_archive`).
        zero: the label rule's zero on the shape measure.

    Returns:
        Share of each group's cells holding an elite, by :data:`GROUP_NAMES`; NaN for a group with
        no cell in the archive's ranges.
    """
    dims = np.asarray(archive.dims)[:2]
    centres = [archive.lower_bounds[k] + (np.arange(dims[k]) + 0.5) * (archive.upper_bounds[k] - archive.lower_bounds[k])
               / dims[k] for k in (0, 1)]
    colour, shape = np.meshgrid(*centres, indexing="ij")
    filled = np.zeros(dims, dtype=bool)
    cells = archive.int_to_grid_index(archive.data("index")) if len(archive) else np.zeros((0, 2), dtype=int)
    filled[cells[:, 0], cells[:, 1]] = True
    out = {}
    for g, name in enumerate(GROUP_NAMES):  # group g is colour g // 2 (0 red), shape g % 2 (0 triangle)
        quarter = ((colour < 0) == (g // 2 == 0)) & ((shape < zero) == (g % 2 == 0))
        out[name] = float(filled[quarter].mean()) if quarter.any() else float("nan")
    return pd.Series(out, name="coverage")
