"""Faces domain: regularisers, captions, the offline scorer, calibration, binning, identities and the writer."""

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from fake_utkface import fake_faces, use_fake_utkface
from qdgs import faces, plots
from qdgs.faces import dataset
from qdgs.faces import scorer as face_scorer
from qdgs.params import ParameterError
from qdgs.scoring import PromptScoring
from qdgs.search import SearchConfig, search_key
from toys import ToyGenerator, ToyScorer

matplotlib.use("Agg")


def test_latent_norm_penalty_is_zero_inside_and_quadratic_outside():
    reg = faces.LatentNormPenalty(q=2.0)
    z = torch.tensor([[1.0, 0.0], [0.0, 3.0], [4.0, 0.0]])
    assert torch.allclose(reg(z, torch.zeros(3, 4)), torch.tensor([0.0, 0.5, 2.0]))


def test_uniqueness_memory_rewards_novelty_and_is_fifo():
    reg = faces.UniquenessMemory(size=3)
    e = torch.nn.functional.normalize(torch.randn(5, 8), dim=1)
    assert torch.equal(reg(None, e), torch.zeros(5))  # empty memory: no penalty
    reg.update(e[:1])
    values = reg(None, e[:2])
    assert values[0] == pytest.approx(0.2)  # an image equal to a memory entry: uniqueness 0
    assert values[1] < values[0]  # a different image is more unique
    reg.update(e[1:5])
    assert len(reg.memory) == 3 and torch.equal(reg.memory, e[2:5])


def test_regularizers_enter_the_objective_and_the_search_hook():
    gen, scorer = ToyGenerator(), ToyScorer()
    regs = faces.regularizers(gen)
    fresh = gen.sample_latents(2000, seed=123)
    assert 0.4 < float((regs[0](fresh, None) == 0).float().mean()) < 0.6  # q is the typical (median) norm
    plain = PromptScoring(gen, scorer, faces.OBJECTIVE_PROMPTS, faces.MEASURE_PROMPTS)
    reg = PromptScoring(gen, scorer, faces.OBJECTIVE_PROMPTS, faces.MEASURE_PROMPTS, regularizers=regs)
    far = np.full((2, 6), 3.0)  # norm 7.3, well outside the typical shell
    assert (reg.evaluate(far).objective < plain.evaluate(far).objective).all()
    ev = reg.evaluate(far, jacobian=True)
    assert ev.jacobian.shape == (2, 5, 6) and ev.measures.shape == (2, 4)


def test_search_key_of_the_faces_regularizers_is_stable_and_names_their_settings():
    gen, scorer = ToyGenerator(), ToyScorer()
    config = SearchConfig(iterations=2, archive_dims=(2, 2, 2, 2), measure_ranges=((-1, 1),) * 4)

    def key(regs):
        return search_key(PromptScoring(gen, scorer, faces.OBJECTIVE_PROMPTS, faces.MEASURE_PROMPTS,
                                        regularizers=regs), config)

    # two runs of the same chapter build new regularizer objects: the checkpoint must be found again
    assert key(faces.regularizers(gen)) == key(faces.regularizers(gen))
    assert key([faces.LatentNormPenalty(2.0), faces.UniquenessMemory()]) != key(
        [faces.LatentNormPenalty(3.0), faces.UniquenessMemory()])


def test_vocabulary_holds_the_paper_prompts_except_hair():
    texts = [c.text for c in faces.vocabulary()]
    assert len(texts) == len(set(texts))
    for prompt in faces.OBJECTIVE_PROMPTS + faces.MEASURE_PROMPTS[0] + faces.MEASURE_PROMPTS[1] + faces.MEASURE_PROMPTS[3]:
        assert prompt in texts
    assert not any("hair" in t for t in texts)


def test_positives_follow_labels_and_surviving_attributes():
    caps = faces.vocabulary()
    texts = [c.text for c in caps]
    row = pd.Series({"age": 25, "gender": 0, "race": 1})
    clean = faces.image_attributes(row, 0, None)
    noisy = faces.image_attributes(row, 0, "noise")
    recoloured = faces.image_attributes(row, 0, "recolour")
    pos = faces.positives(caps, [clean, noisy, recoloured])
    col = {t: pos[:, i] for i, t in enumerate(texts)}
    assert col["A person with dark skin."].tolist() == [True, True, False]
    assert col["A masculine person with dark skin."].tolist() == [True, True, False]
    assert col["A person in their 20s."].tolist() == [True, True, False]
    assert not col["A feminine person."].any() and not col["A person with light skin."].any()
    assert col[faces.OBJECTIVE_PROMPTS[0]].tolist() == [True, False, False]
    assert col[faces.OBJECTIVE_PROMPTS[1]].tolist() == [False, True, True]
    assert col["A discolored photo of a person."].tolist() == [False, False, True]


def test_sampler_batches_have_degraded_share_and_balanced_skin():
    fa = fake_faces()
    skin = np.array([0] * 5 + [1] * 20 + [-1] * 15)
    sampler = faces.FaceCaptionSampler(fa, np.arange(40), skin, degrade_fraction=0.25)
    x, pos = sampler(np.random.default_rng(0), 40)
    assert x.shape == (40, 3, 32, 32) and pos.shape == (40, len(sampler.vocabulary)) and pos.dtype == torch.bool
    assert 0 <= x.min() and x.max() <= 1
    bad = pos[:, sampler.vocabulary.index(faces.OBJECTIVE_PROMPTS[1])]
    assert bad.sum() == 10 and not pos[bad, sampler.vocabulary.index(faces.OBJECTIVE_PROMPTS[0])].any()
    x2, pos2 = sampler(np.random.default_rng(0), 40)
    assert torch.equal(x, x2) and torch.equal(pos, pos2)  # reproducible from the rng


def test_utkface_split_is_one_deterministic_tenth():
    train, held = faces.utkface_split(5000, seed=3)
    again = faces.utkface_split(5000, seed=3)
    assert np.array_equal(held, again[1]) and not np.array_equal(held, faces.utkface_split(5000, seed=4)[1])
    assert len(np.intersect1d(train, held)) == 0 and len(train) + len(held) == 5000
    assert 0.08 < len(held) / 5000 < 0.12


def test_calibration_ranges_and_thresholds_scale_like_the_paper():
    cal = faces.Calibration(np.array([0.1, -0.2]), np.array([0.05, 0.01]), np.zeros((1, 2)))
    assert cal.ranges(2.0) == [pytest.approx((0.0, 0.2)), pytest.approx((-0.22, -0.18))]
    assert cal.thresholds(2.0)[0] == pytest.approx((0.07, 0.13))  # 30 % of the half-range, as ±0.03 of ±0.1


def test_calibrate_and_entanglement_on_toys():
    scoring = PromptScoring(ToyGenerator(), ToyScorer(), faces.OBJECTIVE_PROMPTS, faces.MEASURE_PROMPTS)
    cal, samples = faces.calibrate(scoring, n=100, seed=0, batch_size=32)
    assert cal.centre.shape == (4,) and (cal.spread > 0).all() and samples["images"].shape == (100, 8, 8, 3)
    _, other = faces.calibrate(scoring, n=100, seed=1, batch_size=32)
    assert not np.allclose(samples["latents"], other["latents"])  # the seed's own stream
    rho = faces.entanglement({"a": samples["measures"][:, 0], "b": -samples["measures"][:, 0],
                              "c": samples["brightness"]})
    assert rho.loc["a", "b"] == pytest.approx(-1)


def test_entanglement_uses_the_samples_where_both_columns_are_defined():
    a = np.arange(10.0)
    ita = np.where(a == 3, np.nan, a ** 2)  # one face without an ITA
    rho = faces.entanglement({"a": a, "ITA": ita})
    assert rho.loc["a", "ITA"] == pytest.approx(1.0)


def test_bins_and_identities():
    m = np.array([[-0.1, -0.1], [0.0, 0.0], [0.1, 0.1], [0.1, -0.1], [-0.05, 0.05]])
    assert faces.skin_gender_bins(m, [(-0.03, 0.03), (-0.03, 0.03)]).tolist() == [0, 4, 8, 6, 2]
    rng = np.random.default_rng(0)
    z = rng.normal(size=(30, 5))
    bins = np.repeat([0, 4, 8], [10, 15, 5])
    ids = faces.assign_identities(z, bins)
    assert len(np.unique(ids)) == 5 + 8 + 3  # ceil(n_b / 2) per bin
    assert all(len(set(bins[ids == i])) == 1 for i in np.unique(ids))  # an identity never spans bins
    matched = faces.assign_identities(z, bins, n_identities=11)
    assert len(np.unique(matched)) == 11


def test_similarity_transform_recovers_a_known_transform():
    angle, scale, shift = 0.3, 1.7, np.array([4.0, -2.0])
    r = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = faces.ARCFACE_TEMPLATE @ (scale * r).T + shift
    a = faces.similarity_transform(faces.ARCFACE_TEMPLATE, dst)
    assert np.allclose(a[:, :2], scale * r) and np.allclose(a[:, 2], shift)


def test_writer_layout_metadata_and_matched_baseline(tmp_path):
    gen = ToyGenerator(latent_dim=6)
    z = gen.sample_latents(12, seed=0).numpy()
    m = np.random.default_rng(1).normal(0, 0.05, (12, 4))
    aug = faces.latent_augmentations(6, n=3, scale=0.1, seed=0)
    assert (aug[0] == 0).all()
    meta = faces.write_face_dataset(tmp_path / "qd", gen, z, m, np.arange(12.0), [(-0.03, 0.03)] * 2, aug,
                                    align=False, progress_bar=False)
    assert len(meta) == 36 and set(meta.augmentation) == {0, 1, 2}
    assert all((tmp_path / "qd" / p).is_file() for p in meta.path)
    assert meta.path.str.match(r"images/\d{5}/\d{3}\.png").all()
    on_disk = pd.read_csv(tmp_path / "qd" / "metadata.csv")
    assert list(on_disk.path) == list(meta.path) and (tmp_path / "qd" / "datasheet.md").read_text().startswith("# Datasheet")
    assert np.allclose(np.load(tmp_path / "qd" / "augmentations.npy"), aug)
    n_ids = meta.identity.nunique()
    rand = faces.matched_random_latents(gen, 12, seed=0)
    rm = np.random.default_rng(2).normal(0, 0.05, (12, 4))
    ids = faces.assign_identities(rand, faces.skin_gender_bins(rm, [(-0.03, 0.03)] * 2), n_identities=n_ids)
    base = faces.write_face_dataset(tmp_path / "rand", gen, rand, rm, np.zeros(12), [(-0.03, 0.03)] * 2, aug,
                                    identities=ids, align=False, progress_bar=False)
    assert len(base) == len(meta) and base.identity.nunique() == n_ids


def test_datasets_are_keyed_by_their_content(monkeypatch, tmp_path):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path))
    built = []
    write = dataset.write_face_dataset
    monkeypatch.setattr(dataset, "write_face_dataset", lambda root, *a, **kw: (built.append(root), write(root, *a, **kw)))
    gen, scorer = ToyGenerator(), ToyScorer()
    scoring = PromptScoring(gen, scorer, faces.OBJECTIVE_PROMPTS, faces.MEASURE_PROMPTS)
    z = gen.sample_latents(8, seed=0).numpy()
    ev = scoring.evaluate(z)
    elites = {"solution": z, "measures": ev.measures, "objective": ev.objective}
    settings = dict(dataset_latents=0, augmentations=2, augmentation_scale=0.1, align=False, seed=0)
    thresholds = [(-0.01, 0.01)] * 2
    qd, rand = faces.write_datasets(gen, scoring, elites, thresholds, **settings)
    assert len(built) == 2 and len(qd.meta) == len(rand.meta) == 16
    again, _ = faces.write_datasets(gen, scoring, elites, thresholds, **settings)
    assert len(built) == 2 and again.path == qd.path  # unchanged inputs: reused
    other = {"solution": z + 0.5, "measures": ev.measures, "objective": ev.objective}  # same count, other elites
    moved, rand2 = faces.write_datasets(gen, scoring, other, thresholds, **settings)
    assert moved.path != qd.path and rand2.path == rand.path  # Rand does not depend on the elites' values


def test_writer_aligns_generated_faces_with_mtcnn(tmp_path):
    from qdgs.generators.dcgan import DCGANFaces

    gen = DCGANFaces()
    z = gen.sample_latents(4, seed=0).numpy()
    meta = faces.write_face_dataset(tmp_path, gen, z, np.zeros((4, 4)), np.zeros(4), [(-0.03, 0.03)] * 2,
                                    faces.latent_augmentations(100, n=2, seed=0), progress_bar=False)
    assert meta.aligned.mean() >= 0.75
    from PIL import Image
    assert Image.open(tmp_path / meta.path[0]).size == (112, 112)


def test_measure_strips_rank_faces_left_to_right_on_one_axes():
    import matplotlib.pyplot as plt

    images = np.stack([np.full((4, 4, 3), v, np.uint8) for v in range(0, 250, 25)])  # brightness = rank
    measures = np.stack([np.arange(10.0), -np.arange(10.0)], 1)
    fig, ax = plt.subplots()
    plots.measure_strips(images, measures, ["up", "down"], per_row=5, ax=ax)
    drawn = ax.get_images()[0].get_array()
    assert drawn.shape == (8, 20, 3) and [t.get_text() for t in ax.get_yticklabels()] == ["up", "down"]
    assert drawn[0, 0, 0] < drawn[0, -1, 0] and drawn[4, 0, 0] > drawn[4, -1, 0]
    plt.close(fig)


def test_backends_fail_clearly(monkeypatch, tmp_path):
    with pytest.raises(ParameterError, match="allowed values: 'dcgan-skewed', 'dcgan', 'stylegan2'"):
        faces.load_generator("biggan")
    with pytest.raises(ParameterError, match="allowed values: 'offline-clip', 'openai-clip'"):
        faces.load_scorer("clip-l", steps=1)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path))
    monkeypatch.delenv("QDGS_STYLEGAN2", raising=False)
    with pytest.raises(FileNotFoundError, match="stylegan2-ffhq-256x256.pkl"):
        faces.load_generator("stylegan2")
    monkeypatch.setattr("qdgs.scorers.openai_clip._cached", lambda: False)
    with pytest.raises(RuntimeError, match="could not load CLIP weights"):
        faces.load_scorer("openai-clip", steps=1)


def _small_batches(monkeypatch):
    """Train the offline scorer with batches of 8 (the recipe comes from its config)."""
    load = face_scorer.load_config
    monkeypatch.setattr(face_scorer, "load_config", lambda name: json.loads(
        json.dumps({**load(name), "train": {**load(name)["train"], "batch_size": 8}})))


def test_offline_scorer_trains_caches_and_reports_every_pair(monkeypatch, tmp_path):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path))
    use_fake_utkface(monkeypatch, tmp_path, fake_faces(n=60, size=64))
    _small_batches(monkeypatch)
    scorer, table = faces.load_scorer("offline-clip", steps=2, seed=0, progress_bar=False)
    assert list(table.measure) == ["skin", "skin", "skin", "gender", "hair", "age", "objective"]
    assert table.loc[table.measure != "hair", "accuracy"].between(0, 1).all()
    assert np.isnan(table.loc[table.measure == "hair", "accuracy"]).all()
    emb = scorer.encode_image(torch.rand(2, 3, 64, 64))
    assert emb.shape[0] == 2 and torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)
    again, _ = faces.load_scorer("offline-clip", steps=2, seed=0, progress_bar=False)  # from the cache
    assert torch.equal(again.encode_text(["A man."]), scorer.encode_text(["A man."]))
    # every cited first-try row lands on a row of the table this code writes, wherever it sits
    shown = faces.beside_first_try(table.iloc[::-1])
    assert shown["first try accuracy"].notna().sum() == len(faces.FIRST_TRY_ZERO_SHOT)
    assert shown.loc[shown.measure == "hair", "first try accuracy"].isna().all()


def test_beside_first_try_refuses_a_table_without_a_cited_row():
    table = pd.DataFrame({"measure": ["gender"], "labels": ["gender, renamed"], "accuracy": [0.8]})
    with pytest.raises(ValueError, match="no row for"):
        faces.beside_first_try(table)


def test_scorer_key_holds_the_data_content_and_the_recipe(monkeypatch, tmp_path):
    fake = fake_faces(n=10, size=64)
    use_fake_utkface(monkeypatch, tmp_path / "a", fake, manifest="v1")
    first = faces.offline_scorer_key(steps=5, seed=0)
    use_fake_utkface(monkeypatch, tmp_path / "b", fake, manifest="v1")  # same content elsewhere
    assert faces.offline_scorer_key(steps=5, seed=0) == first
    use_fake_utkface(monkeypatch, tmp_path / "c", fake, manifest="v2")  # a changed file
    assert faces.offline_scorer_key(steps=5, seed=0) != first
    use_fake_utkface(monkeypatch, tmp_path / "a", fake, manifest="v1")
    _small_batches(monkeypatch)
    assert faces.offline_scorer_key(steps=5, seed=0) != first
