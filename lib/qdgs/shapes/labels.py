"""The paper's labelling rule: a synthetic image's shape label is the sign of its shape measure.

The paper's zero is OpenAI CLIP's; an in-repo scorer may be shifted, so the rule's zero can be
calibrated on labelled renders (:func:`calibrate_zero`).
"""

from __future__ import annotations

import numpy as np


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
