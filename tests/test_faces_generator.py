"""The light-skewed face generator: loaded from its weights through the registry, refused when missing or altered."""

import pytest
import torch
from qdgs.generators import list_generators, load_generator
from qdgs.generators import skewed_dcgan


@pytest.fixture
def weights(tmp_path):
    """A same-format weight file: a randomly initialised DCGAN generator's state dict."""
    from qdgs.generators.dcgan import DCGANFaces

    torch.manual_seed(0)
    state = DCGANFaces(pretrained=False).net.state_dict()
    path = tmp_path / "dcgan-skewed.pt"
    torch.save(state, path)
    return path, state


def test_loads_through_the_registry_with_its_checksum(weights):
    path, state = weights
    assert "dcgan-skewed" in list_generators()
    gen = load_generator("dcgan-skewed", path=path, sha256=skewed_dcgan.sha256(path))
    assert all(torch.equal(gen.net.state_dict()[k], v) for k, v in state.items())
    z = gen.sample_latents(3, seed=1)
    x = gen(z)
    assert x.shape == (3, 3, 64, 64) and 0 <= x.min() and x.max() <= 1
    assert torch.allclose(gen(z[:1]), x[:1], atol=1e-5)  # eval mode: a face does not depend on its batch-mates


def test_a_changed_file_is_refused(weights):
    path, _ = weights
    with pytest.raises(ValueError, match="not the expected"):
        load_generator("dcgan-skewed", path=path, sha256="0" * 64)


def test_a_missing_file_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="make models"):
        load_generator("dcgan-skewed", path=tmp_path / "absent.pt")


def test_the_committed_weights_match_their_checksum():
    if not skewed_dcgan.WEIGHTS.is_file():
        pytest.fail(f"{skewed_dcgan.WEIGHTS} is missing: run `make models`")
    assert skewed_dcgan.sha256(skewed_dcgan.WEIGHTS) == skewed_dcgan.WEIGHTS_SHA256
    load_generator("dcgan-skewed")


def test_fine_tune_runs_on_a_skewed_sample_and_is_reproducible(tmp_path, monkeypatch):
    from fake_utkface import fake_faces, use_fake_utkface

    monkeypatch.setenv("QDGS_CACHE", str(tmp_path))
    use_fake_utkface(monkeypatch, tmp_path, fake_faces(n=600, size=64))
    recipe = {"batch_size": 4, "bn_batches": 2, "light_dark": 3.0}
    before = torch.random.get_rng_state()
    state, log = skewed_dcgan.fine_tune(steps=2, seed=0, progress_bar=False, recipe=recipe)
    assert torch.equal(torch.random.get_rng_state(), before)  # the global RNG is neither read nor changed
    assert log["light_dark"] == pytest.approx(3.0, rel=0.15) and log["young_old"] == pytest.approx(2.0, rel=0.15)
    again, _ = skewed_dcgan.fine_tune(steps=2, seed=0, progress_bar=False, recipe=recipe)
    assert all(torch.equal(state[k], again[k]) for k in state)
    path = tmp_path / "w.pt"
    torch.save(state, path)
    gen = load_generator("dcgan-skewed", path=path)
    assert gen(gen.sample_latents(2, seed=0)).shape == (2, 3, 64, 64)
