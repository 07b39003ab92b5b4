"""Small CLIP-architecture scorers trained in the repository: the offline stand-in for OpenAI CLIP.

OpenAI's CLIP weights cannot be downloaded on the machines that build the book, so the ``smoke``
and ``default`` profiles train a small open_clip model from scratch, contrastively, on images
captioned in the paper's prompt vocabulary. The paper's exact prompts then mean something to it.

API (shared by the shapes and faces domains):

- :func:`make_clip` builds an untrained ``open_clip.CLIP`` from ``lib/qdgs/configs/<name>.json``
  (``embed_dim``, ``vision_cfg``, ``text_cfg`` as in open_clip's own model configs).
- :func:`recipe` reads the config's optional ``"train"`` section (keywords of :func:`train_clip`):
  architecture and recipe live in one file, so that file is what keys a trained scorer.
- :func:`train_clip` trains it with a multi-positive InfoNCE over a fixed caption vocabulary,
  drawing batches from ``sample_batch(rng, batch_size) -> (images (B, 3, H, W) in [0, 1],
  positives (B, V) bool)``.
- :class:`OfflineClipScorer` wraps a trained model behind the QDGS scorer interface. It knows the
  captions it was trained on: :meth:`~OfflineClipScorer.understands` answers whether a prompt is
  one of them, and :meth:`~OfflineClipScorer.check_prompts` warns (:class:`UnknownPromptWarning`)
  for each prompt that is not. A small model trained on a fixed vocabulary has no meaning for
  other text; OpenAI CLIP does.
- :func:`save_clip` / :func:`load_clip` / :func:`load_trained` store a trained model with its
  config name and its training vocabulary.
"""

from __future__ import annotations

import inspect
import json
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.tokenizer import SimpleTokenizer
from torch import nn

from qdgs.params import ParameterError
from qdgs.progress import progress as progress_bar
from qdgs.seeds import numpy_rng, seeded_init

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
#: CLIP's normalisation; any fixed one works for a model trained from scratch, this keeps them alike.
MEAN, STD = OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

SampleBatch = Callable[[np.random.Generator, int], tuple[torch.Tensor, torch.Tensor]]


#: The keywords of :func:`train_clip` that a config's ``"train"`` section may set.
RECIPE_KEYS = ("steps", "lr", "batch_size", "weight_decay", "warmup", "pair_weight")


def load_config(name: str) -> dict:
    """The JSON config ``lib/qdgs/configs/<name>.json``, or an error listing the known ones."""
    path = CONFIG_DIR / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.json")))
        raise ParameterError(f"unknown CLIP config '{name}'; known configs: {known}")
    return json.loads(path.read_text())


def recipe(name: str) -> dict[str, Any]:
    """The training recipe of config ``name``: :func:`train_clip`'s keywords, ready to pass as ``**recipe``.

    Its defaults, overridden by the config's optional ``"train"`` section (keys of
    :data:`RECIPE_KEYS`; ``steps`` only when the section sets it). Keeping the recipe in the config
    makes the config the cache key of a trained scorer; sections other than ``"train"`` (a
    domain's data settings) are the domain's to read.
    """
    section = load_config(name).get("train", {})
    unknown = sorted(set(section) - set(RECIPE_KEYS))
    if unknown:
        raise ParameterError(f"{CONFIG_DIR / name}.json: unknown keys {unknown} in its 'train' section; "
                             f"allowed: {', '.join(RECIPE_KEYS)}")
    defaults = {k: p.default for k, p in inspect.signature(train_clip).parameters.items()
                if k in RECIPE_KEYS and p.default is not inspect.Parameter.empty}
    return {**defaults, **section}


def make_clip(name: str, seed: int = 0) -> open_clip.CLIP:
    """An untrained open_clip CLIP with the architecture of config ``name``, initialised from ``seed``.

    The initialisation draws from its own named stream (:func:`qdgs.seeds.seeded_init`), so the
    same seed gives the same model whatever ran before it in the process (a trained scorer, and
    every archive it guides, would otherwise differ between two identical runs).
    """
    cfg = load_config(name)
    with seeded_init(seed, "offline-clip", "init"):
        return open_clip.CLIP(embed_dim=cfg["embed_dim"], vision_cfg=cfg["vision_cfg"], text_cfg=cfg["text_cfg"],
                              quick_gelu=cfg.get("quick_gelu", False))


def image_size(model: open_clip.CLIP) -> int:
    size = model.visual.image_size
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def preprocess(images: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] → (B, 3, size, size), normalised; differentiable (no PIL).

    The resize runs in fp32 even under bf16 autocast (the CPU has no bf16 antialiased resize).
    """
    images = images.float()
    if images.shape[-2:] != (size, size):
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    mean = images.new_tensor(MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(STD).view(1, 3, 1, 1)
    return (images - mean) / std


def _tokenizer(model: open_clip.CLIP) -> SimpleTokenizer:
    return SimpleTokenizer(context_length=model.context_length)


class UnknownPromptWarning(UserWarning):
    """A prompt the in-repo scorer was not trained on: its score means nothing."""


class OfflineClipScorer(nn.Module):
    """A frozen in-repo CLIP behind the scorer interface (unit embeddings, differentiable images).

    Args:
        model: a trained open_clip CLIP (see :func:`make_clip`, :func:`train_clip`).
        vocabulary: the captions it was trained on (:func:`load_trained` reads them from the file
            :func:`save_clip` wrote); empty for an untrained model, which understands nothing.
        tokenizer: its tokenizer; by default open_clip's BPE tokenizer, which ships with the package.
    """

    def __init__(self, model: open_clip.CLIP, vocabulary: Sequence[str] = (),
                 tokenizer: SimpleTokenizer | None = None) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer or _tokenizer(model)
        self.image_size = image_size(model)
        self.vocabulary = tuple(vocabulary)
        self._known = set(map(self._tokens, self.vocabulary))

    def _tokens(self, text: str) -> tuple[int, ...]:
        """The token ids the model reads for ``text`` (case and spacing as the tokenizer normalises them)."""
        return tuple(self.tokenizer([text])[0].tolist())

    def understands(self, prompt: str) -> bool:
        """Whether ``prompt`` is, token for token, one of the captions the scorer was trained on."""
        return self._tokens(prompt) in self._known

    def check_prompts(self, prompts: Sequence[str]) -> list[str]:
        """Warn once per prompt the scorer was not trained on (:class:`UnknownPromptWarning`); return them."""
        unknown = [p for p in dict.fromkeys(prompts) if not self.understands(p)]
        for prompt in unknown:
            warnings.warn(f"the in-repo offline CLIP scorer was not trained on the prompt {prompt!r} and cannot judge "
                          f"it: it knows only its {len(self.vocabulary)} training captions (the chapter lists them). "
                          "Use a prompt from that list, or OpenAI CLIP (scorer openai-clip), which judges any prompt.",
                          UnknownPromptWarning, stacklevel=2)
        return unknown

    def train(self, mode: bool = True) -> OfflineClipScorer:
        """The scorer is frozen: always eval mode."""
        return super().train(False)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images in [0, 1] → (B, E) unit embeddings."""
        return F.normalize(self.model.encode_image(preprocess(images, self.image_size)), dim=-1)

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """P prompts → (P, E) unit embeddings."""
        device = next(self.model.parameters()).device
        return F.normalize(self.model.encode_text(self.tokenizer(prompts).to(device)), dim=-1)


def multi_positive_infonce(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE where an image may match several captions and a caption several images.

    Plain CLIP loss assumes one positive per row; with a fixed vocabulary many images share a
    caption, so each side maximises the total probability of all its positives instead.

    Args:
        logits: (B, V) scaled image–caption similarities.
        positives: (B, V) bool, True where the caption describes the image.
    """
    masked = logits.masked_fill(~positives, -math.inf)
    has_img = positives.any(dim=1)
    image_side = (logits.logsumexp(dim=1) - masked.logsumexp(dim=1))[has_img].mean()
    has_txt = positives.any(dim=0)
    text_side = (logits.logsumexp(dim=0) - masked.logsumexp(dim=0))[has_txt].mean()
    return (image_side + text_side) / 2


def pair_loss(model: open_clip.CLIP, cosine: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of every image–caption pair, on ``logit_scale · cos + logit_bias``.

    Args:
        model: the CLIP being trained; its ``logit_bias`` is used when it has one (else 0).
        cosine: (B, V) cosine similarities.
        positives: (B, V) targets: bool, or float in [0, 1] for graded captions (a half-purple shape).
    """
    bias = getattr(model, "logit_bias", None)
    logits = model.logit_scale.exp().clamp(max=100) * cosine + (0.0 if bias is None else bias)
    return F.binary_cross_entropy_with_logits(logits, positives.float())


def train_clip(model: open_clip.CLIP, sample_batch: SampleBatch, vocabulary: Sequence[str], steps: int,
               lr: float = 1e-3, seed: int = 0, progress: bool = True, batch_size: int = 128,
               weight_decay: float = 0.1, warmup: float = 0.05, pair_weight: float = 0.0) -> list[float]:
    """Train ``model`` in place on captioned batches, on the model's device; return the loss of every step.

    Args:
        model: an open_clip CLIP (see :func:`make_clip`); batches are drawn on the CPU (the same
            draws whatever the device) and moved to the model's device.
        sample_batch: draws ``(images (B, 3, H, W) in [0, 1], positives (B, V))``, bool or float
            targets in [0, 1]; the InfoNCE counts a caption as positive above 0.5, the pair loss
            uses the graded target.
        vocabulary: the V captions the positives refer to (the paper's prompts among them).
        steps: optimiser steps.
        lr: peak AdamW learning rate (linear warm-up, then cosine decay).
        seed: seeds the batches and any draw of the global torch stream during training (both
            named streams of :mod:`qdgs.seeds`; the caller's global RNG state is left as it was).
        progress: show a progress bar.
        batch_size: images per step.
        weight_decay: AdamW weight decay.
        warmup: fraction of steps spent warming up.
        pair_weight: weight of an added per-pair sigmoid loss (SigLIP-style binary cross-entropy on
            every image–caption logit). The multi-positive InfoNCE is satisfied by matching *any*
            positive, so an image may match its colour caption and ignore its shape caption; the
            pair loss makes every caption a yes/no question (the shapes scorer needs it).
    """
    rng = numpy_rng(seed, "offline-clip", "batches")
    device = next(model.parameters()).device
    tokens = _tokenizer(model)(list(vocabulary)).to(device)
    size = image_size(model)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    warm = max(1, int(warmup * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, steps)))))
    model.train()
    losses = []
    bar = progress_bar(range(steps), enabled=progress, desc="training CLIP scorer")
    with seeded_init(seed, "offline-clip", "train"):  # dropout and the like draw from the global stream
        for _ in bar:
            images, positives = (t.to(device) for t in sample_batch(rng, batch_size))
            img = F.normalize(model.encode_image(preprocess(images, size)), dim=-1)
            txt = F.normalize(model.encode_text(tokens), dim=-1)
            logits = model.logit_scale.exp().clamp(max=100) * img @ txt.T
            loss = multi_positive_infonce(logits, positives > 0.5)
            if pair_weight:
                loss = loss + pair_weight * pair_loss(model, img @ txt.T, positives)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    model.eval()
    return losses


def save_clip(model: open_clip.CLIP, path: str | Path, config_name: str, vocabulary: Sequence[str]) -> None:
    """Write a trained model's weights (as CPU tensors), the name of its architecture config and the captions
    it was trained on (the ``vocabulary`` given to :func:`train_clip`) to one ``.pt`` file."""
    torch.save({"config": config_name, "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                "vocabulary": list(vocabulary)}, path)


def _read(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no offline CLIP weights at {path}: train them with train_clip "
                                "(the chapter notebooks do it and cache the result)")
    return torch.load(path, map_location="cpu", weights_only=True)


def _rebuild(saved: dict) -> open_clip.CLIP:
    model = make_clip(saved["config"])
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def load_clip(path: str | Path) -> open_clip.CLIP:
    """Rebuild a model written by :func:`save_clip` on the CPU (``.to(device)`` it), or say how to make one."""
    return _rebuild(_read(path))


def load_trained(path: str | Path) -> OfflineClipScorer:
    """The scorer of a file written by :func:`save_clip`, knowing the captions it was trained on."""
    saved = _read(path)
    if "vocabulary" not in saved:
        raise ValueError(f"{path} was written before offline scorers recorded their training captions: delete it "
                         "(or its artifact directory) and rerun the chapter, which retrains it")
    return OfflineClipScorer(_rebuild(saved), saved["vocabulary"])
