"""The method tour: Algorithm 1 on the shapes domain, small enough for a classroom laptop.

The tour reuses the shapes chapter's generator and scorer (every setting they are trained with
comes from the chapter's spec on the same profile, so the same cached artifacts) and runs a short
search, so that each step of the method can be looked at on its own. It has no paper-scale
version (see :data:`qdgs.profiles.TOUR`).
"""

from __future__ import annotations

from types import SimpleNamespace

from qdgs.profiles import SHAPES


def settings(p: SimpleNamespace) -> SimpleNamespace:
    """The tour's resolved parameters plus the shapes chapter's model settings on the same profile."""
    chapter = SHAPES.resolve(p.profile)
    return SimpleNamespace(**vars(p), vae_steps=chapter.vae_steps, scorer_steps=chapter.scorer_steps,
                           scorer_generated=chapter.scorer_generated, image_size=chapter.image_size,
                           model_seed=chapter.seed, range_quantile=chapter.range_quantile,
                           latent_bound=chapter.latent_bound)
