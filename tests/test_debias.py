"""The debiasing metric, label rule, audit, classifier, synthetic sets and the experiment's cache keys."""

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from qdgs import shapes
from qdgs.datasets import ImageFolderDataset
from qdgs.generators.shapes_vae import ShapesVAE
from qdgs.shapes import debias

TINY = shapes.Protocol(size=16, n_biased=32, pretrain_epochs=1, finetune_epochs=1, n_test=16)


class MeanOracle(nn.Module):
    """A hand-made oracle: 'square' exactly when an image's mean is above one half."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(1, 2, 3)) - 0.5


def test_group_accuracies_on_hand_made_predictions():
    shape = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    colour = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    pred = np.array([0, 0, 0, 1, 1, 1, 1, 1])  # a colour-ish classifier: blue → square
    acc = shapes.group_accuracies(pred, shape, colour)
    assert acc["red triangle"] == 1.0 and acc["red square"] == 0.5
    assert acc["blue triangle"] == 0.0 and acc["blue square"] == 1.0
    assert acc["mean"] == pytest.approx(0.625) and acc["worst"] == 0.0


def test_group_accuracies_skip_absent_groups():
    acc = shapes.group_accuracies(np.array([0, 1]), np.array([0, 1]), np.array([0, 0]))
    assert np.isnan(acc["blue triangle"]) and acc["mean"] == 1.0


def test_label_by_measure_follows_the_paper_rule():
    m2 = np.array([-0.5, -0.011, -0.005, 0.0, 0.3])
    assert shapes.label_by_measure(m2).tolist() == [0, 0, -1, 1, 1]
    assert shapes.label_by_measure(m2 + 0.1, zero=0.1).tolist() == [0, 0, -1, 1, 1]


def test_calibrate_zero_finds_the_split():
    m2 = np.array([0.1, 0.2, 0.3, 0.5, 0.6, 0.7])
    shape = np.array([0, 0, 0, 1, 1, 1])
    assert shapes.calibrate_zero(m2, shape) == pytest.approx(0.4)


def test_pixel_colour_tells_red_blue_and_purple():
    s = shapes.render(np.array([0, 1]), np.array([0, 1]), seed=0, size=32)
    purple = torch.full((1, 3, 32, 32), 255, dtype=torch.uint8)
    purple[:, :, 8:24, 8:24] = torch.tensor([123, 82, 163], dtype=torch.uint8)[:, None, None]
    assert shapes.pixel_colour(torch.cat([s.images, purple])).tolist() == [0, 1, -1]


def test_label_agreement_with_the_oracle_on_hand_made_labels():
    dark, light = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)  # the oracle says triangle, square
    images = torch.cat([dark, dark, light, light, light])
    assert shapes.label_agreement(MeanOracle(), images, np.array([0, 1, 1, 1, 0])) == pytest.approx(3 / 5)
    assert shapes.label_agreement(MeanOracle(), (images * 255).to(torch.uint8), np.array([0, 0, 1, 1, 1])) == 1.0
    assert np.isnan(shapes.label_agreement(MeanOracle(), images[:0], np.array([], dtype=int)))
    with pytest.raises(ValueError, match="5 images but 2 labels"):
        shapes.label_agreement(MeanOracle(), images, np.array([0, 1]))


def test_agreement_is_withheld_with_the_reason_when_the_oracle_misjudges_renders():
    dark, light = torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 8, 8)
    sets = {"QDGS": (torch.cat([dark, light]), np.array([0, 1, 1, 1])), "random": (dark, np.array([0, 0]))}
    trusted, reason = shapes.trusted_agreements(MeanOracle(), 0.99, sets)
    assert trusted == {"QDGS": pytest.approx(3 / 4), "random": 1.0} and reason == ""
    withheld, reason = shapes.trusted_agreements(MeanOracle(), 0.535, sets)
    assert all(np.isnan(v) for v in withheld.values()) and set(withheld) == {"QDGS", "random"}
    assert "withheld" in reason and "0.535" in reason and "oracle_epochs" in reason


def test_association_of_an_audit_table():
    table = pd.DataFrame({"triangle": [90, 10, 50], "square": [30, 70, 0]}, index=["red", "blue", "neither"])
    a = shapes.association(table)
    assert a["P(red | triangle)"] == pytest.approx(0.9) and a["P(red | square)"] == pytest.approx(0.3)
    assert a["association"] == pytest.approx(0.6)


def test_audit_counts_pixel_colour_against_oracle_shape():
    s = shapes.render(np.array([0, 1, 1]), np.array([0, 1, 1]), seed=0, size=32)  # red, blue, blue
    table = shapes.audit(s.images, MeanOracle())  # mostly white images: the mean oracle says square
    assert table.loc["red", "square"] == 1 and table.loc["blue", "square"] == 2
    assert table.to_numpy().sum() == 3 and table.loc["neither"].sum() == 0


def test_classifier_learns_a_trivial_task():
    data = shapes.balanced_set(64, seed=0, size=16)
    model = shapes.ShapeClassifier(16)
    x, labels = data.floats(), data.colour  # colour is trivially learnable
    shapes.train_classifier(model, x, labels, epochs=15, generator=torch.Generator().manual_seed(0), batch_size=32)
    assert np.mean(shapes.predict(model, x) == labels) > 0.9


def test_classifier_is_the_papers_conv_relu_pool_network_in_value_and_gradient():
    """Pooling before the ReLU is a speed-up only: the paper's order with the same weights agrees."""
    from qdgs.benchmark import paper_order_classifier

    model = shapes.ShapeClassifier(16)
    papers = paper_order_classifier(model)  # the same layers, so the same weights
    x = torch.rand(8, 3, 16, 16) * 2 - 1  # negative inputs too, so some windows are all below zero
    ours = model(x)
    ours_grads = torch.autograd.grad(ours.sum(), list(model.parameters()))
    theirs = papers(x).squeeze(1)
    theirs_grads = torch.autograd.grad(theirs.sum(), list(model.parameters()))
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(ours_grads, theirs_grads))


def test_synthetic_set_drops_the_gap():
    vae = ShapesVAE(internal_size=16, output_size=16)
    images, labels, keep = shapes.synthetic_set(vae, np.zeros((3, 6)), np.array([-1.0, -0.005, 1.0]), 0.0, 0.01)
    assert images.shape == (2, 3, 16, 16) and labels.tolist() == [0, 1] and keep.tolist() == [True, False, True]


def _write(labels, name="qdgs"):
    n = len(labels)
    images = torch.linspace(0, 1, n * 3 * 8 * 8).reshape(n, 3, 8, 8)
    return shapes.write_synthetic(name, images, np.asarray(labels), np.zeros((n, 6)), np.zeros(n), np.zeros((n, 2)))


def test_synthetic_set_is_keyed_by_its_content_only(monkeypatch, tmp_path):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path))
    first = _write([0, 1, 1, 0])
    assert _write([0, 1, 1, 0]) == first  # nothing but the content decides the set (no run parameters)
    assert _write([0, 1, 1, 1]) != first
    assert ImageFolderDataset(first).labels.tolist() == [0, 1, 1, 0]


def test_run_debiasing_gives_every_condition_on_one_test_set():
    syn = shapes.balanced_set(16, seed=1, size=16)
    res = shapes.run_debiasing({"+ QDGS": (syn.floats(), syn.shape)}, [0.9, 0.8], [0, 1], TINY, progress_bar=False)
    assert len(res) == 2 * 2 * 3
    assert res.condition.tolist()[:3] == ["biased only", "+ QDGS", "+ balanced real"]
    assert res.groupby("condition").n_finetune.first().to_dict() == {"biased only": 0, "+ QDGS": 16, "+ balanced real": 16}
    assert res[list(shapes.GROUP_NAMES)].stack().between(0, 1).all()
    summary = shapes.summarise(res)
    assert len(summary) == 2 * 3 and (summary.seeds == 2).all()


def test_debiasing_is_cached_by_the_sets_content_not_their_location(monkeypatch, tmp_path):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path / "cache"))
    calls = []
    real = debias.run_debiasing
    monkeypatch.setattr(debias, "run_debiasing", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    qd_dir = _write([0, 1, 1, 0])
    moved = tmp_path / "elsewhere"
    shutil.copytree(qd_dir, moved)
    first = shapes.cached_debiasing({"+ QDGS": qd_dir}, [0.9], [0], TINY, progress_bar=False)
    again = shapes.cached_debiasing({"+ QDGS": moved}, [0.9], [0], TINY, progress_bar=False)
    assert len(calls) == 1 and first.equals(again)
    (moved / "metadata.csv").write_text((moved / "metadata.csv").read_text().replace(",1,", ",0,", 1))
    shapes.cached_debiasing({"+ QDGS": moved}, [0.9], [0], TINY, progress_bar=False)
    assert len(calls) == 2  # a changed label is a changed set
    images, labels = calls[0]["+ QDGS"]
    assert images.shape == (4, 3, 8, 8) and labels.tolist() == [0, 1, 1, 0]  # what is fine-tuned on is what was written


def test_the_random_set_draws_until_it_is_as_large_as_the_qdgs_set():
    from qdgs.scoring import PromptScoring
    from toys import ToyScorer

    class Prior(torch.nn.Module):  # a toy generator with the shapes VAE's interface
        latent_dim, output_size = 6, 8

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(6, 3 * 8 * 8, generator=torch.Generator().manual_seed(0)))

        def forward(self, z):
            return torch.sigmoid(z @ self.w).view(len(z), 3, 8, 8)

        def sample_latents(self, n, seed):
            return torch.randn(n, 6, generator=torch.Generator().manual_seed(seed))

    scoring = PromptScoring(Prior(), ToyScorer(), ("good", "bad"), [("a", "b"), ("c", "d")])
    z = Prior().sample_latents(40, seed=5).numpy()
    ev = scoring.evaluate(z)
    elites = {"solution": z, "objective": ev.objective, "measures": ev.measures}
    zero, gap = float(np.median(ev.measures[:, 1])), float(np.std(ev.measures[:, 1]))  # a wide band: many dropped
    sets = shapes.qdgs_and_random_sets(scoring, elites, zero, gap, seed=0, tag="-test")
    assert len(sets["random"].labels) == len(sets["qdgs"].labels) == (shapes.label_by_measure(ev.measures[:, 1], zero, gap) >= 0).sum()
    assert len(sets["qdgs"].labels) < 40 and len(sets["random"].latents) > len(sets["random"].labels)
    assert "Every elite" in (sets["qdgs"].path / "datasheet.md").read_text()
    subset = shapes.qdgs_and_random_sets(scoring, elites, zero, gap, seed=0, size=25, tag="-test-subset")
    assert len(subset["qdgs"].latents) == 25 and len(subset["random"].labels) == len(subset["qdgs"].labels)
    assert "A random 25 of the passive QDGS archive's 40 elites." in (subset["qdgs"].path / "datasheet.md").read_text()


class Redraw(nn.Module):
    """A hand-made generator whose reconstruction is ``redraw(images)``."""

    def __init__(self, redraw) -> None:
        super().__init__()
        self.redraw = redraw

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return self.redraw(images)


def test_transfer_ceiling_equals_the_renders_for_a_perfect_generator_and_falls_for_a_blank_one():
    blank_set = {"blank set": (torch.ones(8, 3, 16, 16), np.array([0, 1] * 4))}
    perfect = debias.transfer_ceiling(Redraw(lambda x: x), 32, [0, 1], TINY, image_size=16, sets=blank_set)
    assert perfect["learnt from"].tolist() == ["renders", "generator reconstructions", "blank set"] * 2
    assert (perfect.loc[perfect["learnt from"] == "blank set", "mean"] == 0.5).all()
    summary = shapes.summarise(perfect, by=["learnt from"]).set_index("learnt from")
    assert summary.seeds.tolist() == [2, 2, 2] and summary.loc["blank set", "mean_acc"] == 0.5
    by = perfect.set_index(["seed", "learnt from"])
    for seed in (0, 1):  # same images, initialisation and batches: the same classifier
        assert by.loc[(seed, "renders")].equals(by.loc[(seed, "generator reconstructions")])
    blank = debias.transfer_ceiling(Redraw(torch.ones_like), 32, [0], TINY, image_size=16)
    drawn = blank.set_index("learnt from").loc["generator reconstructions"]
    assert drawn["mean"] == pytest.approx(0.5)  # one constant answer on a balanced test set
    assert drawn["worst"] == 0.0
