"""OpenAI CLIP scorer: the real loading paths on a tiny same-architecture model with random weights."""

import json

import open_clip
import pytest
import torch

from paper_fixtures import TINY_CLIP_NAME, tiny_clip_config, write_clip_folder
from qdgs.scorers.openai_clip import OpenAIClipScorer, load_openai_clip


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A tiny ViT-B-32-quickgelu in an open_clip model folder (the hub layout), and the model."""
    return write_clip_folder(tmp_path_factory.mktemp("clip") / "tiny")


@pytest.fixture(scope="module")
def tiny_checkpoint(tiny_folder, tmp_path_factory):
    """The same model as a checkpoint file, its architecture registered with open_clip by name."""
    root = tmp_path_factory.mktemp("clip-file")
    (root / f"{TINY_CLIP_NAME}.json").write_text(json.dumps(tiny_clip_config()))
    open_clip.add_model_config(root / f"{TINY_CLIP_NAME}.json")
    folder, model = tiny_folder
    return folder / "open_clip_pytorch_model.bin", model


def test_checkpoint_loads_and_scorer_contract(tiny_checkpoint):
    path, reference = tiny_checkpoint
    scorer = load_openai_clip(pretrained=str(path), model_name=TINY_CLIP_NAME)
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


def test_a_model_folder_loads_with_its_own_architecture(tiny_folder):
    folder, reference = tiny_folder
    scorer = load_openai_clip(pretrained=str(folder))  # no model name: the folder's config says it
    for name, value in reference.state_dict().items():
        assert torch.equal(scorer.model.state_dict()[name], value), name
    assert scorer.encode_text(["A masculine person."]).shape == (1, 32)
    (folder.parent / "empty").mkdir()
    (folder.parent / "empty" / "open_clip_config.json").write_text((folder / "open_clip_config.json").read_text())
    with pytest.raises(RuntimeError, match="could not load CLIP weights .*empty"):  # a config without weights
        load_openai_clip(pretrained=str(folder.parent / "empty"))


def test_preprocessing_matches_clip_normalisation(tiny_folder):
    folder, _ = tiny_folder
    scorer = load_openai_clip(pretrained=str(folder))
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


def test_an_absent_path_is_named(tmp_path):
    with pytest.raises(RuntimeError, match=f"no checkpoint file or model folder at {tmp_path}/nowhere.pt.*huggingface-cli"):
        load_openai_clip(pretrained=str(tmp_path / "nowhere.pt"))


def test_a_bug_is_not_reported_as_missing_weights(monkeypatch, tiny_checkpoint):
    def buggy(*args, **kwargs):
        raise TypeError("create_model() got an unexpected keyword argument")

    monkeypatch.setattr(open_clip, "create_model", buggy)
    with pytest.raises(TypeError, match="unexpected keyword"):
        load_openai_clip(pretrained=str(tiny_checkpoint[0]))
