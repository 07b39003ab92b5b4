"""The one dark-skin definition, the evaluators' validation (race accuracy, Cohen's κ) and the skewed UTKFace sample."""

import importlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from qdgs.faces import audit
from qdgs.faces.skew import sample_ratios, skewed_sample
from qdgs.recognition import verification

ita = importlib.import_module("qdgs.faces.ita")  # the module: qdgs.faces.ita is also the function's name
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _code(stem: str) -> str:
    cells = json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def test_kappa_on_hand_made_labels():
    # 3 of 4 agree; each rater's base rate gives chance agreement 0.5·0.25 + 0.5·0.75 = 0.5
    assert audit.cohen_kappa([True, True, False, False], [True, False, False, False]) == pytest.approx(0.5)
    assert audit.cohen_kappa([True, False, True], [True, False, True]) == pytest.approx(1.0)
    assert audit.cohen_kappa([True, False], [False, True]) == pytest.approx(-1.0)
    # NA pairs are dropped: the same as the first case
    a = pd.array([True, True, None, False, False], dtype="boolean")
    b = pd.array([True, False, True, False, False], dtype="boolean")
    assert audit.cohen_kappa(a, b) == pytest.approx(0.5)
    assert np.isnan(audit.cohen_kappa([True, True], [True, True]))  # one answer throughout: undefined


def test_kappa_matches_the_textbook_table():
    # 2 × 2 table (yes/yes 20, yes/no 5, no/yes 10, no/no 15): p_o 0.7, p_e 0.5 → κ 0.4
    a = [True] * 25 + [False] * 25
    b = [True] * 20 + [False] * 5 + [True] * 10 + [False] * 15
    assert audit.cohen_kappa(a, b) == pytest.approx(0.4)


def test_race_accuracy_scores_each_evaluator_on_held_out_race_labels(monkeypatch):
    from qdgs.data import FaceArrays

    race = np.array([1, 1, 1, 1, 0, 0, 2, 2, 3, 4])
    table = pd.DataFrame({"race": race, "age": 30, "gender": 0})
    monkeypatch.setattr(audit.data, "load_utkface", lambda size=64: FaceArrays(np.zeros((10, 8, 8, 3), np.uint8), table))
    monkeypatch.setattr(audit, "utkface_split", lambda n, seed: (np.array([], int), np.arange(n)))
    # classifier: 3 of 4 Black faces dark, 1 of 4 light faces dark; ITA: one Black face unmeasured
    p_dark = [0.9, 0.9, 0.9, 0.1, 0.9, 0.1, 0.1, 0.1]
    ita_norm = [0.0, 0.0, np.nan, 50.0, 50.0, 50.0, 50.0, 50.0]

    def predict(net, images):
        assert len(images) == 8  # Indian and Others left out
        return pd.DataFrame({"p_dark": p_dark, "p_female": 0.5, "p_under 40": 1.0, "p_40 and over": 0.0,
                             "ita_raw": ita_norm, "ita_norm": ita_norm})

    monkeypatch.setattr(audit, "predict", predict)
    acc = audit.race_accuracy(None).set_index("evaluator")
    assert acc.loc["audit classifier", "accuracy"] == pytest.approx(6 / 8)
    assert acc.loc["audit classifier", "balanced accuracy"] == pytest.approx(0.75)
    assert acc.loc["ITA", "n"] == 7 and acc.loc["ITA", "measured"] == pytest.approx(7 / 8)
    assert acc.loc["ITA", "dark recall"] == pytest.approx(2 / 3) and acc.loc["ITA", "light recall"] == 1.0
    assert audit.validated(acc.reset_index(), minimum=0.8) == ["ITA"]


def test_one_dark_skin_definition_in_both_chapters():
    values = np.array([-10.0, ita.DARK_ITA - 0.5, ita.DARK_ITA + 0.5, ita.LIGHT_ITA + 1, np.nan])
    pred = pd.DataFrame({"p_dark": 0.5, "p_female": 0.5, "p_under 40": 1.0, "p_40 and over": 0.0,
                         "ita_raw": values, "ita_norm": values})
    chapter_02 = audit.classify(pred).dark_ita
    assert chapter_02.tolist()[:4] == [True, True, False, False] and chapter_02.isna().tolist()[4]
    assert ita.skin_tone(values).tolist() == [0, 0, -1, 1, -1]
    # chapter 03's labels are skin_tone of the same normalised ITA
    rng = np.random.default_rng(0)
    images = torch.as_tensor(rng.integers(60, 250, (6, 3, 32, 32)), dtype=torch.uint8)
    assert (verification.ita_skin_labels(images) == ita.skin_tone(ita.ita(images.float() / 255))).all()
    # and the chapters take the definition from there, never a threshold of their own
    assert "audit.ITA_DARK_ROW" in _code("02_face_synthesis") and "ita_skin_labels(" in _code("03_face_recognition")
    for stem in ("02_face_synthesis", "03_face_recognition"):
        assert not re.search(r"ITA\s*[<>]\s*\d", _code(stem)), stem


def _table(counts: dict[tuple[int, int], int]) -> pd.DataFrame:
    """A UTKFace label table with ``counts[(race, age)]`` rows each."""
    rows = [(race, age) for (race, age), n in counts.items() for _ in range(n)]
    return pd.DataFrame(rows, columns=["race", "age"])


def test_skewed_sample_has_the_requested_ratios_and_is_as_large_as_allowed():
    table = _table({(0, 25): 4000, (0, 60): 1500, (2, 30): 1000, (1, 20): 900, (1, 50): 300, (3, 30): 500})
    candidates = np.arange(len(table))
    rows = skewed_sample(table, candidates, seed=0, light_dark=7.0, young_old=2.0)
    got = sample_ratios(table, rows)
    assert got["light_dark"] == pytest.approx(7.0, rel=0.02) and got["young_old"] == pytest.approx(2.0, rel=0.02)
    assert not np.isin(table.race.values[rows], (3, 4)).any()  # Indian and Others left out
    assert len(np.unique(rows)) == len(rows)
    # the scarcest stratum relative to its share (old light faces: 1,500 for 7/8 · 1/3 of the sample)
    # is used whole, so the sample is as large as the ratios allow
    old_light = (table.race.values[rows] == 0) & (table.age.values[rows] >= 40)
    assert old_light.sum() == 1500 and len(rows) == pytest.approx(1500 / (7 / 8 / 3), abs=2)
    again = skewed_sample(table, candidates, seed=0)
    assert np.array_equal(rows, again) and not np.array_equal(rows, skewed_sample(table, candidates, seed=1))


def test_skewed_sample_draws_only_from_the_given_rows_and_checks_ratios():
    table = _table({(0, 25): 800, (0, 60): 400, (1, 20): 200, (1, 50): 100})
    train = np.arange(0, len(table), 2)
    rows = skewed_sample(table, train, seed=0, light_dark=3.0, young_old=1.0)
    assert np.isin(rows, train).all()
    assert sample_ratios(table, rows)["light_dark"] == pytest.approx(3.0, rel=0.05)
    with pytest.raises(ValueError, match="ratios must be positive"):
        skewed_sample(table, train, seed=0, light_dark=0.0)


def test_contact_sheet_orders_faces_and_frames_the_dark_ones():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from qdgs import plots

    grey = np.linspace(20, 230, 6).astype(np.uint8)  # face k has grey level grey[k]
    images = np.broadcast_to(grey[::-1, None, None, None], (6, 8, 8, 3)).copy()  # brightest first
    values = np.array([5.0, 4.0, np.nan, 2.0, 1.0, 0.0])  # ordered darkest-last, one unmeasured
    dark = values < 2.5
    fig, ax = plt.subplots()
    plots.contact_sheet(images, values, dark, nrow=5, rows=1, ax=ax)
    canvas = ax.get_images()[0].get_array()
    tiles = [canvas[2:10, 2 + k * 10: 10 + k * 10] for k in range(5)]
    centres = [float(t[4, 4, 0]) for t in tiles]
    assert centres == sorted(centres)  # darkest value first: the last images (darkest grey) lead
    red = [bool(np.allclose(t[0, 4], (0.85, 0.1, 0.1))) for t in tiles]
    assert red == [True, True, True, False, False]  # values 0, 1, 2 are called dark
    plt.close(fig)


def test_skew_ratios_of_hand_made_attributes():
    attrs = pd.DataFrame({"dark_clf": [True, False, False, False, False],
                          "dark_ita": pd.array([True, True, False, None, False], dtype="boolean"),
                          "gender": "male", "age": ["under 40"] * 4 + ["40 and over"]})
    r = audit.skew_ratios(attrs)
    assert r["light : dark (audit classifier)"] == pytest.approx(4.0)
    assert r["light : dark (ITA)"] == pytest.approx(1.0)  # 2 of the 4 faces with an ITA
    assert r["under 40 : 40 and over (audit classifier)"] == pytest.approx(4.0)
    assert audit.skew_ratios(attrs.assign(dark_clf=False))["light : dark (audit classifier)"] == np.inf


def test_latent_norm_penalty_of_a_bounded_generator_is_on_the_decoded_latent():
    from qdgs import faces
    from qdgs.scoring import BoundedLatent
    from toys import ToyGenerator

    gen = BoundedLatent(ToyGenerator(), bound=3.0)
    penalty, _ = faces.regularizers(gen)
    assert penalty.bound == 3.0 and "bound=3.0" in repr(penalty)
    far = torch.full((1, gen.latent_dim), 3.0 + 12 * 1000)  # folds back to the box's corner, norm 3·√D
    corner = 3.0 * gen.latent_dim ** 0.5
    expected = 0.5 * (max(corner, penalty.q) - penalty.q) ** 2
    assert float(penalty(far, torch.zeros(1, 4))) == pytest.approx(expected, rel=1e-5)
    unbounded = faces.LatentNormPenalty(penalty.q)
    assert float(unbounded(far, torch.zeros(1, 4))) > 1e3 * expected  # the unbounded penalty explodes
