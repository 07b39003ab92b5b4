"""Audit: ITA with and without illumination normalisation, skin labels, the attribute classifier."""

import numpy as np
import pandas as pd
import torch
from fake_utkface import fake_faces, use_fake_utkface
from qdgs import faces
from qdgs.faces import audit


def _faces(colour, n=4, size=32, background=(0.9, 0.9, 0.9)):
    """(n, size, size, 3) images: a skin-coloured ellipse on a bright background."""
    img = np.tile(np.array(background, float), (n, size, size, 1))
    y, x = np.mgrid[0:size, 0:size]
    face = ((x - size / 2) / (0.3 * size)) ** 2 + ((y - 0.55 * size) / (0.38 * size)) ** 2 <= 1
    img[:, face] = colour
    return img


def test_ita_orders_skin_tones_and_normalisation_undoes_exposure():
    light, dark = _faces((0.85, 0.68, 0.58)), _faces((0.45, 0.30, 0.22))
    assert faces.ita(light, normalise=False).mean() > 30 > faces.ita(dark, normalise=False).mean()
    dim = light * 0.45  # the same face, under-exposed
    raw_drop = faces.ita(light, normalise=False).mean() - faces.ita(dim, normalise=False).mean()
    norm_drop = faces.ita(light).mean() - faces.ita(dim).mean()
    assert raw_drop > 25  # the lighting confound: a dim photo reads as darker skin
    assert abs(norm_drop) < 3  # white-patch normalisation removes global exposure
    t = torch.as_tensor(light).permute(0, 3, 1, 2).float()
    assert np.allclose(faces.ita(t), faces.ita(light), atol=0.5)


def test_a_face_without_skin_pixels_gets_no_ita_and_is_counted():
    blue = _faces((0.2, 0.3, 0.9), n=2)  # no pixel passes the skin rule
    images = np.concatenate([blue, _faces((0.85, 0.68, 0.58), n=2)])
    mask, enough = faces.skin_mask(images)
    assert enough.tolist() == [False, False, True, True] and not mask[:2].any()
    values = faces.ita(images)
    assert np.isnan(values[:2]).all() and np.isfinite(values[2:]).all()
    pred = pd.DataFrame({"p_dark": [0.9] * 4, "p_female": [0.5] * 4, "p_under 40": [0.9] * 4,
                         "p_40 and over": [0.1] * 4, "ita_raw": values, "ita_norm": values})
    props = audit.proportions(audit.classify(pred))
    assert props["no ITA (too few skin pixels)"] == 0.5
    assert props[audit.ITA_DARK_ROW] == 0.0  # of the two faces that have an ITA
    assert faces.skin_labels(np.array([1, 0]), values[:2]).tolist() == [-1, -1]  # no ITA, no label


def test_skin_labels_need_race_and_ita_to_agree():
    race = np.array([1, 1, 0, 2, 0, 3])
    ita = np.array([5.0, 50.0, 50.0, 40.0, 0.0, 0.0])
    assert faces.skin_labels(race, ita).tolist() == [0, -1, 1, 1, -1, -1]


def test_classify_proportions_and_intersectional_counts():
    pred = pd.DataFrame({"p_dark": [0.9, 0.2, 0.7, 0.1], "p_female": [0.8, 0.3, 0.1, 0.6],
                         "p_under 40": [0.9, 0.2, 0.6, 0.7], "p_40 and over": [0.1, 0.8, 0.4, 0.3],
                         "ita_raw": [0, 0, 0, 0], "ita_norm": [-20.0, 50.0, 5.0, 40.0]})
    attrs = audit.classify(pred)
    props = audit.proportions(attrs)
    assert props["dark skin (classifier)"] == 0.5 and props[audit.ITA_DARK_ROW] == 0.5
    assert props["female"] == 0.5 and props["age under 40"] == 0.75 and props["no ITA (too few skin pixels)"] == 0
    counts = audit.intersectional_counts(attrs)
    assert counts.values.sum() == 4 and counts.loc[("dark", "female"), "under 40"] == 1
    assert counts.shape == (4, 2)


def test_attribute_net_trains_on_a_tiny_utkface(tmp_path, monkeypatch):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path))
    use_fake_utkface(monkeypatch, tmp_path, fake_faces(n=300, size=32))
    net, held = audit.train_attribute_net(steps=3, batch_size=16, size=32, progress_bar=False)
    assert list(held["head"]) == ["skin (dark vs light)", "skin, randomly relit", "gender", "age group"]
    pred = audit.predict(net, torch.rand(5, 3, 64, 64))
    assert list(pred.columns) == ["p_dark", "p_female", "p_under 40", "p_40 and over", "ita_raw", "ita_norm"]
    assert np.allclose(pred[["p_under 40", "p_40 and over"]].sum(axis=1), 1, atol=1e-5)
    again, _ = audit.train_attribute_net(steps=3, batch_size=16, size=32, progress_bar=False)  # cached
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))


def test_attribute_net_neither_reads_nor_changes_the_global_rng(tmp_path, monkeypatch):
    fake = fake_faces(n=200, size=32)
    weights = []
    for run, noise in enumerate((1, 2)):
        monkeypatch.setenv("QDGS_CACHE", str(tmp_path / f"cache{run}"))  # a cold build each time
        use_fake_utkface(monkeypatch, tmp_path, fake)
        torch.manual_seed(noise)
        torch.rand(noise * 7)
        before = torch.random.get_rng_state()
        net, _ = audit.train_attribute_net(steps=2, batch_size=8, size=32, progress_bar=False)
        assert torch.equal(torch.random.get_rng_state(), before)
        weights.append(net.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_attribute_net_is_retrained_when_the_utkface_content_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path / "cache"))
    fake = fake_faces(n=200, size=32)
    for manifest in ("v1", "v2"):
        use_fake_utkface(monkeypatch, tmp_path, fake, manifest=manifest)
        audit.train_attribute_net(steps=1, batch_size=8, size=32, progress_bar=False)
    assert len(list((tmp_path / "cache" / "audit-attribute-net").iterdir())) == 2
