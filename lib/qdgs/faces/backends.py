"""The chapter's backends: the face generator and prompt scorer a profile names, and decoding latents.

Both are loaded through the package-wide registries (:func:`qdgs.generators.load_generator`,
:func:`qdgs.scorers.load_scorer`); the chapter adds what is particular to faces: the offline
scorer is trained here on captioned UTKFace, and every scorer comes with its zero-shot table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from qdgs import generators, scorers
from qdgs.faces.scorer import held_out_zero_shot, train_offline_scorer
from qdgs.params import ParameterError
from qdgs.profiles import FACE_GENERATORS, FACE_SCORERS

__all__ = ["load_generator", "load_scorer", "render"]


def load_generator(name: str, stylegan2_path: str | None = None, device: str | torch.device = "cpu") -> nn.Module:
    """The face generator backend on ``device``: ``dcgan-skewed`` (light-skewed), ``dcgan`` (gan-face-generate) or ``stylegan2``."""
    if name == "dcgan":
        return generators.load_generator("dcgan", device=device)
    if name == "dcgan-skewed":
        return generators.load_generator("dcgan-skewed").to(device)
    if name == "stylegan2":
        return generators.load_generator("stylegan2", path=stylegan2_path or None, device=device)
    raise ParameterError(f"parameter 'generator' got {name!r}; allowed values: {', '.join(map(repr, FACE_GENERATORS))}")


def load_scorer(name: str, steps: int, seed: int = 0, clip_weights: str = "openai",
                progress_bar: bool = True, device: str | torch.device = "cpu") -> tuple[nn.Module, pd.DataFrame]:
    """The prompt scorer backend on ``device`` and its zero-shot accuracy table on held-out UTKFace.

    ``offline-clip`` is trained here on captioned UTKFace (cached, with its table; trained on
    ``device``, stored on the CPU); ``openai-clip`` loads OpenAI's weights (the table is computed
    on the fly).
    """
    if name == "openai-clip":
        scorer = scorers.load_scorer("openai-clip", weights=clip_weights, device=device)
        return scorer, held_out_zero_shot(scorer, seed)
    if name == "offline-clip":
        path = train_offline_scorer(steps, seed, progress_bar, device)
        return (scorers.load_scorer("offline-clip", path=path / "model.pt", device=device),
                pd.read_csv(path / "zero_shot.csv"))
    raise ParameterError(f"parameter 'scorer' got {name!r}; allowed values: {', '.join(map(repr, FACE_SCORERS))}")


@torch.no_grad()
def render(generator: nn.Module, latents: np.ndarray, batch_size: int = 64) -> torch.Tensor:
    """(n, 3, H, W) images in [0, 1] of (n, D) latents, decoded in batches without gradients, on the CPU."""
    device = next(generator.parameters()).device
    return torch.cat([generator(torch.as_tensor(latents[i:i + batch_size], dtype=torch.float32, device=device))
                      .clamp(0, 1).cpu() for i in range(0, len(latents), batch_size)])
