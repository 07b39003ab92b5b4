import json

import numpy as np
import pytest
import torch

from qdgs.scorers import offline_clip
from qdgs.scorers.offline_clip import OfflineClipScorer, make_clip, multi_positive_infonce, train_clip


@pytest.fixture
def tiny_config(tmp_path, monkeypatch):
    cfg = {"embed_dim": 16, "vision_cfg": {"image_size": 16, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
           "text_cfg": {"context_length": 12, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}}
    (tmp_path / "tiny.json").write_text(json.dumps(cfg))
    monkeypatch.setattr(offline_clip, "CONFIG_DIR", tmp_path)
    return "tiny"


def test_scorer_interface_on_an_untrained_model(tiny_config):
    scorer = OfflineClipScorer(make_clip(tiny_config))
    text = scorer.encode_text(["A red shape.", "A blue shape.", "Splatters of colors."])
    images = torch.rand(4, 3, 40, 40, requires_grad=True)
    emb = scorer.encode_image(images)
    assert text.shape == (3, 16) and emb.shape == (4, 16)
    assert torch.allclose(emb.norm(dim=1), torch.ones(4)) and torch.allclose(text.norm(dim=1), torch.ones(3))
    emb[:, 0].sum().backward()
    assert images.grad.abs().sum() > 0  # the search needs gradients through the image tower


def test_unknown_config_lists_known(tiny_config):
    with pytest.raises(ValueError, match="known configs: tiny"):
        make_clip("nope")


def test_multi_positive_infonce_prefers_the_positives():
    positives = torch.tensor([[True, False], [False, True]])
    good = multi_positive_infonce(torch.tensor([[5.0, -5.0], [-5.0, 5.0]]), positives)
    bad = multi_positive_infonce(torch.tensor([[-5.0, 5.0], [5.0, -5.0]]), positives)
    assert good < 0.01 < 5 < bad


def test_training_learns_a_colour_caption(tiny_config):
    """Red vs blue images: a few steps should make each image closer to its own caption."""
    vocabulary = ["A red shape.", "A blue shape."]

    def sample(rng: np.random.Generator, n: int):
        red = torch.as_tensor(rng.random(n) < 0.5)
        images = torch.where(red[:, None, None, None], torch.tensor([0.85, 0.1, 0.4]).view(1, 3, 1, 1),
                             torch.tensor([0.1, 0.5, 0.9]).view(1, 3, 1, 1)).expand(n, 3, 16, 16).clone()
        return images + 0.05 * torch.randn(n, 3, 16, 16), torch.stack([red, ~red], dim=1)

    model = make_clip(tiny_config)
    losses = train_clip(model, sample, vocabulary, steps=60, lr=3e-3, batch_size=32, progress=False)
    scorer = OfflineClipScorer(model)
    images, positives = sample(np.random.default_rng(1), 64)
    predicted = (scorer.encode_image(images) @ scorer.encode_text(vocabulary).T).argmax(1)
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    assert (predicted == positives.float().argmax(1)).float().mean() > 0.95
