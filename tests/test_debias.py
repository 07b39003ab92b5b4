"""The debiasing metric, label rule, colour audit and classifier."""

import numpy as np
import pytest
import torch

from qdgs import debias, shapes


def test_group_accuracies_on_hand_made_predictions():
    shape = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    colour = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    pred = np.array([0, 0, 0, 1, 1, 1, 1, 1])  # a colour-ish classifier: blue → square
    acc = debias.group_accuracies(pred, shape, colour)
    assert acc["red triangle"] == 1.0 and acc["red square"] == 0.5
    assert acc["blue triangle"] == 0.0 and acc["blue square"] == 1.0
    assert acc["mean"] == pytest.approx(0.625) and acc["worst"] == 0.0


def test_group_accuracies_skip_absent_groups():
    acc = debias.group_accuracies(np.array([0, 1]), np.array([0, 1]), np.array([0, 0]))
    assert np.isnan(acc["blue triangle"]) and acc["mean"] == 1.0


def test_label_by_measure_follows_the_paper_rule():
    m2 = np.array([-0.5, -0.011, -0.005, 0.0, 0.3])
    assert debias.label_by_measure(m2).tolist() == [0, 0, -1, 1, 1]
    assert debias.label_by_measure(m2 + 0.1, zero=0.1).tolist() == [0, 0, -1, 1, 1]


def test_calibrate_zero_finds_the_split():
    m2 = np.array([0.1, 0.2, 0.3, 0.5, 0.6, 0.7])
    shape = np.array([0, 0, 0, 1, 1, 1])
    assert debias.calibrate_zero(m2, shape) == pytest.approx(0.4)


def test_pixel_colour_tells_red_blue_and_purple():
    s = shapes.render(np.array([0, 1]), np.array([0, 1]), seed=0, size=32)
    purple = torch.full((1, 3, 32, 32), 255, dtype=torch.uint8)
    purple[:, :, 8:24, 8:24] = torch.tensor([123, 82, 163], dtype=torch.uint8)[:, None, None]
    assert debias.pixel_colour(torch.cat([s.images, purple])).tolist() == [0, 1, -1]


def test_classifier_learns_a_trivial_task_and_audit_counts():
    data = shapes.balanced_set(64, seed=0, size=16)
    model = debias.ShapeClassifier(16)
    x = data.floats()
    labels = data.colour  # colour is trivially learnable
    debias.train_classifier(model, x, labels, epochs=15, seed=0, batch_size=32)
    assert np.mean(debias.predict(model, x) == labels) > 0.9
    table = debias.audit(x, model)
    assert table.to_numpy().sum() == 64 and list(table.columns) == ["triangle", "square"]


def test_synthetic_set_drops_the_gap():
    from qdgs.generators.shapes_vae import ShapesVAE

    vae = ShapesVAE(internal_size=16, output_size=16)
    images, labels, keep = debias.synthetic_set(vae, np.zeros((3, 6)), np.array([-1.0, -0.005, 1.0]), 0.0, 0.01)
    assert images.shape == (2, 3, 16, 16) and labels.tolist() == [0, 1] and keep.tolist() == [True, False, True]


def test_run_debiasing_gives_every_condition(monkeypatch):
    syn = shapes.balanced_set(16, seed=1, size=16)
    res = debias.run_debiasing({"+ QDGS": (syn.floats(), syn.shape)}, [0.9], [0],
                               debias.Protocol(size=16, n_biased=32, pretrain_epochs=1, finetune_epochs=1, n_test=16),
                               progress_bar=False)
    assert res.condition.tolist() == ["biased only", "+ QDGS", "+ balanced real"]
    summary = debias.summarise(res)
    assert {"mean_acc", "worst_acc", "seeds"} <= set(summary.columns)


def test_debiasing_is_cached_by_its_inputs_and_same_seed_same_oracle(monkeypatch, tmp_path):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path))
    syn = shapes.balanced_set(16, seed=1, size=16)
    protocol = debias.Protocol(size=16, n_biased=32, pretrain_epochs=1, finetune_epochs=1, n_test=16)
    calls = []
    real = debias.run_debiasing
    monkeypatch.setattr(debias, "run_debiasing", lambda *a, **k: calls.append(1) or real(*a, **k))
    args = ({"+ QDGS": (syn.floats(), syn.shape)}, [0.9], [0], protocol)
    first = debias.cached_debiasing(*args, key={"qdgs": "set-a"}, progress_bar=False)
    again = debias.cached_debiasing(*args, key={"qdgs": "set-a"}, progress_bar=False)
    other = debias.cached_debiasing(*args, key={"qdgs": "set-b"}, progress_bar=False)
    assert len(calls) == 2 and first.equals(again) and len(other) == len(first)
    a, b = (debias.train_oracle(32, 16, 1, seed=3) for _ in range(2))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
