"""IR-ResNet face-recognition backbones (IR-18, IR-50, IR-101) with 512-d embeddings.

The improved-residual ("IR") block of ArcFace (Deng et al., CVPR 2019) and AdaFace (Kim et al.,
CVPR 2022): BN → conv3×3 → BN → PReLU → conv3×3 (stride) → BN, plus a projection shortcut when
the shape changes. Four stages halve the resolution, so a 112 px face ends as a 7 × 7 map that a
BN → flatten → linear → BN output layer turns into the embedding; keeping the spatial layout
(no global pooling) is what makes these backbones strong on aligned faces.

Two knobs make the same architecture usable on a CPU: ``width`` scales every stage's channels
(64 is the paper's), and ``stem_stride`` 2 halves the input once more before the stages (the
paper's is 1). The embedding is returned unnormalised: its norm is the quality signal AdaFace uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

#: Blocks per stage of each depth, as in InsightFace's ``iresnet`` and AdaFace's ``net.py``.
DEPTHS = {18: (2, 2, 2, 2), 50: (3, 4, 14, 3), 101: (3, 13, 30, 3)}


@dataclass(frozen=True)
class BackboneConfig:
    """What determines an IR-ResNet backbone.

    Args:
        depth: 18, 50 or 101.
        width: channels of the first stage (stages use width × 1, 2, 4, 8); the paper uses 64.
        input_size: side of the square input faces in pixels (a multiple of 16 · stem_stride).
        stem_stride: 1 as in the paper; 2 makes a CPU-sized model (a quarter of the compute).
        embedding_dim: size of the face embedding.
    """

    depth: int = 101
    width: int = 64
    input_size: int = 112
    stem_stride: int = 1
    embedding_dim: int = 512

    def __post_init__(self) -> None:
        if self.depth not in DEPTHS:
            raise ValueError(f"IR-ResNet depth must be one of {sorted(DEPTHS)}, got {self.depth}")
        if self.input_size % (16 * self.stem_stride):
            raise ValueError(f"input_size {self.input_size} must be a multiple of 16 × stem_stride "
                             f"({16 * self.stem_stride}), e.g. 64 or 112")

    def as_dict(self) -> dict:
        """The config as a JSON-serialisable dict (for cache keys and checkpoints)."""
        return asdict(self)


class IRBlock(nn.Module):
    """One improved residual block; ``stride`` 2 halves the resolution."""

    def __init__(self, inp: int, out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(inp),
            nn.Conv2d(inp, out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out),
            nn.PReLU(out),
            nn.Conv2d(out, out, 3, stride, 1, bias=False),
            nn.BatchNorm2d(out),
        )
        self.shortcut = (nn.Identity() if inp == out and stride == 1 else
                         nn.Sequential(nn.Conv2d(inp, out, 1, stride, bias=False), nn.BatchNorm2d(out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class IResNet(nn.Module):
    """An IR-ResNet mapping (B, 3, S, S) faces in [0, 1] to (B, embedding_dim) embeddings.

    Inputs are normalised internally to [-1, 1] (the InsightFace convention), so callers pass the
    same [0, 1] images everything else in the project uses.
    """

    def __init__(self, config: BackboneConfig = BackboneConfig()) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, config.stem_stride, 1, bias=False),
                                  nn.BatchNorm2d(w), nn.PReLU(w))
        blocks, inp = [], w
        for stage, n in enumerate(DEPTHS[config.depth]):
            out = w * 2 ** stage
            for i in range(n):
                blocks.append(IRBlock(inp, out, 2 if i == 0 else 1))
                inp = out
        self.blocks = nn.Sequential(*blocks)
        side = config.input_size // (16 * config.stem_stride)
        self.output = nn.Sequential(nn.BatchNorm2d(inp), nn.Flatten(),
                                    nn.Linear(inp * side * side, config.embedding_dim),
                                    nn.BatchNorm1d(config.embedding_dim))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Embed (B, 3, S, S) images in [0, 1]; returns (B, embedding_dim), not normalised."""
        size = self.config.input_size
        if images.shape[-2:] != (size, size):
            raise ValueError(f"expected {size}×{size} faces, got {tuple(images.shape[-2:])}: "
                             f"resize them first (qdgs.recognition.embed(model, images, size={size}))")
        return self.output(self.blocks(self.stem(images * 2 - 1)))


def iresnet(depth: int = 101, width: int = 64, input_size: int = 112, stem_stride: int = 1,
            embedding_dim: int = 512) -> IResNet:
    """Build IR-18/50/101 (see :class:`BackboneConfig` for the arguments)."""
    return IResNet(BackboneConfig(depth, width, input_size, stem_stride, embedding_dim))
