"""The shapes domain: the paper's proof of concept, coloured triangles and squares.

Modules, each one concept, re-exported here:

- :mod:`~qdgs.shapes.render`: the renderer, biased and balanced sets, splatters, colour names.
- :mod:`~qdgs.shapes.captions`: the paper's prompts and the captions the offline scorer learns.
- :mod:`~qdgs.shapes.scorer`: the cached offline CLIP scorer, its zero-shot check, archive ranges.
- :mod:`~qdgs.shapes.labels`: the paper's shape-label rule and its calibrated zero.
- :mod:`~qdgs.shapes.synthetic`: synthetic sets decoded from latents, written as image folders.
- :mod:`~qdgs.shapes.classifier`: the paper's shape classifier and per-group accuracy.
- :mod:`~qdgs.shapes.audit`: the scorer-independent audit (pixel colour, oracle shape).
- :mod:`~qdgs.shapes.debias`: the debiasing experiment.
- :mod:`~qdgs.shapes.generator`: the chapter's generator by name (a VAE trained at a colour bias, or the paper's), and which groups it can draw.

The in-repo generator, a VAE with a polygon decoder, is :mod:`qdgs.generators.shapes_vae`.
"""

from qdgs.shapes.audit import ORACLE_MIN_ACCURACY, agreement_by_gap, association, audit, label_agreement, pixel_colour, train_oracle, trusted_agreements
from qdgs.shapes.captions import MEASURE_PROMPTS, OBJECTIVE_PROMPTS, ShapeCaptionSampler, positives, vocabulary
from qdgs.shapes.classifier import ShapeClassifier, group_accuracies, predict, train_classifier
from qdgs.shapes.debias import Protocol, cached_debiasing, run_debiasing, summarise, transfer_ceiling
from qdgs.shapes.generator import drawable_groups, shapes_generator, short_steps
from qdgs.shapes.labels import calibrate_zero, group_coverage, label_by_measure
from qdgs.shapes.render import (
    BLUE,
    CANVAS,
    COLOUR_NAMES,
    COLOURS,
    GROUP_NAMES,
    RED,
    SHAPE_NAMES,
    SQUARE_SIDE,
    TRIANGLE_BASE,
    ShapeSet,
    balanced_labels,
    balanced_set,
    biased_labels,
    biased_set,
    blueness,
    nearest_colour,
    render,
    splatters,
)
from qdgs.shapes.scorer import SCORER_CONFIG, cached_scorer, calibrate_ranges, prompt_scores, render_ranges, zero_shot
from qdgs.shapes.synthetic import SampledSet, qdgs_and_random_sets, synthetic_set, write_synthetic

__all__ = [
    "ORACLE_MIN_ACCURACY",
    "BLUE",
    "CANVAS",
    "COLOURS",
    "COLOUR_NAMES",
    "GROUP_NAMES",
    "MEASURE_PROMPTS",
    "OBJECTIVE_PROMPTS",
    "RED",
    "SCORER_CONFIG",
    "SHAPE_NAMES",
    "SQUARE_SIDE",
    "TRIANGLE_BASE",
    "Protocol",
    "SampledSet",
    "ShapeCaptionSampler",
    "ShapeClassifier",
    "ShapeSet",
    "agreement_by_gap",
    "association",
    "audit",
    "balanced_labels",
    "balanced_set",
    "biased_labels",
    "biased_set",
    "blueness",
    "cached_debiasing",
    "cached_scorer",
    "calibrate_ranges",
    "calibrate_zero",
    "drawable_groups",
    "group_accuracies",
    "group_coverage",
    "label_agreement",
    "label_by_measure",
    "nearest_colour",
    "pixel_colour",
    "positives",
    "predict",
    "prompt_scores",
    "qdgs_and_random_sets",
    "render",
    "render_ranges",
    "shapes_generator",
    "short_steps",
    "run_debiasing",
    "splatters",
    "summarise",
    "synthetic_set",
    "train_classifier",
    "train_oracle",
    "transfer_ceiling",
    "trusted_agreements",
    "vocabulary",
    "write_synthetic",
    "zero_shot",
]
