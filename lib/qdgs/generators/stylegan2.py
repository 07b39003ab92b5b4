"""The paper's face generator: StyleGAN2 trained on FFHQ at 256 × 256, searched in (normalised) W space.

NVIDIA distributes the network as a pickle (``stylegan2-ffhq-256x256.pkl``) whose objects are
"persistent" classes: each carries its own source code, which ``pickle.load`` would import and
run. We do not vendor or execute NVIDIA's code (its licence is non-commercial, and running code
from a downloaded file is a security risk). Instead:

1. :mod:`qdgs.generators.nvidia_pickle` reads the pickle into inert stubs with the project's
   restricted unpickler (no pickled code runs) and flattens the ``G_ema`` stub into a
   ``{name: tensor}`` dict with NVIDIA's parameter names.
2. :class:`StyleGAN2`, written here from the StyleGAN2 paper (Karras et al., CVPR 2020: mapping
   network, modulated / demodulated convolutions, skip-architecture RGB outputs, FIR-filtered
   upsampling), uses those names, so the tensors load directly.

:class:`StyleGAN2Faces` wraps it as a QDGS generator whose 512-d latent is W normalised per
coordinate, ``q = (w − w_avg) / std(w)``, as in the paper's code: a standard scale for the
search's step sizes and for the latent-norm penalty.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from qdgs import downloads
from qdgs.device import resolve_device
from qdgs.generators.nvidia_pickle import find_stub, read_network_pickle, state_dict_from_stub

FILENAME = "stylegan2-ffhq-256x256.pkl"
URL = f"https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/{FILENAME}"
#: NVIDIA's pretrained generators that load here. NVIDIA publishes no checksum for its pickles and
#: none has been recorded in this table yet (``sha256=None``): a download needs the sha256 from the
#: user (``sha256=`` or ``$QDGS_STYLEGAN2_SHA256``); a file the user downloaded is passed by path.
PRETRAINED = {"ffhq-256": downloads.WeightFile(FILENAME, URL, sha256=None, size="about 350 MB")}


# --------------------------------------------------------------------------------------------
# The network, from the paper (names follow NVIDIA's so that the weights load as they are)
# --------------------------------------------------------------------------------------------

def upfirdn2d(x: torch.Tensor, f: torch.Tensor, up: int = 1, pad: tuple[int, int] = (0, 0),
              gain: float = 1.0) -> torch.Tensor:
    """Upsample by zero insertion, pad, and convolve each channel with the 2-D FIR filter ``f``."""
    b, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(b, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(b, c, h * up, w * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    k = (f * gain).flip([0, 1])[None, None].repeat(c, 1, 1, 1).to(x)
    return F.conv2d(x, k, groups=c)


def _lrelu(x: torch.Tensor, gain: float, clamp: float | None) -> torch.Tensor:
    x = F.leaky_relu(x, 0.2) * gain
    return x.clamp(-clamp, clamp) if clamp is not None else x


class FullyConnected(nn.Module):
    """A dense layer with equalised learning rate (weights scaled at run time by ``weight_gain``)."""

    def __init__(self, in_features: int, out_features: int, lr_multiplier: float = 1.0, bias_init: float = 0.0,
                 lrelu: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)) / lr_multiplier)
        self.weight_gain, self.bias_gain, self.lrelu = lr_multiplier / math.sqrt(in_features), lr_multiplier, lrelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return _lrelu(x, math.sqrt(2), None) if self.lrelu else x


class MappingNetwork(nn.Module):
    """z (B, z_dim) → w (B, w_dim): pixel-norm, then ``num_layers`` leaky-ReLU dense layers at lr × 0.01."""

    def __init__(self, z_dim: int, w_dim: int, num_layers: int, lr_multiplier: float = 0.01) -> None:
        super().__init__()
        self.num_layers = num_layers
        for i in range(num_layers):
            self.add_module(f"fc{i}", FullyConnected(z_dim if i == 0 else w_dim, w_dim, lr_multiplier, lrelu=True))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        return self.w_avg.lerp(x, truncation_psi) if truncation_psi != 1 else x


def modulated_conv(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                   up: int = 1, resample_filter: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample modulated (and demodulated) convolution, as grouped conv over the batch.

    Args:
        x: (B, I, H, W) features.
        weight: (O, I, k, k) shared weights.
        styles: (B, I) per-sample channel scales.
        demodulate: normalise each output channel's weights to unit norm (StyleGAN2's fix for
            the droplet artefacts of AdaIN).
        up: 2 for a transposed conv upsampling followed by the FIR filter, else 1.
        resample_filter: (4, 4) FIR filter for ``up`` = 2.
    """
    b, i, h, w = x.shape
    o, _, k, _ = weight.shape
    wts = weight[None] * styles[:, None, :, None, None]
    if demodulate:
        wts = wts * (wts.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    x = x.reshape(1, b * i, h, w)
    if up == 1:
        out = F.conv2d(x, wts.reshape(b * o, i, k, k), padding=k // 2, groups=b)
    else:  # transposed conv, then blur: (2H + 1) + 2 · pad − 3 = 2H
        wts = wts.transpose(1, 2).reshape(b * i, o, k, k)
        out = F.conv_transpose2d(x, wts, stride=up, groups=b)
        taps = resample_filter.shape[0]
        pad0 = k // 2 + (taps + up - 1) // 2 - (k - 1)  # both 1 for k = 3 and 4 taps
        pad1 = k // 2 + (taps - up) // 2 - (k - up)
        out = upfirdn2d(out, resample_filter, pad=(pad0, pad1), gain=up**2)
    return out.reshape(b, o, *out.shape[2:])


class SynthesisLayer(nn.Module):
    """Modulated 3 × 3 conv + constant noise + bias + leaky ReLU (× √2), clamped."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: int, up: int = 1,
                 conv_clamp: float | None = 256) -> None:
        super().__init__()
        self.up, self.conv_clamp = up, conv_clamp
        self.affine = FullyConnected(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.register_buffer("resample_filter", _fir([1, 3, 3, 1]))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = modulated_conv(x, self.weight, self.affine(w), up=self.up, resample_filter=self.resample_filter)
        x = x + self.noise_const * self.noise_strength
        return _lrelu(x + self.bias[None, :, None, None], math.sqrt(2), self.conv_clamp)


class ToRGB(nn.Module):
    """Modulated 1 × 1 conv to RGB without demodulation (the skip architecture's per-scale output)."""

    def __init__(self, in_ch: int, w_dim: int, conv_clamp: float | None = 256) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(3, in_ch, 1, 1))
        self.bias = nn.Parameter(torch.zeros(3))
        self.weight_gain = 1 / math.sqrt(in_ch)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = modulated_conv(x, self.weight, self.affine(w) * self.weight_gain, demodulate=False)
        x = x + self.bias[None, :, None, None]
        return x.clamp(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else x


class SynthesisBlock(nn.Module):
    """One resolution: (const or upsampling conv) + conv + ToRGB, added to the upsampled image."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: int, conv_clamp: float | None) -> None:
        super().__init__()
        self.first = in_ch == 0
        if self.first:
            self.const = nn.Parameter(torch.randn(out_ch, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_ch, out_ch, w_dim, resolution, up=2, conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(out_ch, out_ch, w_dim, resolution, conv_clamp=conv_clamp)
        self.torgb = ToRGB(out_ch, w_dim, conv_clamp)
        self.register_buffer("resample_filter", _fir([1, 3, 3, 1]))
        self.num_conv = 1 if self.first else 2

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor):
        if self.first:
            x = self.const[None].expand(len(ws), -1, -1, -1)
            x = self.conv1(x, ws[:, 0])
        else:
            x = self.conv1(self.conv0(x, ws[:, 0]), ws[:, 1])
        y = self.torgb(x, ws[:, self.num_conv])
        img = y if img is None else upfirdn2d(img, self.resample_filter, up=2, pad=(2, 1), gain=4) + y
        return x, img


def _fir(taps: list[float]) -> torch.Tensor:
    f = torch.tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


@dataclass(frozen=True)
class StyleGAN2Config:
    """Architecture of a StyleGAN2 generator (read from a pickle's tensor shapes, or set for tests).

    Args:
        z_dim: input noise size.
        w_dim: intermediate latent size.
        mapping_layers: dense layers of the mapping network.
        channels: feature channels per resolution, 4, 8, …, the output resolution.
        conv_clamp: activation clamp of the synthesis layers (None = off).
    """

    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    channels: tuple[tuple[int, int], ...] = ((4, 512), (8, 512), (16, 512), (32, 512), (64, 512),
                                              (128, 256), (256, 128))
    conv_clamp: float | None = 256

    @property
    def resolution(self) -> int:
        return self.channels[-1][0]

    @property
    def num_ws(self) -> int:
        return 2 * len(self.channels)


class StyleGAN2(nn.Module):
    """StyleGAN2 generator: ``mapping`` (z → w) and ``synthesis`` (per-layer w → image in [-1, 1])."""

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        self.config = config
        self.mapping = MappingNetwork(config.z_dim, config.w_dim, config.mapping_layers)
        self.synthesis = nn.Module()
        prev = 0
        for res, ch in config.channels:
            self.synthesis.add_module(f"b{res}", SynthesisBlock(prev, ch, config.w_dim, res, config.conv_clamp))
            prev = ch

    def synthesize(self, ws: torch.Tensor) -> torch.Tensor:
        """(B, num_ws, w_dim) per-layer latents → (B, 3, R, R) images in about [-1, 1] (constant noise)."""
        x = img = None
        idx = 0
        for res, _ in self.config.channels:
            block = getattr(self.synthesis, f"b{res}")
            x, img = block(x, img, ws[:, idx:idx + block.num_conv + 1])
            idx += block.num_conv
        return img

    @classmethod
    def from_pickle(cls, path: str | Path) -> StyleGAN2:
        """Build from an NVIDIA network pickle (its ``G_ema``) without running any of its code."""
        stub = read_network_pickle(path)
        state = state_dict_from_stub(stub)
        synthesis = find_stub(stub, "synthesis")
        resolutions = sorted(int(k[1:]) for k in synthesis.state["_modules"] if k.startswith("b"))
        architecture = find_stub(stub, f"synthesis.b{resolutions[-1]}").state.get("architecture", "skip")
        if architecture != "skip":
            raise RuntimeError(f"{path}: only the skip architecture of StyleGAN2's generator is supported")
        clamp = find_stub(stub, f"synthesis.b{resolutions[-1]}.conv1").state.get("conv_clamp")
        config = StyleGAN2Config(
            z_dim=state["mapping.fc0.weight"].shape[1], w_dim=state["mapping.w_avg"].shape[0],
            mapping_layers=sum(1 for k in state if k.startswith("mapping.fc") and k.endswith(".weight")),
            channels=tuple((r, state[f"synthesis.b{r}.conv1.weight"].shape[0]) for r in resolutions),
            conv_clamp=None if clamp is None else float(clamp))
        model = cls(config)
        mapping_lr = float(find_stub(stub, "mapping.fc0").state.get("bias_gain", 0.01))
        for i in range(config.mapping_layers):
            fc = getattr(model.mapping, f"fc{i}")
            fc.weight_gain, fc.bias_gain = mapping_lr / math.sqrt(fc.weight.shape[1]), mapping_lr
        expected = set(model.state_dict())
        state = {k: v for k, v in state.items() if k in expected}
        missing = expected - set(state)
        if missing:
            raise RuntimeError(f"{path} lacks {len(missing)} StyleGAN2 tensors (e.g. {sorted(missing)[0]}): "
                               f"use NVIDIA's {FILENAME}")
        model.load_state_dict(state)
        return model.eval().requires_grad_(False)


# --------------------------------------------------------------------------------------------
# Finding the weights, and the QDGS generator
# --------------------------------------------------------------------------------------------

def weights_path(path: str | Path | None = None, download: bool | None = None, timeout: float = 30.0,
                 sha256: str | None = None) -> Path:
    """Locate ``stylegan2-ffhq-256x256.pkl``: ``path``, ``$QDGS_STYLEGAN2``, the cache, or a checked download.

    Args:
        path: an explicit file.
        download: fetch from NVIDIA into the artifact cache when absent; default: unless
            ``HF_HUB_OFFLINE`` or ``QDGS_OFFLINE`` is set. A download is kept only if its sha256
            matches, and it needs one: :data:`PRETRAINED` records none (see there).
        timeout: seconds before a download attempt gives up (nothing hangs).
        sha256: the file's expected digest (default ``$QDGS_STYLEGAN2_SHA256``, else the table's);
            when known, a local or cached file is checked against it too.

    Raises:
        FileNotFoundError: saying where to put the file when it is absent and cannot be fetched.
        RuntimeError: the file's sha256 differs from the expected one.
    """
    return downloads.weights_file(PRETRAINED["ffhq-256"], "StyleGAN2-FFHQ-256 weights", path, env="QDGS_STYLEGAN2",
                                  sha256=sha256 or os.environ.get("QDGS_STYLEGAN2_SHA256"),
                                  download_missing=download, timeout=timeout)


class StyleGAN2Faces(nn.Module):
    """StyleGAN2 as a QDGS generator over normalised W: ``q (B, 512) → (B, 3, R, R)`` in [0, 1].

    ``w = w_avg + q · std(w)`` (one ``w`` broadcast to every layer), where ``std(w)`` is measured on
    ``n_stats`` mapped random ``z``. Random latents are truncated (ψ = 0.7), as in the paper's code.

    Args:
        model: a loaded :class:`StyleGAN2`.
        truncation: ψ of :meth:`sample_latents`.
        n_stats: ``z`` samples for ``std(w)``.
    """

    def __init__(self, model: StyleGAN2, truncation: float = 0.7, n_stats: int = 10_000) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.truncation = truncation
        self.latent_dim = model.config.w_dim
        with torch.no_grad():
            z = torch.randn(n_stats, model.config.z_dim, generator=torch.Generator().manual_seed(0))
            ws = model.mapping(z)
        self.register_buffer("w_std", ws.std(0))

    @classmethod
    def load(cls, path: str | Path | None = None, sha256: str | None = None, device: str | torch.device = "cpu",
             **kwargs: Any) -> StyleGAN2Faces:
        """Load NVIDIA's FFHQ-256 weights (see :func:`weights_path` for ``path`` and ``sha256``) onto ``device``.

        The weights and the ``std(w)`` statistics are made on the CPU, so they are the same bits
        whichever device the generator then runs on.
        """
        return cls(StyleGAN2.from_pickle(weights_path(path, sha256=sha256)), **kwargs).to(resolve_device(device))

    def train(self, mode: bool = True) -> StyleGAN2Faces:
        """The generator is frozen: always eval mode."""
        return super().train(False)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        w = self.model.mapping.w_avg + q * self.w_std
        ws = w[:, None].expand(-1, self.model.config.num_ws, -1)
        return (self.model.synthesize(ws).clamp(-1, 1) + 1) / 2

    def sample_latents(self, n: int, seed: int) -> torch.Tensor:
        """(n, 512) normalised W of truncated random samples, reproducible from ``seed``."""
        z = torch.randn(n, self.model.config.z_dim, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            w = self.model.mapping(z.to(self.w_std.device), truncation_psi=self.truncation)
        return (w - self.model.mapping.w_avg) / self.w_std

