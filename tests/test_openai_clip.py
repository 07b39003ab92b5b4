"""OpenAI CLIP scorer: the real loading path on a tiny same-architecture model with random weights."""

import json

import open_clip
import pytest
import torch

from qdgs.scorers.openai_clip import MODEL_NAME, OpenAIClipScorer, load_openai_clip


def tiny_config() -> dict:
    """open_clip's ViT-B-32-quickgelu config with tiny widths: the same layout, random weights load in seconds."""
    cfg = json.loads((open_clip.factory._MODEL_CONFIG_PATHS[0] / f"{MODEL_NAME}.json").read_text())
    cfg["embed_dim"] = 32
    cfg["vision_cfg"].update(width=64, layers=2)
    cfg["text_cfg"].update(width=64, heads=2, layers=2)
    return cfg


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A ViT-B-32-quickgelu-shaped model (same layout, tiny widths) saved as a checkpoint file."""
    root = tmp_path_factory.mktemp("clip")
    cfg = tiny_config()
    (root / "tiny-ViT-B-32-quickgelu.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(root / "tiny-ViT-B-32-quickgelu.json")
    torch.manual_seed(0)
    model = open_clip.create_model("tiny-ViT-B-32-quickgelu")
    torch.save(model.state_dict(), root / "tiny.pt")
    return root / "tiny.pt", model


def test_checkpoint_loads_and_scorer_contract(tiny_checkpoint):
    path, reference = tiny_checkpoint
    scorer = load_openai_clip(pretrained=str(path), model_name="tiny-ViT-B-32-quickgelu")
    assert isinstance(scorer, OpenAIClipScorer) and scorer.image_size == 224
    for name, value in reference.state_dict().items():
        assert torch.equal(scorer.model.state_dict()[name], value), name
    text = scorer.encode_text(["A person with dark skin.", "A person with light skin."])
    assert text.shape == (2, 32) and torch.allclose(text.norm(dim=1), torch.ones(2), atol=1e-5)
    assert not torch.allclose(text[0], text[1])
    images = torch.rand(2, 3, 64, 48, requires_grad=True)  # any size, non-square
    emb = scorer.encode_image(images)
    assert emb.shape == (2, 32) and torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)
    emb[:, 0].sum().backward()
    assert images.grad.abs().sum() > 0


def test_preprocessing_matches_clip_normalisation(tiny_checkpoint):
    path, _ = tiny_checkpoint
    scorer = load_openai_clip(pretrained=str(path), model_name="tiny-ViT-B-32-quickgelu")
    grey = torch.full((1, 3, 32, 32), 0.5)
    x = scorer.preprocess(grey)
    assert x.shape == (1, 3, 224, 224)
    expected = (0.5 - torch.tensor([0.48145466, 0.4578275, 0.40821073])) / torch.tensor(
        [0.26862954, 0.26130258, 0.27577711])
    assert torch.allclose(x[0, :, 100, 100], expected, atol=1e-4)


def test_offline_without_weights_fails_fast_and_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("qdgs.scorers.openai_clip._cached", lambda: False)
    with pytest.raises(RuntimeError, match="could not load CLIP weights 'openai'.*pretrained=<path"):
        load_openai_clip()


def test_corrupt_checkpoint_says_what_to_do(tmp_path):
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(RuntimeError, match="could not load CLIP weights .*broken.pt"):
        load_openai_clip(pretrained=str(tmp_path / "broken.pt"))


def test_a_bug_is_not_reported_as_missing_weights(monkeypatch):
    def buggy(*args, **kwargs):
        raise TypeError("create_model() got an unexpected keyword argument")

    monkeypatch.setattr(open_clip, "create_model", buggy)
    with pytest.raises(TypeError, match="unexpected keyword"):
        load_openai_clip(pretrained="/nowhere.pt")
