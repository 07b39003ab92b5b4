"""Recognition: verification protocol, benchmark loaders, backbones, margin heads, training and resume."""

import math
import pickle
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from qdgs.recognition import (AdaFace, ArcFace, BackboneConfig, CosFace, EpochBatches, PixelEmbedder, TrainConfig,
                              augment, available_benchmarks, best_threshold, embed, evaluate, iresnet, load_bin,
                              load_identity_set, load_lfw, make_head, pair_scores, skin_split, ten_fold, train,
                              epoch_loader, write_record)
from qdgs.recognition.verification import PairSet
from qdgs.seeds import torch_generator
from recognition_fixtures import TINY, fake_lfw, png, toy_faces, write_identity_folder


def _pairs(n_people: int = 40, per_fold: int = 4, folds: int = 10, seed: int = 0):
    """(P,) ids of first/second faces: half matched, half mismatched in each fold."""
    rng = np.random.default_rng(seed)
    first, second, same, fold = [], [], [], []
    for k in range(folds):
        for j in range(per_fold):
            a = rng.integers(n_people)
            b = a if j % 2 == 0 else (a + 1 + rng.integers(n_people - 1)) % n_people
            first.append(a), second.append(b), same.append(a == b), fold.append(k)
    return np.array(first), np.array(second), np.array(same), np.array(fold)


# --- verification protocol -------------------------------------------------------------------

def test_identity_perfect_embeddings_score_100_percent():
    first, second, same, fold = _pairs()
    people = torch.nn.functional.one_hot(torch.arange(40)).float()
    emb = people[np.concatenate([first, second])]
    pairs = PairSet("toy", torch.zeros(0), np.arange(len(first)), np.arange(len(first), 2 * len(first)), same, fold)
    result = ten_fold(pair_scores(emb, pairs), same, fold)
    assert result.accuracy == 1.0 and result.std == 0.0


def test_random_embeddings_score_about_half():
    first, second, same, fold = _pairs(n_people=400, per_fold=200)
    emb = torch.randn(2 * len(first), 64, generator=torch.Generator().manual_seed(0))
    pairs = PairSet("toy", torch.zeros(0), np.arange(len(first)), np.arange(len(first), 2 * len(first)), same, fold)
    result = ten_fold(pair_scores(emb, pairs), same, fold)
    assert 0.45 < result.accuracy < 0.56


def test_best_threshold_and_fold_logic_match_a_hand_computed_case():
    # fold 0 is separable; in fold 1 the unique best cut is between 0.3 and 0.4 (4 of 5 right)
    scores = np.array([0.9, 0.8, 0.2, 0.1, 0.7, 0.3, 0.6, 0.4, 0.5])
    same = np.array([1, 1, 0, 0, 1, 0, 0, 1, 1], bool)
    fold = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
    assert best_threshold(scores[:4], same[:4]) == pytest.approx(0.5)  # midpoint of 0.8 and 0.2
    result = ten_fold(scores, same, fold)
    assert result.thresholds.tolist() == pytest.approx([0.35, 0.5])  # each from the *other* fold
    assert result.fold_accuracy.tolist() == pytest.approx([1.0, 0.4])  # fold 1 at 0.5: 0.7 ✓ 0.3 ✓ 0.6 ✗ 0.4 ✗ 0.5 ✗
    assert result.accuracy == pytest.approx(0.7) and result.std == pytest.approx(0.3)
    assert result.correct.tolist() == [True] * 6 + [False] * 3


def test_skin_split_scores_only_pairs_of_one_group():
    scores = np.array([0.9, 0.1, 0.9, 0.1])
    same = np.array([1, 0, 0, 1], bool)
    fold = np.array([0, 0, 1, 1])
    result = ten_fold(scores, same, fold)
    pairs = PairSet("toy", torch.zeros(0), np.array([0, 2, 4, 6]), np.array([1, 3, 5, 7]), same, fold)
    skin = np.array([0, 0, 0, 1, 1, 1, 1, 1])  # pair 0 dark-dark, pairs 2 and 3 light-light, pair 1 mixed
    table = skin_split(result, pairs, skin).set_index("group")
    assert table.loc["dark", "pairs"] == 1 and table.loc["light", "pairs"] == 2
    assert table.loc["dark", "accuracy"] == result.correct[0]
    assert table.loc["light", "accuracy"] == result.correct[2:].mean()


def test_pixel_baseline_recognises_identical_pairs():
    rng = np.random.default_rng(0)
    faces = torch.from_numpy(rng.integers(0, 256, (40, 3, 16, 16), dtype=np.uint8))
    first, second, same, fold = _pairs()
    pairs = PairSet("toy", faces, first, second, same, fold)
    assert evaluate(PixelEmbedder(8), pairs)[0].accuracy == 1.0


def test_bin_loader_reads_insightface_format(tmp_path):
    rng = np.random.default_rng(0)
    bins = [png(rng.integers(0, 256, (112, 112, 3))) for _ in range(40)]
    issame = [bool(i % 2 == 0) for i in range(20)]
    with open(tmp_path / "agedb_30.bin", "wb") as f:
        pickle.dump((bins, issame), f)
    pairs = load_bin(tmp_path / "agedb_30.bin", size=64)
    assert pairs.name == "agedb_30" and pairs.images.shape == (40, 3, 64, 64)
    assert pairs.first.tolist() == list(range(0, 40, 2)) and pairs.second.tolist() == list(range(1, 40, 2))
    assert pairs.same.tolist() == issame and np.bincount(pairs.fold).tolist() == [2] * 10
    (tmp_path / "bad.bin").write_bytes(b"not a pickle")
    with pytest.raises(RuntimeError, match="InsightFace"):
        load_bin(tmp_path / "bad.bin")


class _Smuggled:
    """Pickles as a call of ``builtins.list``: plain ``pickle.load`` runs it, a safe loader must refuse."""

    def __init__(self, items):
        self.items = items

    def __reduce__(self):
        return list, (self.items,)


def test_bin_loader_runs_no_code_from_the_file(tmp_path):
    rng = np.random.default_rng(0)
    bins = [np.frombuffer(png(rng.integers(0, 256, (16, 16, 3))), np.uint8) for _ in range(20)]
    issame = [np.bool_(i % 2 == 0) for i in range(10)]
    with open(tmp_path / "numpy.bin", "wb") as f:  # NumPy arrays and scalars at protocol 2, as old packs hold
        pickle.dump((bins, issame), f, protocol=2)
    assert load_bin(tmp_path / "numpy.bin", size=16).same.tolist() == [i % 2 == 0 for i in range(10)]
    with open(tmp_path / "smuggled.bin", "wb") as f:
        pickle.dump((_Smuggled([b.tobytes() for b in bins]), issame), f)
    with pytest.raises(RuntimeError, match="builtins.list"):
        load_bin(tmp_path / "smuggled.bin", size=16)


def test_missing_bin_benchmarks_are_named_not_dropped_silently(tmp_path):
    fake_lfw(tmp_path / "lfw")
    (tmp_path / "verification").mkdir()
    rng = np.random.default_rng(0)
    with open(tmp_path / "verification" / "cfp_fp.bin", "wb") as f:
        pickle.dump(([png(rng.integers(0, 256, (16, 16, 3))) for _ in range(20)], [True, False] * 5), f)
    with pytest.warns(UserWarning, match=r"agedb_30, cplfw, calfw not found.*verification"):
        sets = available_benchmarks(size=16, root=tmp_path)
    assert [s.name for s in sets] == ["lfw", "cfp_fp"]


def test_lfw_loader_reads_the_official_layout(tmp_path):
    fake_lfw(tmp_path)
    pairs = load_lfw(size=32, crop=130, root=tmp_path)
    assert pairs.images.shape == (5, 3, 32, 32) and pairs.same.tolist() == [True, False, True, False]
    assert pairs.fold.tolist() == [0, 0, 1, 1]
    assert float(pairs.images.float().std((1, 2, 3)).max()) < 2  # the central 130 px crop is all face
    assert pairs.first[1] == pairs.first[0]  # Ann_A_0001 is stored once


# --- backbones and heads ---------------------------------------------------------------------

@pytest.mark.parametrize("size,stem", [(64, 1), (64, 2), (112, 1)])
def test_backbone_embeds_faces(size, stem):
    model = iresnet(18, width=8, input_size=size, stem_stride=stem).eval()
    assert model(torch.rand(2, 3, size, size)).shape == (2, 512)
    with pytest.raises(ValueError, match="resize them first"):
        model(torch.rand(2, 3, size + 16, size + 16))
    big = torch.randint(0, 256, (2, 3, size + 16, size + 16), dtype=torch.uint8)
    assert embed(model, big, size=size).shape == (2, 512)  # the remedy the message names works


def test_backbone_depths_match_insightface_sizes():
    counts = {d: sum(p.numel() for p in iresnet(d).parameters()) / 1e6 for d in (50, 101)}
    assert counts[50] == pytest.approx(43.6, abs=0.1) and counts[101] == pytest.approx(65.2, abs=0.1)
    with pytest.raises(ValueError, match="depth"):
        BackboneConfig(depth=34)


def _cos_and_head(head):
    emb = torch.randn(6, 16, generator=torch.Generator().manual_seed(0)) * 10
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    return emb, labels, head.cosines(emb), head(emb, labels)


def test_heads_shapes_and_margins():
    torch.manual_seed(0)
    s, m = 30.0, 0.3
    for cls, target in ((CosFace, lambda c: c - m), (ArcFace, lambda c: torch.cos(torch.acos(c) + m))):
        head = cls(5, 16, s, m)
        emb, labels, cos, logits = _cos_and_head(head)
        assert logits.shape == (6, 5)
        t = cos.gather(1, labels[:, None])[:, 0]
        assert torch.allclose(logits.gather(1, labels[:, None])[:, 0], s * target(t), atol=1e-5)
        other = torch.ones_like(cos, dtype=bool).scatter(1, labels[:, None], False)
        assert torch.allclose(logits[other], s * cos[other])
    assert make_head("arcface", 5, 16).margin == 0.4
    with pytest.raises(ValueError, match="adaface"):
        make_head("sphereface", 5, 16)


def test_arcface_margin_stays_monotonic_past_pi():
    head = ArcFace(2, 2, 1.0, 0.5)
    cos = torch.tensor([-0.99, -0.9, 0.0])
    out = head.target_logit(cos, None, 0.5)
    assert (out[1:] > out[:-1]).all() and (out < cos).all()


def test_adaface_margin_follows_feature_norm_and_warms_up():
    head = AdaFace(5, 16, scale=64.0, margin=0.4, h=0.333)
    emb, labels, cos, _ = _cos_and_head(head)
    assert head.batch_mean != 20.0  # training mode: running norm statistics moved
    head.eval()
    before = head.batch_mean.clone()
    logits = head(emb, labels)
    assert head.batch_mean == before  # eval mode: frozen
    q = ((emb.norm(dim=1) - head.batch_mean) / (head.batch_std + 1e-3) * 0.333).clamp(-1, 1)
    t = cos.gather(1, labels[:, None])[:, 0]
    expected = torch.cos((torch.acos(t) - 0.4 * q).clamp(1e-3, math.pi - 1e-3)) - (0.4 + 0.4 * q)
    assert torch.allclose(logits.gather(1, labels[:, None])[:, 0], 64 * expected, atol=1e-4)
    head.margin_scale = 0.0  # start of a margin warm-up: plain scaled cosine
    assert torch.allclose(head(emb, labels), 64 * cos, atol=1e-4)


# --- training --------------------------------------------------------------------------------

def test_paper_schedule_scales_milestones():
    cfg = TrainConfig(epochs=26, lr=0.01)
    assert [cfg.lr_at(e * 10, 10) for e in (0, 11, 12, 19, 20, 24, 25)] == pytest.approx(
        [0.01, 0.01, 1e-3, 1e-3, 1e-4, 1e-5, 1e-5])
    short = TrainConfig(epochs=13, lr=0.01)  # milestones 6, 10, 12
    assert [short.lr_at(e, 1) for e in (5, 6, 10, 12)] == pytest.approx([0.01, 1e-3, 1e-4, 1e-5])
    warm = TrainConfig(epochs=4, lr=0.1, schedule="cosine", warmup_epochs=1, margin_warmup_epochs=2)
    assert warm.lr_at(4, 10) == pytest.approx(0.05) and warm.lr_at(10, 10) == pytest.approx(0.1)
    assert warm.margin_scale_at(9, 10) == pytest.approx(0.5) and warm.margin_scale_at(30, 10) == 1.0


def test_augment_keeps_shape_range_and_is_seeded():
    x = torch.rand(32, 3, 16, 16)
    a = augment(x.clone(), 0.5, torch.Generator().manual_seed(1))
    b = augment(x.clone(), 0.5, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1 and torch.equal(a, b)
    assert not torch.equal(a, x)


def test_epoch_batches_are_the_seeded_loop_for_any_workers_and_shards():
    torch.set_num_threads(1)
    data = toy_faces()
    cfg = TrainConfig(batch_size=8, augment_p=0.5, seed=3)
    order = torch.randperm(len(data.labels), generator=torch_generator(3, "recognition-train", "batches", 1))
    gen = torch_generator(3, "recognition-train", "augment", 1)
    loop = []  # the trainer's loop before batches came from a DataLoader: index, then augment, in order
    for i in range(len(data.labels) // 8):
        idx = order[i * 8:(i + 1) * 8]
        loop.append((augment(data.images[idx].float() / 255, 0.5, gen), data.labels[idx]))
    for workers in (0, 2):
        batches = list(epoch_loader(EpochBatches(data, cfg, epoch=1), workers))
        assert len(batches) == len(loop) == 6
        for (x, y), (x0, y0) in zip(batches, loop):
            assert torch.equal(x, x0) and torch.equal(y, y0), workers
    halves = [EpochBatches(data, cfg, 1, rows) for rows in (slice(0, 4), slice(4, 8))]  # two ranks' shares
    for i, (x0, y0) in enumerate(loop):
        assert torch.equal(torch.cat([h[i][0] for h in halves]), x0)
        assert torch.equal(torch.cat([h[i][1] for h in halves]), y0)
    other_epoch = EpochBatches(data, cfg, epoch=2)[0]
    assert not torch.equal(other_epoch[0], loop[0][0])


def test_training_learns_and_resume_equals_uninterrupted(tmp_path):
    torch.set_num_threads(1)
    data = toy_faces()
    cfg = TrainConfig(head="cosface", scale=16.0, margin=0.1, epochs=3, batch_size=8, lr=0.05,
                      schedule="cosine", warmup_epochs=0.5, margin_warmup_epochs=1)
    whole = train(data, TINY, cfg, progress_bar=False)
    assert whole.history.loss.iloc[-1] < whole.history.loss.iloc[0]
    train(data, TINY, cfg, checkpoint_dir=tmp_path, stop_after=1, progress_bar=False)
    resumed = train(data, TINY, cfg, checkpoint_dir=tmp_path, progress_bar=False)
    for (name, a), b in zip(whole.backbone.state_dict().items(), resumed.backbone.state_dict().values()):
        assert torch.equal(a, b), name
    pd.testing.assert_frame_equal(whole.history.drop(columns=["seconds", "images_per_s"]),
                                  resumed.history.drop(columns=["seconds", "images_per_s"]))
    other = TrainConfig(head="cosface", epochs=3, batch_size=8)
    with pytest.raises(RuntimeError, match="different training configuration"):
        train(data, TINY, other, checkpoint_dir=tmp_path, progress_bar=False)


def test_training_neither_reads_nor_moves_the_global_rng():
    torch.set_num_threads(1)
    data = toy_faces(n_ids=4, per=4)
    cfg = TrainConfig(head="cosface", scale=16.0, margin=0.1, epochs=2, batch_size=8, lr=0.05, augment_p=0.5)
    torch.manual_seed(123)
    torch.rand(1000)  # noise a notebook cell might have drawn
    state = torch.get_rng_state()
    first = train(data, TINY, cfg, progress_bar=False)
    assert torch.equal(torch.get_rng_state(), state)  # a cold and a warm run leave the same global state
    torch.manual_seed(7)
    torch.rand(13)
    second = train(data, TINY, cfg, progress_bar=False)
    for (name, a), b in zip(first.backbone.state_dict().items(), second.backbone.state_dict().values()):
        assert torch.equal(a, b), name
    other = train(data, TINY, replace(cfg, seed=1), progress_bar=False)
    assert not torch.equal(first.backbone.stem[0].weight, other.backbone.stem[0].weight)


def test_real_stage_reads_record_and_image_folder_sets(tmp_path):
    torch.set_num_threads(1)
    data = toy_faces(n_ids=4, per=4)
    faces = [(int(y), png(x.permute(1, 2, 0).numpy())) for x, y in zip(data.images, data.labels)]
    write_record(tmp_path / "train.rec", faces)
    rec = load_identity_set(tmp_path, size=16)
    assert torch.equal(rec.images, data.images) and torch.equal(rec.labels, data.labels)
    write_identity_folder(tmp_path / "set", data)
    images = load_identity_set(tmp_path / "set", size=16)
    assert torch.equal(images.images, data.images) and images.num_classes == 4
    cfg = TrainConfig(head="adaface", scale=16.0, epochs=1, batch_size=8, lr=0.01)
    synthetic = train(toy_faces(seed=1), TINY, cfg, progress_bar=False)
    real_cfg = replace(cfg, seed=1)  # another seed than pretraining: ignoring init would start elsewhere
    real = train(rec, TINY, real_cfg, init=synthetic.backbone.state_dict(), progress_bar=False)
    scratch = train(rec, TINY, real_cfg, progress_bar=False)
    assert real.head.weight.shape == (4, 32) and len(real.history) == 1
    start, w = synthetic.backbone.stem[0].weight, real.backbone.stem[0].weight
    assert (w - start).norm() < 0.1 * (scratch.backbone.stem[0].weight - start).norm()  # it continued from init
    with pytest.raises(FileNotFoundError, match="train.rec"):
        load_identity_set(tmp_path / "nothing")


# --- notebook --------------------------------------------------------------------------------

@pytest.mark.slow
def test_notebook_smoke_run(tmp_path, data_root):
    from qdgs.cli import run_notebook
    from qdgs.results import load

    for name, seed in (("qd", 0), ("rand", 1)):
        write_identity_folder(tmp_path / name, toy_faces(n_ids=8, per=8, size=64, seed=seed))
    run_notebook("03_face_recognition", "smoke", {"qd_dir": str(tmp_path / "qd"), "rand_dir": str(tmp_path / "rand")},
                 out_dir=tmp_path / "out")
    recorded = load("recognition")
    lfw = recorded.table.query("benchmark == 'lfw'").set_index("model")["mean"]
    assert set(lfw.index) == {"pixels", "untrained", "QD", "Rand"}
    # Measured on the shared LFW at the smoke settings (64 px, crop 130, centred): pixels 0.654,
    # untrained 0.665 (seeds 0-2: 0.665-0.696), QD 0.656, Rand 0.661; with shuffled pair labels 0.49.
    # Random conv features already score ~0.67, so two steps on toy faces cannot be told from no
    # training here (tests/test_recognition_learning.py checks learning); this pins the evaluation.
    assert lfw["pixels"] == pytest.approx(0.654, abs=0.003)
    assert lfw.drop("pixels").between(0.60, 0.75).all(), lfw
    assert {c.claim for c in recorded.meta["claims"]} and recorded.meta["profile"] == "smoke"


# --- experiment helpers ----------------------------------------------------------------------

def test_seed_resolution_and_comparison():
    from qdgs.recognition import experiment as ex

    per_seed = pd.DataFrame({"model": ["QD"] * 3 + ["Rand"] * 3, "benchmark": "lfw",
                             "accuracy": [0.70, 0.71, 0.72, 0.66, 0.67, 0.68]})
    res = ex.seed_resolution(per_seed)
    assert res.seed_std[0] == pytest.approx(0.01) and res.seeds[0] == 3
    assert res.resolves[0] == pytest.approx(2 * 0.01 * math.sqrt(2 / 3))
    verdict = ex.compare(per_seed, "QD", "Rand", "lfw", res)
    assert verdict["difference"] == pytest.approx(0.04) and verdict["a_better"] is True
    close = per_seed.assign(accuracy=per_seed.accuracy - np.r_[0, 0, 0, -0.035, -0.035, -0.035])
    assert ex.compare(close, "QD", "Rand", "lfw", ex.seed_resolution(close))["a_better"] is None


def test_synthetic_sets_say_which_notebook_to_run(tmp_path, monkeypatch):
    from qdgs.recognition import experiment as ex
    from qdgs.results import record

    monkeypatch.setenv("QDGS_RESULTS", str(tmp_path / "results"))
    with pytest.raises(FileNotFoundError, match="notebook"):
        ex.synthetic_sets()
    (tmp_path / "qd").mkdir(), (tmp_path / "rand").mkdir()
    record("faces", pd.DataFrame({"x": [1]}), profile="smoke", backends={}, seconds={}, claims=[], datasets={"QD": str(tmp_path / "qd"), "Rand": str(tmp_path / "rand")})
    assert ex.synthetic_sets() == {"QD": tmp_path / "qd", "Rand": tmp_path / "rand"}
    assert ex.synthetic_sets(rand_dir=str(tmp_path / "qd"))["Rand"] == tmp_path / "qd"
