"""The verdict rules of the paper's claims, on hand-made tables: holds, fails, not resolved."""

import pandas as pd
import pytest

from qdgs.claims import (beats_random_claim, beats_random_holds, best_resolved, debiasing_holds,
                         evaluators_agree_on_rise, faces_claim, recognition_claims, shapes_claim, versus_random)


def _debiasing(qdgs: list[float], random: list[float], biased: list[float]) -> pd.DataFrame:
    rows = [{"bias": bias, "condition": condition, "mean_acc": acc}
            for condition, accs in (("+ QDGS", qdgs), ("+ random VAE", random), ("biased only", biased))
            for bias, acc in zip((0.98, 0.9), accs)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("qdgs, random, holds", [
    ([0.80, 0.75], [0.70, 0.72], True),  # a gain, larger than random samples'
    ([0.80, 0.75], [0.85, 0.72], False),  # random samples gain more: extra data, not QDGS
    ([0.58, 0.64], [0.55, 0.60], False),  # no gain at all
])
def test_shapes_claim_needs_a_gain_beyond_random_samples(qdgs, random, holds):
    table = _debiasing(qdgs, random, biased=[0.60, 0.65])
    assert debiasing_holds(table) is holds
    claim = shapes_claim(table, "smoke")
    assert claim.holds is holds and claim.note == "smoke"
    if holds:
        assert claim.ours == "up to 20.0 points (random VAE: 10.0)"


@pytest.mark.parametrize("shares, holds", [
    ({"classifier": (0.10, 0.25), "ITA": (0.05, 0.08)}, True),
    ({"classifier": (0.25, 0.10), "ITA": (0.08, 0.05)}, False),
    ({"classifier": (0.10, 0.25), "ITA": (0.08, 0.05)}, None),
    ({"classifier": (0.10, 0.10), "ITA": (0.05, 0.08)}, None),  # no rise by one evaluator: they disagree
])
def test_faces_claim_holds_only_when_every_evaluator_agrees(shares, holds):
    assert evaluators_agree_on_rise(shares) is holds
    claim = faces_claim(shares, (0.094, 0.252), "default")
    assert claim.holds is holds and claim.paper == "9.4% → 25.2% (Rand → QD)"
    assert claim.ours.startswith(f"{shares['classifier'][0]:.1%} → {shares['classifier'][1]:.1%} (classifier)")
    assert ("disagree" in claim.note) is (holds is None)


def _per_seed(means: dict[tuple[str, str], float], spread: float) -> pd.DataFrame:
    """Three seeds per model and benchmark, at mean ± spread."""
    return pd.DataFrame([{"model": m, "benchmark": b, "seed": s, "accuracy": mean + d}
                         for (m, b), mean in means.items() for s, d in enumerate((-spread, 0.0, spread))])


@pytest.mark.parametrize("qd_dark, qd_lfw, dark_holds, average_holds", [
    (0.70, 0.80, True, True),  # QD ahead by far more than the seeds' noise
    (0.60, 0.70, False, False),  # Rand ahead, resolved: the claims fail
    (0.652, 0.751, None, None),  # within the noise: not resolved
])
def test_recognition_claims_are_decided_beyond_the_seed_noise(qd_dark, qd_lfw, dark_holds, average_holds):
    learned = _per_seed({("QD", "lfw"): qd_lfw, ("Rand", "lfw"): 0.75, ("QD", "lfw/dark"): qd_dark,
                         ("Rand", "lfw/dark"): 0.65}, spread=0.01)
    dark, average = recognition_claims(learned, ["lfw"], "smoke")
    assert dark.holds is dark_holds and average.holds is average_holds
    assert dark.ours.startswith(f"QD − Rand = {qd_dark - 0.65:+.3f}")
    assert average.note == "smoke; benchmarks: lfw"


def test_best_resolved_names_a_leader_only_beyond_the_resolution():
    averages = pd.Series({"QD": 0.71, "Rand": 0.70, "scratch": 0.60})
    assert best_resolved(averages, 0.005) == "QD"
    assert best_resolved(averages, 0.02) is None


def _runs(qdgs: dict[float, list[float]], random: dict[float, list[float]], biased: float = 0.6,
          real: float = 0.9) -> pd.DataFrame:
    """Hand-made per-seed runs: for each bias, one accuracy per seed and condition."""
    rows = []
    for bias in qdgs:
        for seed, (q, r) in enumerate(zip(qdgs[bias], random[bias])):
            rows += [{"bias": bias, "seed": seed, "condition": c, "mean": v}
                     for c, v in (("biased only", biased), ("+ QDGS", q), ("+ random VAE", r), ("+ balanced real", real))]
    return pd.DataFrame(rows)


def test_versus_random_pairs_seeds_and_measures_the_gap():
    table = versus_random(_runs({0.9: [0.80, 0.82, 0.84]}, {0.9: [0.70, 0.71, 0.75]}))
    row = table.loc[0.9]
    diffs = [0.10, 0.11, 0.09]
    assert row.qdgs_minus_random == pytest.approx(0.10)
    assert row.std_error == pytest.approx(pd.Series(diffs).std() / 3 ** 0.5)
    assert row.gap_closed == pytest.approx((0.82 - 0.6) / (0.9 - 0.6))
    assert row.resolved and row.seeds == 3


@pytest.mark.parametrize("qdgs, random, holds", [
    ({0.9: [0.85, 0.86, 0.87], 0.8: [0.86, 0.88, 0.87]}, {0.9: [0.70, 0.71, 0.72], 0.8: [0.80, 0.80, 0.81]}, True),
    ({0.9: [0.85, 0.86, 0.87], 0.8: [0.70, 0.71, 0.72]}, {0.9: [0.70, 0.71, 0.72], 0.8: [0.80, 0.80, 0.81]}, False),
    ({0.9: [0.85, 0.70, 0.87], 0.8: [0.86, 0.88, 0.87]}, {0.9: [0.70, 0.80, 0.72], 0.8: [0.80, 0.80, 0.81]}, None),
    ({0.9: [0.70, 0.71, 0.72], 0.8: [0.71, 0.72, 0.73]}, {0.9: [0.65, 0.66, 0.67], 0.8: [0.66, 0.67, 0.68]}, False),
])
def test_beats_random_needs_every_bias_resolved_and_the_gap_closed(qdgs, random, holds):
    """Rows: ahead and ≥ 60 % closed everywhere; behind at one bias; within the noise; ahead but < 60 %."""
    table = versus_random(_runs(qdgs, random))
    assert beats_random_holds(table) is holds
    assert beats_random_claim(table, "default").holds is holds
