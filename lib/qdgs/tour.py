"""The method tour: Algorithm 1 on the shapes domain, small enough for a classroom laptop.

The tour reuses the shapes chapter's generator and scorer (same settings, so the same cached
artifacts) and runs a short search, so that each step of the method can be looked at on its own.
"""

from __future__ import annotations

from types import SimpleNamespace

from qdgs import shapes
from qdgs.params import Param, resolve

PARAMS = [
    Param("iterations", int, {"smoke": 100, "default": 400, "paper": 400}, low=1, help="QDGS iterations"),
    Param("archive_cells", int, 15, low=2, high=100, help="cells per measure"),
    Param("seed", int, 0, low=0, help="seeds the search and the random samples"),
]


def settings(profile: str, **given) -> SimpleNamespace:
    """The tour's parameters, plus the shapes chapter's model settings on the same profile."""
    p = resolve(PARAMS, profile, **given)
    chapter = resolve(shapes.PARAMS, "smoke" if profile == "smoke" else "default")
    p.vae_steps, p.scorer_steps, p.image_size = chapter.vae_steps, chapter.scorer_steps, chapter.image_size
    p.model_seed, p.range_quantile, p.latent_bound = chapter.seed, chapter.range_quantile, chapter.latent_bound
    return p
