"""The offline CLIP scorer on a tiny untrained model: interface, norms, gradients, training, save/load."""

import json

import numpy as np
import pytest
import torch

from qdgs.scorers import offline_clip
from qdgs.scorers.offline_clip import OfflineClipScorer, load_clip, load_trained, make_clip, save_clip, train_clip

TINY = {"embed_dim": 16, "vision_cfg": {"image_size": 16, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}}


@pytest.fixture
def tiny_config(tmp_path, monkeypatch):
    monkeypatch.setattr(offline_clip, "CONFIG_DIR", tmp_path)
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    return "tiny"


def test_scorer_interface_shapes_norms_and_gradients(tiny_config):
    torch.manual_seed(0)
    scorer = OfflineClipScorer(make_clip(tiny_config))
    text = scorer.encode_text(["A red shape.", "A blue shape.", "Splatters of colors."])
    assert text.shape == (3, 16) and torch.allclose(text.norm(dim=-1), torch.ones(3), atol=1e-5)
    images = torch.rand(2, 3, 40, 24, requires_grad=True)  # any size: resized internally
    emb = scorer.encode_image(images)
    assert emb.shape == (2, 16) and torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)
    (emb @ text.T).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert not scorer.train().training  # frozen


def test_unknown_config_lists_known_ones(tiny_config):
    with pytest.raises(ValueError, match="tiny"):
        make_clip("nope")


def test_shipped_shapes_config_builds():
    model = make_clip("shapes_clip")
    assert OfflineClipScorer(model).image_size == 32


def test_multi_positive_infonce_prefers_the_right_pairs():
    positives = torch.tensor([[True, False], [False, True]])
    good = offline_clip.multi_positive_infonce(torch.tensor([[5.0, -5.0], [-5.0, 5.0]]), positives)
    bad = offline_clip.multi_positive_infonce(torch.tensor([[-5.0, 5.0], [5.0, -5.0]]), positives)
    assert good < 0.01 < bad


VOCAB = ["A red shape.", "A blue shape."]


def sample_batch(rng, batch_size):
    colour = rng.integers(0, 2, batch_size)
    images = torch.zeros(batch_size, 3, 16, 16)
    images[colour == 0, 0] = 1.0
    images[colour == 1, 2] = 1.0
    images += 0.05 * torch.rand(images.shape)  # a sampler that draws from the global torch stream
    return images, torch.from_numpy(np.stack([colour == 0, colour == 1], axis=1))


def test_train_clip_lowers_the_loss_and_round_trips(tiny_config, tmp_path):
    vocab = VOCAB

    model = make_clip(tiny_config)
    losses = train_clip(model, sample_batch, vocab, steps=40, lr=3e-3, seed=0, progress=False, batch_size=16,
                        pair_weight=1.0)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    save_clip(model, tmp_path / "clip.pt", tiny_config, vocab)
    again = load_trained(tmp_path / "clip.pt")
    assert again.vocabulary == tuple(vocab)
    x = sample_batch(np.random.default_rng(1), 4)[0]
    assert torch.allclose(again.encode_image(x), OfflineClipScorer(model).encode_image(x), atol=1e-6)


def test_load_clip_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_clip"):
        load_clip(tmp_path / "absent.pt")


def test_same_seed_same_initial_model_whatever_ran_before(tiny_config):
    first = make_clip(tiny_config, seed=3)
    torch.rand(1000)  # other draws from the global generator in between
    again = make_clip(tiny_config, seed=3)
    other = make_clip(tiny_config, seed=4)
    pairs = list(zip(first.state_dict().values(), again.state_dict().values(), other.state_dict().values()))
    assert all(torch.equal(a, b) for a, b, _ in pairs)
    assert not all(torch.equal(a, c) for a, _, c in pairs)


def _trained(config, seed=0):
    model = make_clip(config, seed=seed)
    train_clip(model, sample_batch, VOCAB, steps=3, seed=seed, progress=False, batch_size=8)
    return model


def test_training_gives_the_same_scorer_whatever_ran_before_and_leaves_the_global_rng_alone(tiny_config):
    torch.manual_seed(123)
    first = _trained(tiny_config)
    torch.rand(1000)  # the global stream is elsewhere now
    before = torch.get_rng_state()
    again = _trained(tiny_config)
    assert torch.equal(torch.get_rng_state(), before)  # training drew nothing from the caller's stream
    for a, b in zip(first.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    other = _trained(tiny_config, seed=1)
    assert not all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), other.state_dict().values()))


def test_recipe_reads_the_train_section_over_train_clip_defaults(tiny_config, tmp_path):
    (tmp_path / "tiny.json").write_text(json.dumps({**TINY, "train": {"lr": 0.01, "pair_weight": 1.0, "steps": 50}}))
    got = offline_clip.recipe(tiny_config)
    assert got == {"steps": 50, "lr": 0.01, "batch_size": 128, "weight_decay": 0.1, "warmup": 0.05, "pair_weight": 1.0}
    model = make_clip(tiny_config)  # the architecture ignores the recipe
    assert train_clip(model, sample_batch, VOCAB, progress=False, **{**got, "steps": 1, "batch_size": 4})


def test_recipe_without_a_train_section_is_train_clip_defaults_and_unknown_keys_are_refused(tiny_config, tmp_path):
    from qdgs.params import ParameterError

    assert offline_clip.recipe(tiny_config)["lr"] == 1e-3 and "steps" not in offline_clip.recipe(tiny_config)
    (tmp_path / "tiny.json").write_text(json.dumps({**TINY, "train": {"learning_rate": 0.01}}))
    with pytest.raises(ParameterError, match="learning_rate.*allowed: steps, lr, batch_size"):
        offline_clip.recipe(tiny_config)
