"""The dark-skinned share of QD and of random faces over several search seeds: the claim, resolved or not.

One search can raise the share by luck; the paper's claim is about the method. So the chapter reruns
the search with other seeds (same settings, each a cached artifact) and audits each archive's elites
beside :data:`RANDOM_FACES` fresh random latents (the generator's own share, measured closely). The
claim holds when, for every validated evaluator, the share rises on every seed; it fails when it
falls on every seed; anything else is not resolved. Passing
one (evaluator, seed) pair per entry to :func:`qdgs.claims.faces_claim` gives exactly that rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from qdgs.faces.audit import EVALUATORS, AttributeNet, classify, predict
from qdgs.faces.backends import render
from qdgs.scoring import PromptScoring
from qdgs.search import SearchConfig, cached_search
from qdgs.seeds import derive

__all__ = ["GOAL_FACTOR", "RANDOM_FACES", "dark_shares", "seed_shares", "share_factor"]

#: The factor by which QD must raise Rand's dark-skinned share on ``default`` (the goal set for this
#: book before its runs; the paper's StyleGAN2 reaches 25.2 / 9.4 = 2.7).
GOAL_FACTOR = 2.5

#: Random faces audited per seed (at least as many as the QD elites). Rand's share is the
#: generator's: with as many faces as elites (~180) its binomial error is about 2.3 points at 10 %,
#: 5.7 points once multiplied by :data:`GOAL_FACTOR`, larger than the effect the goal asks about;
#: with 2,048 it is 0.7 points. The QD share's spread over seeds is the method's and stays.
RANDOM_FACES = 2048


def dark_shares(make_scoring: Callable[[], PromptScoring], config: SearchConfig, net: AttributeNet,
                seeds: Sequence[int], progress_bar: bool = True, random_faces: int = RANDOM_FACES) -> pd.DataFrame:
    """Each seed's search elites (QD) and fresh random latents (Rand), audited by every evaluator.

    Args:
        make_scoring: a fresh scoring (its uniqueness memory empty), called once per seed.
        config: the search settings; only the seed changes.
        net: the audit classifier.
        seeds: search seeds (the chapter's own seed among them reuses its cached search).
        progress_bar: show the searches' progress.
        random_faces: random latents per seed (more when the archive holds more elites).

    Returns:
        One row per (``seed``, ``set``): the dark-skinned share by each evaluator (:data:`EVALUATORS`;
        ITA's of the faces that have one) and ``n``.
    """
    rows = []
    for seed in seeds:
        scoring = make_scoring()
        qd = cached_search(scoring, replace(config, seed=seed), progress_bar=progress_bar).elites()["solution"]
        n_rand = max(len(qd), random_faces)
        rand = scoring.generator.sample_latents(n_rand, seed=derive(seed, "faces", "replicate-random"))
        for name, latents in (("QD", qd), ("Rand", rand.cpu().numpy())):
            attrs = classify(predict(net, render(scoring.generator, latents)))
            rows.append({"seed": seed, "set": name, **{ev: float(attrs[col].mean()) for ev, col in EVALUATORS.items()},
                         "n": len(latents)})
    return pd.DataFrame(rows)


def seed_shares(table: pd.DataFrame, evaluators: Sequence[str]) -> dict[str, tuple[float, float]]:
    """``"<evaluator>, seed <s>" → (Rand share, QD share)`` for :func:`qdgs.claims.faces_claim`, validated evaluators only."""
    by = table.set_index(["seed", "set"])
    return {f"{ev}, seed {s}": (float(by.loc[(s, "Rand"), ev]), float(by.loc[(s, "QD"), ev]))
            for ev in evaluators for s in table.seed.unique()}


def share_factor(table: pd.DataFrame, evaluator: str, factor: float = GOAL_FACTOR) -> dict[str, float | bool | list]:
    """How many times Rand's share QD reaches, per seed and on the means, and whether ``factor`` is resolved.

    The margin ``QD − factor × Rand`` is paired by seed (one seed's sets share a search); the goal is
    resolved when its mean is more than two standard errors above zero, and refuted when more than two
    below; one seed gives no standard error and resolves nothing.

    Returns:
        ``per_seed`` (QD ÷ Rand of each seed), ``of_means`` (mean QD ÷ mean Rand), ``margin`` and
        ``std_error`` (shares), ``seeds``, ``resolved`` (True, False, or None for within the noise).
    """
    by = table.pivot(index="seed", columns="set", values=evaluator)
    margin = by["QD"] - factor * by["Rand"]
    se = float(margin.std(ddof=1) / np.sqrt(len(margin))) if len(margin) > 1 else float("nan")
    mean = float(margin.mean())
    resolved = None if not se > 0 or abs(mean) <= 2 * se else bool(mean > 0)
    rand = float(by["Rand"].mean())
    return {"per_seed": (by["QD"] / by["Rand"]).round(3).tolist(),
            "of_means": float(by["QD"].mean()) / rand if rand > 0 else float("inf"),
            "margin": mean, "std_error": se, "seeds": len(margin), "resolved": resolved}
