"""The paper's prompt scorer: OpenAI CLIP ViT-B/32 through open_clip (``ViT-B-32-quickgelu``, ``openai``).

The ``paper`` profile uses it; it needs the weights (about 600 MB) from the Hugging Face hub
(``timm/vit_base_patch32_clip_224.openai``) or a local checkpoint file. On an offline machine the
load fails at once with one message saying what to download, instead of hanging on the network.

As a QDGS scorer, :meth:`OpenAIClipScorer.encode_image` takes generator output in [0, 1] at any
size and applies CLIP's preprocessing differentiably: bicubic resize of the shorter side to the
model's input size, centre crop, and CLIP's mean/std normalisation (a PIL transform would cut the
gradient the search needs).
"""

from __future__ import annotations

import os
import pickle

import torch
import torch.nn.functional as F
from torch import nn

MODEL_NAME = "ViT-B-32-quickgelu"
PRETRAINED = "openai"
HF_HUB_ID = "timm/vit_base_patch32_clip_224.openai"
#: How to get the weights, as every missing-weights message says it.
DOWNLOAD_HINT = (f"On a machine with internet, run once: python -c \"import open_clip; open_clip.create_model("
                 f"'{MODEL_NAME}', pretrained='{PRETRAINED}')\" (downloads {HF_HUB_ID}, about 600 MB, into the "
                 "Hugging Face cache), or pass the path of a ViT-B-32 checkpoint file or of an open_clip model "
                 f"folder (huggingface-cli download {HF_HUB_ID} --local-dir DIR)")
#: What a missing, unreachable or corrupt weight file raises: open_clip wraps hub and download
#: failures, an unknown tag and tensors that do not fit the architecture in RuntimeError; file and
#: network errors are OSError; a truncated or foreign checkpoint fails to unpickle. Anything else
#: (a TypeError, a KeyError) is a bug and propagates as it is.
WEIGHT_ERRORS = (RuntimeError, OSError, EOFError, pickle.UnpicklingError)


class OpenAIClipScorer(nn.Module):
    """A frozen open_clip model behind the QDGS scorer interface.

    Args:
        model: an open_clip ``CLIP`` model.
        tokenizer: its tokenizer (``open_clip.get_tokenizer``).
    """

    def __init__(self, model: nn.Module, tokenizer) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        size = model.visual.image_size
        self.image_size = size[0] if isinstance(size, (tuple, list)) else int(size)
        from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD  # the model is open_clip's

        mean = getattr(model.visual, "image_mean", None) or OPENAI_DATASET_MEAN
        std = getattr(model.visual, "image_std", None) or OPENAI_DATASET_STD
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> OpenAIClipScorer:
        """The scorer is frozen: always eval mode."""
        return super().train(False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] → (B, 3, S, S) CLIP input (resize shorter side, centre crop, normalise).

        The resize runs in fp32 even under bf16 autocast (the CPU has no bf16 antialiased resize).
        """
        images = images.float()
        h, w = images.shape[-2:]
        scale = self.image_size / min(h, w)
        size = (max(self.image_size, round(h * scale)), max(self.image_size, round(w * scale)))
        x = F.interpolate(images, size=size, mode="bicubic", align_corners=False, antialias=True)
        top, left = (size[0] - self.image_size) // 2, (size[1] - self.image_size) // 2
        x = x[..., top:top + self.image_size, left:left + self.image_size]
        return (x - self.mean) / self.std

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images in [0, 1] → (B, E) unit embeddings (differentiable)."""
        return F.normalize(self.model.encode_image(self.preprocess(images)), dim=-1)

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """P prompts → (P, E) unit embeddings."""
        tokens = self.tokenizer(list(prompts)).to(self.mean.device)
        return F.normalize(self.model.encode_text(tokens), dim=-1)


def load_openai_clip(pretrained: str = PRETRAINED, model_name: str = MODEL_NAME,
                     device: str | torch.device = "cpu") -> OpenAIClipScorer:
    """Load CLIP with weights; one clear error when they cannot be had.

    Args:
        pretrained: ``"openai"`` (download or the local Hugging Face cache), a checkpoint file, or an
            open_clip model folder (the hub repository's layout: ``open_clip_config.json`` beside the
            weights), whose config then names the architecture instead of ``model_name``.
        model_name: the open_clip architecture (the paper's ``ViT-B-32-quickgelu``).
        device: where to put the model.

    Raises:
        RuntimeError: when the weights are neither cached nor downloadable, saying what to do.
    """
    import open_clip

    reason = missing_weights(pretrained)
    if reason:
        _no_weights(pretrained, model_name, reason)
    name, weights = (f"local-dir:{pretrained}", None) if os.path.isdir(pretrained) else (model_name, pretrained)
    try:  # OpenAI's weights were trained with QuickGELU, whatever a folder's config says
        model = open_clip.create_model(name, pretrained=weights, device=device, require_pretrained=True,
                                       force_quick_gelu=True)
    except torch.OutOfMemoryError:
        raise
    except WEIGHT_ERRORS as err:
        _no_weights(pretrained, model_name, f"{type(err).__name__}: {err}", err)
    return OpenAIClipScorer(model, open_clip.get_tokenizer(name))


def missing_weights(pretrained: str = PRETRAINED) -> str | None:
    """Why :func:`load_openai_clip` would find no ``pretrained`` weights, checked without loading or
    downloading anything; None when they are at hand (or downloadable: the hub needs no hash)."""
    if pretrained != PRETRAINED:
        return None if os.path.exists(pretrained) else f"no checkpoint file or model folder at {pretrained}"
    if os.environ.get("HF_HUB_OFFLINE") and not _cached():
        return "HF_HUB_OFFLINE is set and the weights are not in the local cache"
    return None


def _cached() -> bool:
    """Whether the Hugging Face cache already holds the OpenAI ViT-B/32 weights."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(HF_HUB_ID, "open_clip_pytorch_model.bin"), str)


def _no_weights(pretrained: str, model_name: str, reason: str, cause: Exception | None = None) -> None:
    """Raise the one error that says how to get the weights."""
    raise RuntimeError(f"could not load CLIP weights '{pretrained}' for {model_name} ({reason}). {DOWNLOAD_HINT} "
                       "(pretrained=<path>); unset HF_HUB_OFFLINE to allow the download") from cause
