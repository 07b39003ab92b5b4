"""The rules that decide whether our run shows each of the paper's claims.

A verdict is True (our run shows the effect), False (it shows its absence) or None (it cannot
tell). The rules live here, with unit tests on hand-made tables, rather than inline in the
notebooks, so that a rule is read once, tested once, and applied the same way on every profile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from qdgs.recognition.experiment import compare, seed_resolution
from qdgs.results import Claim

# --- shapes (chapter 01) ---------------------------------------------------------------------


def debiasing_gains(table: pd.DataFrame, condition: str, baseline: str = "biased only") -> pd.Series:
    """Points of mean group accuracy that fine-tuning with ``condition`` adds over ``baseline``, per bias.

    Args:
        table: ``qdgs.shapes.summarise`` output: one row per (``bias``, ``condition``) with ``mean_acc``.
    """
    pivot = table.pivot(index="bias", columns="condition", values="mean_acc")
    return (pivot[condition] - pivot[baseline]) * 100


def debiasing_holds(table: pd.DataFrame) -> bool:
    """QDGS repairs the biased classifier when its best gain is positive and at least random samples' best.

    Extra random images are the control: a gain they match says extra data helped, not QDGS.
    """
    best, best_random = debiasing_gains(table, "+ QDGS").max(), debiasing_gains(table, "+ random VAE").max()
    return bool(best > 0 and best >= best_random)


def shapes_claim(table: pd.DataFrame, note: str) -> Claim:
    """The shapes chapter's claim: QDGS fine-tuning repairs the colour-biased classifier."""
    gain, gain_random = debiasing_gains(table, "+ QDGS"), debiasing_gains(table, "+ random VAE")
    return Claim("QDGS fine-tuning repairs the colour-biased shape classifier (balanced accuracy gain)",
                 "up to ≈27 points", f"up to {gain.max():.1f} points (random VAE: {gain_random.max():.1f})",
                 debiasing_holds(table), note)


#: Share of the gap between biased-only and balanced-real accuracy that QDGS must close at every bias.
GAP_GOAL = 0.6


def versus_random(runs: pd.DataFrame, metric: str = "mean", qdgs: str = "+ QDGS", random: str = "+ random VAE",
                  baseline: str = "biased only", real: str = "+ balanced real") -> pd.DataFrame:
    """Per bias: QDGS − random samples, paired over seeds, its standard error, and the share of the gap closed.

    The runs of one seed share the biased pretraining, so the difference is taken per seed and its
    standard error is that of the paired differences: the smallest difference the seeds resolve is
    two of them; ``ahead`` marks a bias where QDGS is resolved ahead. ``gap_closed`` is
    (QDGS − biased only) / (balanced real − biased only), from the means over seeds.

    Args:
        runs: one row per (``bias``, ``seed``, ``condition``) with ``metric`` (``qdgs.shapes.run_debiasing``).
    """
    wide = runs.pivot_table(index=["bias", "seed"], columns="condition", values=metric)
    diff = (wide[qdgs] - wide[random]).groupby("bias")
    means = wide.groupby("bias").mean()
    out = pd.DataFrame({"qdgs_minus_random": diff.mean(), "std_error": diff.std(ddof=1) / diff.count() ** 0.5,
                        "seeds": diff.count(),
                        "gap_closed": (means[qdgs] - means[baseline]) / (means[real] - means[baseline])})
    out["resolves"] = 2 * out.std_error
    out["resolved"] = out.qdgs_minus_random.abs() > out.resolves
    out["ahead"] = out.resolved & (out.qdgs_minus_random > 0)
    return out.sort_index(ascending=False)


def beats_random_holds(table: pd.DataFrame, gap_goal: float = GAP_GOAL) -> bool | None:
    """True when QDGS is resolved ahead of random samples and closes ``gap_goal`` of the gap at every bias.

    False when random samples are resolved ahead at some bias, or QDGS is resolved ahead everywhere
    but falls short of the gap goal somewhere; None when some difference is within the noise.

    Args:
        table: :func:`versus_random` output.
    """
    if (table.resolved & ~table.ahead).any():
        return False
    if not table.ahead.all():
        return None
    return bool((table.gap_closed >= gap_goal).all())


def beats_random_claim(table: pd.DataFrame, note: str, gap_goal: float = GAP_GOAL) -> Claim:
    """The shapes chapter's second claim: from a biased generator, QDGS beats its random samples."""
    ours = (f"ahead, resolved, at {int(table.ahead.sum())} of {len(table)} biases (QDGS − random "
            f"{table.qdgs_minus_random.min() * 100:+.1f} … {table.qdgs_minus_random.max() * 100:+.1f} points, "
            f"resolves ±{table.resolves.max() * 100:.1f}); gap closed "
            f"{table.gap_closed.min():.0%} … {table.gap_closed.max():.0%}")
    return Claim("From a biased generator, QDGS beats its random samples at every bias",
                 f"QDGS ahead at every bias; goal: each resolved and ≥ {gap_goal:.0%} of the gap to balanced real",
                 ours, beats_random_holds(table, gap_goal), note)


# --- faces (chapter 02) ----------------------------------------------------------------------


def evaluators_agree_on_rise(shares: Mapping[str, tuple[float, float]]) -> bool | None:
    """True when every evaluator sees the share rise from Rand to QD, False when none does, None otherwise.

    No evaluator of skin tone is a person's judgement; when ours disagree on the direction, the
    claim stays open rather than taking the one that agrees with the paper.

    Args:
        shares: evaluator name → (share in Rand, share in QD).
    """
    rises = {bool(qd > rand) for rand, qd in shares.values()}
    return rises.pop() if len(rises) == 1 else None


def faces_claim(shares: Mapping[str, tuple[float, float]], paper: tuple[float, float], note: str) -> Claim:
    """The faces chapter's claim: QDGS raises the share of faces recognised as dark-skinned.

    Args:
        shares: (Rand, QD) dark-skinned shares by reading: one evaluator, or one evaluator on one
            seed (:func:`qdgs.faces.replicates.seed_shares`); the claim holds when every reading rises.
        paper: the paper's (Rand, QD) shares.
        note: what differs from the paper's setting.
    """
    holds = evaluators_agree_on_rise(shares)
    ours = "; ".join(f"{rand:.1%} → {qd:.1%} ({name})" for name, (rand, qd) in shares.items())
    return Claim("QDGS raises the share of generated faces recognised as dark-skinned",
                 f"{paper[0]:.1%} → {paper[1]:.1%} (Rand → QD)", ours, holds,
                 note + ("" if holds is not None else "; our readings (evaluators, seeds) disagree on the direction" if shares else "; no evaluator to decide it"))


# --- recognition (chapter 03) ----------------------------------------------------------------


def best_resolved(averages: pd.Series, resolves: float) -> str | None:
    """The model with the highest average when it leads the next by more than ``resolves``, else None."""
    ranked = averages.sort_values(ascending=False)
    return str(ranked.index[0]) if ranked.iloc[0] - ranked.iloc[1] > resolves else None


def recognition_claims(learned: pd.DataFrame, benchmarks: Sequence[str], note: str,
                       dark: str = "lfw/dark") -> list[Claim]:
    """The recognition chapter's claims, each decided beyond the seed-to-seed noise.

    Args:
        learned: one row per (``model``, ``seed``, ``benchmark``) with ``accuracy``, for the trained
            models only (QD, Rand and, with a real stage, scratch).
        benchmarks: the benchmarks whose average is compared (the skin splits excluded).
        note: what differs from the paper's setting.
        dark: the benchmark of dark-skinned pairs.
    """
    resolution = seed_resolution(learned)
    on_dark = compare(learned, "QD", "Rand", dark, resolution)
    per_benchmark = learned[learned.benchmark.isin(benchmarks)].groupby(["model", "benchmark"]).accuracy.mean()
    average = per_benchmark.groupby("model").mean()
    avg_res = float(resolution.set_index("benchmark").resolves[list(benchmarks)].mean())
    best = best_resolved(average, avg_res)
    ranked = average.sort_values(ascending=False)
    return [
        Claim("QD pretraining beats Rand on dark-skinned faces", "QD15/QD50 > Rand15/Rand50",
              f"QD − Rand = {on_dark['difference']:+.3f} on LFW dark–dark pairs (resolves ±{on_dark['resolves']:.3f})",
              on_dark["a_better"], note),
        Claim("QDGS gives the highest average benchmark accuracy", "highest average over 5 benchmarks",
              f"best average: {ranked.index[0]} {ranked.iloc[0]:.3f} (next {ranked.iloc[1]:.3f}; resolves ±{avg_res:.3f})",
              None if best is None else best == "QD", f"{note}; benchmarks: {', '.join(benchmarks)}"),
    ]


__all__ = ["GAP_GOAL", "beats_random_claim", "beats_random_holds", "best_resolved", "debiasing_gains",
           "debiasing_holds", "evaluators_agree_on_rise", "faces_claim", "recognition_claims", "shapes_claim",
           "versus_random"]
