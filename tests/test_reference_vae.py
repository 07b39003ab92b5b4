"""The paper's shapes VAE backend, loaded from a same-format state dict that the test writes."""

import pytest
import torch

from paper_fixtures import write_reference_vae
from qdgs.generators.reference_vae import ReferenceShapesVAE, load_reference_vae


def _reference_format_file(tmp_path):
    path = tmp_path / "vae-shapes.pt"
    return path, write_reference_vae(path)


def test_loads_the_reference_state_dict_and_decodes_images(tmp_path):
    path, state = _reference_format_file(tmp_path)
    assert sorted(state) == sorted(  # the reference file's key names (facts file)
        [f"encoder.{n}.{p}" for n in ("conv1", "conv2", "conv3", "fc_mu", "fc_logvar") for p in ("weight", "bias")]
        + [f"decoder.{n}.{p}" for n in ("fc1", "convT1", "convT2", "convT3") for p in ("weight", "bias")])
    vae = load_reference_vae(path)
    assert torch.equal(vae.decoder.fc1.weight, state["decoder.fc1.weight"])
    images = vae(vae.sample_latents(3, seed=1))
    assert images.shape == (3, 3, 128, 128) and 0 <= images.min() and images.max() <= 1
    mu, logvar = vae.encode(images)
    assert mu.shape == logvar.shape == (3, 6)
    z = torch.zeros(2, 6, requires_grad=True)  # differentiable in z, as the search needs
    vae(z).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_missing_corrupt_and_foreign_files_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="download .*vae-shapes.pt"):
        load_reference_vae(tmp_path / "absent.pt")
    path, _ = _reference_format_file(tmp_path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="not a readable PyTorch state dict"):
        load_reference_vae(path)
    torch.save({"decoder.fc1.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ValueError, match="not the reference shapes VAE's state dict"):
        load_reference_vae(path)


def test_registry_and_checked_download_path(tmp_path, monkeypatch):
    from qdgs.generators import list_generators, load_generator

    assert "reference-vae" in list_generators()
    path, state = _reference_format_file(tmp_path)
    assert torch.equal(load_generator("reference-vae", path=path).decoder.convT3.bias, state["decoder.convT3.bias"])
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("QDGS_REFERENCE_VAE", raising=False)
    with pytest.raises(FileNotFoundError, match="not available offline.*vae-shapes.pt"):
        load_reference_vae()  # HF_HUB_OFFLINE is set in tests: nothing is fetched
    cached = tmp_path / "cache" / "weights" / "vae-shapes.pt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(path.read_bytes())  # not the published file: its sha256 differs
    with pytest.raises(RuntimeError, match="sha256"):
        load_reference_vae()
    monkeypatch.setenv("QDGS_REFERENCE_VAE", str(path))  # a user's own file is loaded as given
    assert torch.equal(load_reference_vae().decoder.fc1.weight, state["decoder.fc1.weight"])


def test_the_shapes_chapter_loads_it_by_name_at_128_px_only(tmp_path):
    from qdgs.params import ParameterError
    from qdgs.shapes import cached_scorer, shapes_generator

    path, state = _reference_format_file(tmp_path)
    vae, seconds = shapes_generator("reference-vae", steps=1, seed=0, size=128, bias=0.5, path=str(path))
    assert isinstance(vae, ReferenceShapesVAE) and seconds == 0.0
    assert torch.equal(vae.decoder.fc1.weight, state["decoder.fc1.weight"])
    with pytest.raises(ParameterError, match="image_size=128"):
        shapes_generator("reference-vae", steps=1, seed=0, size=64, bias=0.5, path=str(path))
    with pytest.raises(ParameterError, match="allowed values"):
        shapes_generator("big-gan", steps=1, seed=0, size=128, bias=0.5)
    with pytest.raises(ValueError, match="scorer_generated=0"):  # it cannot caption its own samples
        cached_scorer(vae, steps=1, seed=0, size=128, generated_fraction=0.3)
