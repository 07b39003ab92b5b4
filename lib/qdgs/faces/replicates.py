"""The dark-skinned share of QD and of random faces over several search seeds: the claim, resolved or not.

One search can raise the share by luck; the paper's claim is about the method. So the chapter reruns
the search with other seeds (same settings, each a cached artifact) and audits each archive's elites
beside as many fresh random latents. The claim holds when, for every validated evaluator, the share
rises on every seed; it fails when it falls on every seed; anything else is not resolved. Passing
one (evaluator, seed) pair per entry to :func:`qdgs.claims.faces_claim` gives exactly that rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import pandas as pd

from qdgs.faces.audit import EVALUATORS, AttributeNet, classify, predict
from qdgs.faces.backends import render
from qdgs.scoring import PromptScoring
from qdgs.search import SearchConfig, cached_search
from qdgs.seeds import derive

__all__ = ["dark_shares", "seed_shares"]


def dark_shares(make_scoring: Callable[[], PromptScoring], config: SearchConfig, net: AttributeNet,
                seeds: Sequence[int], progress_bar: bool = True) -> pd.DataFrame:
    """Each seed's search elites (QD) and as many random latents (Rand), audited by every evaluator.

    Args:
        make_scoring: a fresh scoring (its uniqueness memory empty), called once per seed.
        config: the search settings; only the seed changes.
        net: the audit classifier.
        seeds: search seeds (the chapter's own seed among them reuses its cached search).
        progress_bar: show the searches' progress.

    Returns:
        One row per (``seed``, ``set``): the dark-skinned share by each evaluator (:data:`EVALUATORS`;
        ITA's of the faces that have one) and ``n``.
    """
    rows = []
    for seed in seeds:
        scoring = make_scoring()
        qd = cached_search(scoring, replace(config, seed=seed), progress_bar=progress_bar).elites()["solution"]
        rand = scoring.generator.sample_latents(len(qd), seed=derive(seed, "faces", "replicate-random"))
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
