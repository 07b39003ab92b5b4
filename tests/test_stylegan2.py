"""StyleGAN2: NVIDIA-format pickles load into our clean-room network without running pickled code."""

import pickle
import sys

import pytest
import torch

from paper_fixtures import TINY_STYLEGAN2 as TINY
from paper_fixtures import tiny_stylegan2, write_nvidia_pickle
from qdgs.generators.stylegan2 import StyleGAN2, StyleGAN2Faces, _fir, modulated_conv, upfirdn2d, weights_path


def test_nvidia_format_pickle_loads_without_running_its_code(tmp_path):
    original = tiny_stylegan2(TINY)
    write_nvidia_pickle(tmp_path / "g.pkl", original)
    assert not {"torch_utils", "dnnlib"} & set(sys.modules)  # NVIDIA's modules are absent when it loads
    loaded = StyleGAN2.from_pickle(tmp_path / "g.pkl")
    assert loaded.config == TINY
    ws = torch.randn(2, TINY.num_ws, TINY.w_dim)
    assert torch.allclose(loaded.synthesize(ws), original.synthesize(ws), atol=1e-6)
    z = torch.randn(3, TINY.z_dim)
    assert torch.allclose(loaded.mapping(z, 0.7), original.mapping(z, 0.7), atol=1e-6)


def test_pickle_with_foreign_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            import os
            return os.system, ("echo pwned",)

    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"G_ema": Evil()}, f)
    with pytest.raises(RuntimeError, match="posix.system|os.system|nt.system"):
        StyleGAN2.from_pickle(tmp_path / "evil.pkl")


def test_generator_contract_and_gradients():
    torch.manual_seed(0)
    gen = StyleGAN2Faces(StyleGAN2(TINY), n_stats=512)
    z = gen.sample_latents(4, seed=1)
    assert z.shape == (4, 16) and torch.equal(z, gen.sample_latents(4, seed=1))
    z.requires_grad_(True)
    x = gen(z)
    assert x.shape == (4, 3, 16, 16) and 0 <= x.min() and x.max() <= 1
    x.mean().backward()
    assert z.grad.abs().sum() > 0


def test_demodulation_ignores_style_scale_and_upsampling_keeps_constants():
    x, w = torch.randn(2, 4, 8, 8), torch.randn(5, 4, 3, 3)
    s = torch.rand(2, 4) + 0.5
    for up in (1, 2):
        a = modulated_conv(x, w, s, up=up, resample_filter=_fir([1, 3, 3, 1]))
        assert a.shape == (2, 5, 8 * up, 8 * up)
        assert torch.allclose(a, modulated_conv(x, w, 3 * s, up=up, resample_filter=_fir([1, 3, 3, 1])), atol=1e-5)
    const = torch.ones(1, 3, 6, 6)
    up = upfirdn2d(const, _fir([1, 3, 3, 1]), up=2, pad=(2, 1), gain=4)
    assert up.shape == (1, 3, 12, 12) and torch.allclose(up[..., 2:-2, 2:-2], torch.ones(1, 3, 8, 8))


def test_missing_weights_offline_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("QDGS_STYLEGAN2", raising=False)
    with pytest.raises(FileNotFoundError, match="stylegan2-ffhq-256x256.pkl.*place it at"):
        weights_path()
    with pytest.raises(FileNotFoundError, match="download"):
        weights_path(tmp_path / "nope.pkl")
