"""Calibrating a scorer's measures on random generator samples, and how entangled they are.

The paper's ±0.1 archive range and ±0.03 bins are OpenAI-CLIP numbers; another scorer has its own
centre and spread, and a generator may sit far from the zero point (a first attempt found 99 % of
DCGAN faces "masculine"). Each measure's centre and spread on random samples puts the archive and
the bins at the paper's relative place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from qdgs.faces.prompts import PAPER_BIN_THRESHOLD, PAPER_MEASURE_RANGE
from qdgs.scoring import Evaluation, PromptScoring
from qdgs.seeds import derive

__all__ = ["Calibration", "evaluate_batched", "calibrate", "entanglement"]


@dataclass
class Calibration:
    """Each measure's centre and spread on random generator samples.

    Attributes:
        centre: (M,) median measure.
        spread: (M,) half the central 95 % interval.
        samples: (n, M) the measures of the random samples.
    """

    centre: np.ndarray
    spread: np.ndarray
    samples: np.ndarray

    def ranges(self, scale: float = 2.0) -> list[tuple[float, float]]:
        """Archive ranges ``centre ± scale · spread`` (the search reaches past random samples)."""
        return [(float(c - scale * s), float(c + scale * s)) for c, s in zip(self.centre, self.spread)]

    def thresholds(self, scale: float = 2.0) -> list[tuple[float, float]]:
        """Bin thresholds at the paper's relative place: ±0.03 of ±0.1 is 30 % of the half-range."""
        frac = PAPER_BIN_THRESHOLD / PAPER_MEASURE_RANGE
        return [(float(c - frac * scale * s), float(c + frac * scale * s)) for c, s in zip(self.centre, self.spread)]


def evaluate_batched(scoring: PromptScoring, latents: np.ndarray, batch_size: int = 64) -> Evaluation:
    """:meth:`PromptScoring.evaluate` of (n, D) latents in batches, without Jacobians, joined into one."""
    evs = [scoring.evaluate(latents[i:i + batch_size]) for i in range(0, len(latents), batch_size)]
    return Evaluation(objective=np.concatenate([e.objective for e in evs]),
                      measures=np.concatenate([e.measures for e in evs]), jacobian=None,
                      embeddings=np.concatenate([e.embeddings for e in evs]),
                      images=torch.cat([e.images.cpu() for e in evs]))


def calibrate(scoring: PromptScoring, n: int, seed: int = 0,
              batch_size: int = 128) -> tuple[Calibration, dict[str, np.ndarray]]:
    """Measures of ``n`` random latents: the calibration, plus their images' statistics.

    Args:
        scoring: the scoring the search will use.
        n: random samples.
        seed: the chapter's seed (the latents come from its ``faces/calibration`` stream).
        batch_size: latents per forward.

    Returns:
        The calibration and a dict of per-sample arrays: ``latents``, ``objective``, ``measures``,
        ``brightness`` (mean pixel value), ``images`` (uint8, (n, H, W, 3)).
    """
    z = scoring.generator.sample_latents(n, seed=derive(seed, "faces", "calibration")).cpu().numpy()
    ev = evaluate_batched(scoring, z, batch_size)
    images = ev.images.clamp(0, 1)
    lo, mid, hi = np.percentile(ev.measures, [2.5, 50, 97.5], axis=0)
    samples = {"latents": z, "objective": ev.objective, "measures": ev.measures,
               "brightness": images.mean(dim=(1, 2, 3)).numpy(),
               "images": (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)}
    return Calibration(mid, np.maximum((hi - lo) / 2, 1e-6), ev.measures), samples


def entanglement(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Spearman correlation matrix of named per-sample columns (measures, objective, brightness, ITA).

    Each entry uses the samples where both columns are defined (ITA is NaN for a face with too
    few skin pixels).
    """
    return pd.DataFrame(columns).corr(method="spearman")
