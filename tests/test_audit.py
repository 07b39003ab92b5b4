"""Audit: ITA with and without illumination normalisation, skin labels, the attribute classifier."""

import numpy as np
import pandas as pd
import pytest
import torch

from qdgs import audit, data, images


def _faces(colour, n=4, size=32, background=(0.9, 0.9, 0.9)):
    """(n, size, size, 3) images: a skin-coloured ellipse on a bright background."""
    img = np.tile(np.array(background, float), (n, size, size, 1))
    y, x = np.mgrid[0:size, 0:size]
    face = ((x - size / 2) / (0.3 * size)) ** 2 + ((y - 0.55 * size) / (0.38 * size)) ** 2 <= 1
    img[:, face] = colour
    return img


def test_ita_orders_skin_tones_and_normalisation_undoes_exposure():
    light, dark = _faces((0.85, 0.68, 0.58)), _faces((0.45, 0.30, 0.22))
    assert audit.ita(light, normalise=False).mean() > 30 > audit.ita(dark, normalise=False).mean()
    dim = light * 0.45  # the same face, under-exposed
    raw_drop = audit.ita(light, normalise=False).mean() - audit.ita(dim, normalise=False).mean()
    norm_drop = audit.ita(light).mean() - audit.ita(dim).mean()
    assert raw_drop > 25  # the lighting confound: a dim photo reads as darker skin
    assert abs(norm_drop) < 3  # white-patch normalisation removes global exposure
    t = torch.as_tensor(light).permute(0, 3, 1, 2).float()
    assert np.allclose(audit.ita(t), audit.ita(light), atol=0.5)


def test_skin_labels_need_race_and_ita_to_agree():
    race = np.array([1, 1, 0, 2, 0, 3])
    ita = np.array([5.0, 50.0, 50.0, 40.0, 0.0, 0.0])
    assert audit.skin_labels(race, ita).tolist() == [0, -1, 1, 1, -1, -1]


def test_relight_keeps_range_and_strength_zero_is_identity():
    x = torch.rand(8, 3, 16, 16)
    g = torch.Generator().manual_seed(0)
    y = images.relight(x, g)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1 and not torch.allclose(x, y)
    assert torch.allclose(images.relight(x, g, strength=0.0), x, atol=1e-6)


def test_classify_proportions_and_intersectional_counts():
    pred = pd.DataFrame({"p_dark": [0.9, 0.2, 0.7, 0.1], "p_female": [0.8, 0.3, 0.1, 0.6],
                         "p_under 40": [0.9, 0.2, 0.6, 0.7], "p_40 and over": [0.1, 0.8, 0.4, 0.3],
                         "ita_raw": [0, 0, 0, 0], "ita_norm": [-20.0, 50.0, 5.0, 40.0]})
    attrs = audit.classify(pred)
    props = audit.proportions(attrs)
    assert props["dark skin (classifier)"] == 0.5 and props["dark skin (ITA < 10°)"] == 0.5
    assert props["female"] == 0.5 and props["age under 40"] == 0.75
    counts = audit.intersectional_counts(attrs)
    assert counts.values.sum() == 4 and counts.loc[("dark", "female"), "under 40"] == 1
    assert counts.shape == (4, 2)


def test_attribute_net_trains_on_a_tiny_utkface(tmp_path, monkeypatch):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path))
    rng = np.random.default_rng(0)
    n = 300
    table = pd.DataFrame({"file": [f"UTKFace/{i}.jpg" for i in range(n)], "age": rng.integers(1, 90, n),
                          "gender": rng.integers(0, 2, n), "race": rng.integers(0, 5, n)})
    images = (rng.random((n, 32, 32, 3)) * 255).astype(np.uint8)
    monkeypatch.setattr(data, "load_utkface", lambda size=64, **kw: data.FaceArrays(images, table))
    net, held = audit.train_attribute_net(steps=3, batch_size=16, size=32, progress_bar=False)
    assert list(held["head"]) == ["skin (dark vs light)", "skin, randomly relit", "gender", "age group"]
    pred = audit.predict(net, torch.rand(5, 3, 64, 64))
    assert list(pred.columns) == ["p_dark", "p_female", "p_under 40", "p_40 and over", "ita_raw", "ita_norm"]
    assert np.allclose(pred[["p_under 40", "p_40 and over"]].sum(axis=1), 1, atol=1e-5)
    again, _ = audit.train_attribute_net(steps=3, batch_size=16, size=32, progress_bar=False)  # cached
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))
