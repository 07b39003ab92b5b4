"""One factory per kind: generators and scorers by name, with clear errors for unknown names and arguments."""

import json

import pytest
import torch

from qdgs.generators import list_generators, load_generator
from qdgs.params import ParameterError
from qdgs.scorers import list_scorers, load_scorer, offline_clip
from test_offline_clip import TINY


def test_names_are_listed_and_unknown_ones_refused_with_the_allowed_values():
    assert list_generators() == ["dcgan", "dcgan-skewed", "reference-vae", "shapes-vae", "stylegan2"]
    assert list_scorers() == ["offline-clip", "openai-clip"]
    with pytest.raises(ParameterError, match="unknown generator 'biggan'; allowed values: 'dcgan', 'dcgan-skewed', 'reference-vae'"):
        load_generator("biggan")
    with pytest.raises(ParameterError, match="unknown scorer 'siglip'; allowed values: 'offline-clip', 'openai-clip'"):
        load_scorer("siglip")


def test_wrong_arguments_say_what_the_backend_takes():
    with pytest.raises(ParameterError, match=r"generator 'shapes-vae' takes \(path"):
        load_generator("shapes-vae")
    with pytest.raises(ParameterError, match="scorer 'openai-clip' takes.*weights"):
        load_scorer("openai-clip", pretrained="openai")


def test_shapes_vae_loads_from_the_file_save_vae_wrote(tmp_path):
    from qdgs.generators.shapes_vae import ShapesVAE, save_vae

    vae = ShapesVAE(internal_size=16, output_size=16, width=8)
    save_vae(vae, tmp_path / "vae.pt")
    loaded = load_generator("shapes-vae", path=tmp_path / "vae.pt")
    z = vae.sample_latents(3, seed=0)
    assert torch.equal(loaded(z), vae.eval()(z))


def test_dcgan_loads_by_name():
    pytest.importorskip("gan_face_generate")
    gen = load_generator("dcgan", pretrained=False)
    assert gen(gen.sample_latents(1, seed=0)).shape == (1, 3, 64, 64)


def test_stylegan2_by_name_reports_missing_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match="download"):
        load_generator("stylegan2", path=tmp_path / "absent.pkl")


def test_offline_clip_loads_from_the_file_save_clip_wrote(tmp_path, monkeypatch):
    monkeypatch.setattr(offline_clip, "CONFIG_DIR", tmp_path)
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    model = offline_clip.make_clip("tiny", seed=1)
    prompts = ["A red shape.", "A blue shape."]
    offline_clip.save_clip(model, tmp_path / "clip.pt", "tiny", prompts)
    scorer = load_scorer("offline-clip", path=tmp_path / "clip.pt")
    assert torch.allclose(scorer.encode_text(prompts), offline_clip.OfflineClipScorer(model).encode_text(prompts))
    assert scorer.vocabulary == tuple(prompts)


def test_openai_clip_by_name_reports_unusable_weights(tmp_path):
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="could not load CLIP weights"):
        load_scorer("openai-clip", weights=str(tmp_path / "broken.pt"))
