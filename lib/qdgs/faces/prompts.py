"""The paper's face prompts and the numbers it reports in OpenAI-CLIP units (facts file).

One objective pair and four measure pairs (skin tone, gender presentation, hair length, age): the
defaults of chapter 02's ``objective_prompts`` and ``measure_prompts`` parameters
(:data:`qdgs.prompts.FACES_PAPER`). The bin threshold and archive range are OpenAI-CLIP units:
another scorer needs its own calibration (:mod:`qdgs.faces.calibration`), which keeps them at the
same relative place.
"""

from __future__ import annotations

from qdgs.prompts import FACES_PAPER

__all__ = ["OBJECTIVE_PROMPTS", "MEASURE_PROMPTS", "MEASURE_NAMES", "PAPER_BIN_THRESHOLD", "PAPER_MEASURE_RANGE",
           "PAPER_DARK_SHARE"]

OBJECTIVE_PROMPTS = FACES_PAPER.objective
MEASURE_PROMPTS = FACES_PAPER.pairs
#: Short names of the measures, in the order of :data:`MEASURE_PROMPTS`.
MEASURE_NAMES = FACES_PAPER.names
#: The paper's dataset bins (skin × gender, ±0.03) and archive range (±0.1), OpenAI-CLIP units.
PAPER_BIN_THRESHOLD = 0.03
PAPER_MEASURE_RANGE = 0.1
#: The paper's share of generated faces recognised as dark-skinned (random sampling → QDGS).
PAPER_DARK_SHARE = {"Rand": 0.094, "QD": 0.252}
