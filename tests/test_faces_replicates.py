"""The dark-skinned share over search seeds, and the claim it resolves."""

import numpy as np
import pandas as pd
import pytest
from qdgs.claims import faces_claim
from qdgs.faces.audit import AttributeNet
from qdgs.faces.replicates import dark_shares, seed_shares, share_factor
from qdgs.scoring import PromptScoring
from qdgs.search import SearchConfig
from qdgs.seeds import seeded_init
from toys import ToyGenerator, ToyScorer

CONFIG = SearchConfig(iterations=6, archive_dims=(6, 6), measure_ranges=((-0.4, 0.1), (0.0, 0.4)),
                      init_batches=2, init_batch_size=8, checkpoint_every=6)


def test_dark_shares_audits_each_seeds_elites_beside_random_faces(tmp_path, monkeypatch):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path))
    gen, scorer = ToyGenerator(), ToyScorer()
    with seeded_init(0, "test", "net"):
        net = AttributeNet().eval()
    table = dark_shares(lambda: PromptScoring(gen, scorer, ("good", "bad"), [("a", "b"), ("c", "d")]),
                        CONFIG, net, seeds=[0, 1], progress_bar=False, random_faces=40)
    assert list(zip(table.seed, table.set)) == [(0, "QD"), (0, "Rand"), (1, "QD"), (1, "Rand")]
    qd_n, rand_n = table.n.values[0::2], table.n.values[1::2]
    assert (0 < qd_n).all() and (qd_n < 40).all() and (rand_n == 40).all()  # Rand: random_faces, at least the elites
    few = dark_shares(lambda: PromptScoring(gen, scorer, ("good", "bad"), [("a", "b"), ("c", "d")]),
                      CONFIG, net, seeds=[0], progress_bar=False, random_faces=1)
    assert few.n.values[1] == few.n.values[0]
    assert ((table["audit classifier"] >= 0) & (table["audit classifier"] <= 1)).all()


def test_the_claim_holds_only_when_every_validated_evaluator_rises_on_every_seed():
    table = pd.DataFrame({"seed": [0, 0, 1, 1, 2, 2], "set": ["QD", "Rand"] * 3,
                          "audit classifier": [0.3, 0.1, 0.25, 0.1, 0.2, 0.12], "ITA": [0.1, 0.2, 0.3, 0.1, 0.3, 0.1],
                          "n": 10})
    shares = seed_shares(table, ["audit classifier"])
    assert shares == {"audit classifier, seed 0": (0.1, 0.3), "audit classifier, seed 1": (0.1, 0.25),
                      "audit classifier, seed 2": (0.12, 0.2)}
    assert faces_claim(shares, (0.094, 0.252), "test").holds is True
    assert faces_claim(seed_shares(table, ["audit classifier", "ITA"]), (0.094, 0.252), "test").holds is None
    falls = table.assign(**{"audit classifier": np.where(table.set == "QD", 0.05, 0.1)})
    assert faces_claim(seed_shares(falls, ["audit classifier"]), (0.094, 0.252), "test").holds is False
    with pytest.raises(KeyError):
        seed_shares(table, ["unknown evaluator"])


def test_share_factor_pairs_the_margin_by_seed_and_resolves_only_beyond_two_standard_errors():
    def table(qd, rand):
        return pd.DataFrame({"seed": np.repeat(range(len(qd)), 2), "set": ["QD", "Rand"] * len(qd),
                             "audit classifier": np.ravel(list(zip(qd, rand)))})

    wide = share_factor(table([0.30, 0.32, 0.28], [0.10, 0.10, 0.10]), "audit classifier", factor=2.5)
    assert wide["per_seed"] == [3.0, 3.2, 2.8] and wide["of_means"] == pytest.approx(3.0)
    assert wide["margin"] == pytest.approx(0.05) and wide["std_error"] == pytest.approx(0.02 / np.sqrt(3))
    assert wide["resolved"] is True and wide["seeds"] == 3
    # this chapter's shape of result: 3x on the means, one seed below 2.5x, the margin within the noise
    mixed = share_factor(table([0.352, 0.294, 0.243], [0.125, 0.067, 0.105]), "audit classifier", factor=2.5)
    assert mixed["of_means"] > 2.5 and min(mixed["per_seed"]) < 2.5 and mixed["resolved"] is None
    below = share_factor(table([0.15, 0.16, 0.14], [0.10, 0.10, 0.10]), "audit classifier", factor=2.5)
    assert below["resolved"] is False
    assert share_factor(table([0.3], [0.1]), "audit classifier")["resolved"] is None  # one seed: no error bar
