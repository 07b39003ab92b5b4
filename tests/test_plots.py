"""The claims chart draws what a chapter recorded, on hand-made recorded tables."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from qdgs import plots
from qdgs.results import Claim

matplotlib.use("Agg")


def _meta(holds, paper="up to ≈27 points"):
    return {"profile": "smoke", "backends": {"generator": "g", "scorer": "s"},
            "claims": [Claim("c", paper, "o", holds), Claim("c2", "p2", "o2", None)]}


def test_shapes_chart_draws_gains_bands_and_the_paper_line():
    table = pd.DataFrame([{"bias": b, "condition": c, "mean_acc": a, "mean_std": 0.02}
                          for b in (0.98, 0.9) for c, a in (("biased only", 0.5), ("+ QDGS", 0.6),
                                                            ("+ random VAE", 0.55))])
    fig, ax = plt.subplots()
    plots.claim_chart("shapes", table, _meta(False), ax=ax)
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    np.testing.assert_allclose(lines["ours: + QDGS"].get_ydata(), [10, 10])
    np.testing.assert_allclose(lines["ours: + random VAE"].get_ydata(), [5, 5])
    assert lines["paper: up to ≈27 points"].get_ydata()[0] == 27
    assert len(ax.collections) == 2  # one seed band per fine-tuning condition
    assert ax.get_title(loc="left").startswith("does not hold · smoke profile")
    plt.close(fig)


def test_faces_chart_draws_paper_and_each_evaluator():
    table = pd.DataFrame([
        {"quantity": "dark-skinned share (audit classifier)", "Rand": 0.4, "QD": 0.5, "paper Rand": 0.094, "paper QD": 0.252},
        {"quantity": "dark-skinned share (ITA < 10°, normalised)", "Rand": 0.6, "QD": 0.4},
        {"quantity": "archive coverage", "Rand": 0.2, "QD": 0.3},
    ])
    fig, ax = plt.subplots()
    plots.claim_chart("faces", table, _meta(None, "9.4% → 25.2%"), ax=ax)
    ys = {ln.get_label(): list(ln.get_ydata()) for ln in ax.get_lines()}
    assert ys["paper"] == pytest.approx([9.4, 25.2])
    assert ys["ours audit classifier"] == pytest.approx([40, 50])
    assert len(ys) == 3 and not ax.collections  # no band: one search, none recorded
    assert ax.get_title(loc="left").startswith("not resolved")
    plt.close(fig)


def test_recognition_charts_draw_seed_means_with_error_bars():
    table = pd.DataFrame([{"model": m, "benchmark": b, "mean": acc, "std": 0.01, "count": 3}
                          for m, acc in (("QD", 0.70), ("Rand", 0.71), ("pixels", 0.6))
                          for b in ("lfw", "lfw/dark", "lfw/light")])
    for claim, n_bars in ((0, 2), (1, 2)):
        fig, ax = plt.subplots()
        plots.claim_chart("recognition", table, _meta(None), claim=claim, ax=ax)
        heights = [p.get_height() for p in ax.patches]
        assert heights == pytest.approx([0.70, 0.71][:n_bars])  # the trained models only, one benchmark each
        assert [t.get_text() for t in ax.get_xticklabels()] == (["lfw/dark"] if claim == 0 else ["lfw"])
        assert ax.get_xlabel() == ("o" if claim == 0 else "o2")  # the recorded difference and resolution
        plt.close(fig)


def test_claim_chart_names_the_charts_it_has():
    with pytest.raises(ValueError, match="shapes, faces, recognition"):
        plots.claim_chart("tour", pd.DataFrame(), {})
