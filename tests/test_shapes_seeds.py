"""Same parameters and seed, same VAE, oracle and debiasing rows: whatever ran before, cached or rebuilt."""

import numpy as np
import pytest
import torch

from qdgs import shapes
from qdgs.generators.shapes_vae import cached_vae, vae_config

TINY_VAE = {"architecture": {"latent_dim": 6, "internal_size": 16, "width": 16},
            "train": {**vae_config()["train"], "n_images": 32, "batch_size": 8}}
TINY = shapes.Protocol(size=16, n_biased=32, pretrain_epochs=1, finetune_epochs=1, n_test=16)


def _noise(seed: int) -> None:
    """Whatever a notebook ran before: draws from the global generators."""
    torch.manual_seed(seed)
    torch.randn(seed + 1)
    np.random.seed(seed)


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [t.clone() for t in model.state_dict().values()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def _chapter_start(noise: int) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """The VAE, then the oracle, then the global state a later cell would see."""
    _noise(noise)
    state = torch.get_rng_state()
    vae, _ = cached_vae(3, seed=4, output_size=16, config=TINY_VAE, progress_bar=False)
    oracle = shapes.train_oracle(16, 16, 1, seed=4)
    assert torch.equal(torch.get_rng_state(), state), "the VAE or the oracle touched the global RNG"
    return _weights(vae), _weights(oracle), torch.rand(3)


@pytest.mark.parametrize("order", ["rebuilt first", "cached first"])
def test_vae_and_oracle_do_not_depend_on_global_noise_or_on_the_cache(order, monkeypatch, tmp_path):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path / "a"))
    if order == "cached first":
        _chapter_start(noise=0)  # fill the cache; the runs compared below load from it
    first = _chapter_start(noise=1)
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path / ("a" if order == "rebuilt first" else "b")))
    second = _chapter_start(noise=1)  # cached when rebuilt first, rebuilt when cached first
    assert _same(first[0], second[0]) and _same(first[1], second[1]) and torch.equal(first[2], second[2])
    third = _chapter_start(noise=2)
    assert _same(first[0], third[0]) and _same(first[1], third[1])


def test_vae_seed_changes_the_vae(monkeypatch, tmp_path):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path))
    a, _ = cached_vae(3, seed=4, output_size=16, config=TINY_VAE, progress_bar=False)
    b, _ = cached_vae(3, seed=5, output_size=16, config=TINY_VAE, progress_bar=False)
    assert not _same(_weights(a), _weights(b))


def test_vae_recipe_is_in_the_cache_key(monkeypatch, tmp_path):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path))
    a, _ = cached_vae(3, seed=4, output_size=16, config=TINY_VAE, progress_bar=False)
    slower = {**TINY_VAE, "train": {**TINY_VAE["train"], "lr": 1e-4}}
    b, _ = cached_vae(3, seed=4, output_size=16, config=slower, progress_bar=False)
    assert not _same(_weights(a), _weights(b))


def test_debiasing_rows_do_not_depend_on_global_noise():
    syn = shapes.balanced_set(16, seed=1, size=16)
    rows = []
    for noise in (0, 1):
        _noise(noise)
        state = torch.get_rng_state()
        rows.append(shapes.run_debiasing({"+ QDGS": (syn.floats(), syn.shape)}, [0.9], [0], TINY,
                                         progress_bar=False).drop(columns="seconds"))
        assert torch.equal(torch.get_rng_state(), state)
    assert rows[0].equals(rows[1])
