"""Training a recognition backbone with a margin head: SGD, the paper's schedule, batched augmentation.

The paper (following AdaFace) trains IR-101 with SGD, lr 0.01, momentum 0.9, weight decay 5e-4,
batch 64, 26 epochs with the learning rate divided by 10 at epochs 12, 20 and 24; each of three
augmentations (low resolution, crop, photometric) is applied with probability 0.2. Here the
milestones scale with the epoch count, and an optional linear warm-up of the learning rate and of
the margin makes short CPU runs converge (see :mod:`qdgs.recognition.heads`).

Training is resumable: after every epoch the backbone, head, optimizer and history are written
atomically; a rerun with the same checkpoint directory continues from the last finished epoch and
ends exactly where an uninterrupted run would: every random draw comes from a named
:mod:`qdgs.seeds` stream of (seed, epoch), never from the global RNG, so neither what ran before
nor where a run was split changes the result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from qdgs.cache import atomic_write
from qdgs.progress import progress
from qdgs.recognition.heads import MarginHead, make_head
from qdgs.recognition.identities import FaceSet
from qdgs.recognition.iresnet import BackboneConfig, IResNet
from qdgs.seeds import seeded_init, torch_generator

#: The paper's learning-rate milestones, as fractions of its 26 epochs.
PAPER_MILESTONES = (12 / 26, 20 / 26, 24 / 26)
SCHEDULES = ("paper", "cosine")
#: The :mod:`qdgs.seeds` stream name of a training run's initialisation, batch order and augmentation.
_STREAM = "recognition-train"


@dataclass(frozen=True)
class TrainConfig:
    """How a backbone is trained.

    Args:
        head: ``"adaface"``, ``"arcface"`` or ``"cosface"``.
        scale: the head's s.
        margin: the head's m.
        h: AdaFace's h.
        epochs: passes over the data.
        batch_size: faces per step (the paper: 64).
        lr: peak learning rate (the paper: 0.01).
        schedule: ``"paper"`` (÷10 at 12/26, 20/26, 24/26 of the epochs) or ``"cosine"``.
        warmup_epochs: linear learning-rate warm-up (0 in the paper).
        margin_warmup_epochs: linear ramp of the margin from 0 (0 in the paper).
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        augment_p: probability of each augmentation (low resolution, crop, photometric).
        seed: seeds initialisation, batch order and augmentation.
    """

    head: str = "adaface"
    scale: float = 64.0
    margin: float = 0.4
    h: float = 0.333
    epochs: int = 26
    batch_size: int = 64
    lr: float = 0.01
    schedule: str = "paper"
    warmup_epochs: float = 0.0
    margin_warmup_epochs: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augment_p: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.epochs < 1 or self.batch_size < 2 or self.lr <= 0:
            raise ValueError("training needs epochs ≥ 1, batch_size ≥ 2 and lr > 0")

    def lr_at(self, step: int, steps_per_epoch: int) -> float:
        """The learning rate of optimisation step ``step`` (counted from 0 over the whole run)."""
        epoch = step / steps_per_epoch
        if self.warmup_epochs and epoch < self.warmup_epochs:
            return self.lr * (step + 1) / (self.warmup_epochs * steps_per_epoch)
        if self.schedule == "cosine":
            done = (epoch - self.warmup_epochs) / max(self.epochs - self.warmup_epochs, 1e-9)
            return self.lr * 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))
        milestones = [round(f * self.epochs) for f in PAPER_MILESTONES]
        return self.lr * 0.1 ** sum(int(epoch) >= m for m in milestones)

    def margin_scale_at(self, step: int, steps_per_epoch: int) -> float:
        """Fraction of the full margin used at ``step`` (the margin warm-up)."""
        if not self.margin_warmup_epochs:
            return 1.0
        return min(1.0, (step + 1) / (self.margin_warmup_epochs * steps_per_epoch))


def augment(images: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Flip plus the paper's three augmentations, each on a random fraction ``p`` of the batch.

    Args:
        images: (B, 3, S, S) float faces in [0, 1].
        p: probability of each of low resolution, crop and photometric change.
        gen: the random generator (seeded by the trainer for reproducibility).

    Returns:
        (B, 3, S, S) augmented faces in [0, 1].
    """
    b, _, s, _ = images.shape

    def pick(prob: float) -> torch.Tensor:
        return torch.rand(b, generator=gen) < prob

    def u(lo: float, hi: float, n: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    x = torch.where(pick(0.5)[:, None, None, None], images.flip(-1), images)
    low = pick(p).nonzero()[:, 0].tolist()
    for i, side in zip(low, u(0.2, 0.8, len(low)).mul(s).round().int().tolist()):  # AdaFace: 0.2–1.0 of the side
        small = F.interpolate(x[i:i + 1], size=(side, side), mode="bilinear", antialias=True, align_corners=False)
        x[i] = F.interpolate(small, size=(s, s), mode="bilinear", align_corners=False)[0]
    crop = pick(p)
    if crop.any():  # zoom into a random sub-square (scale 0.6–1) as a random resized crop would
        n = int(crop.sum())
        scale = u(0.6, 1.0, n)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = scale
        theta[:, :, 2] = (torch.rand(n, 2, generator=gen) * 2 - 1) * (1 - scale)[:, None]
        grid = F.affine_grid(theta, [n, 3, s, s], align_corners=False)
        x[crop] = F.grid_sample(x[crop], grid, mode="bilinear", padding_mode="border", align_corners=False)
    photo = pick(p)
    if photo.any():  # brightness, contrast, saturation ±50 % (AdaFace's ColorJitter)
        n = int(photo.sum())
        y = x[photo] * u(0.5, 1.5, n)[:, None, None, None]
        mean = y.mean((1, 2, 3), keepdim=True)
        y = (y - mean) * u(0.5, 1.5, n)[:, None, None, None] + mean
        gray = y.mean(1, keepdim=True)
        x[photo] = (y - gray) * u(0.5, 1.5, n)[:, None, None, None] + gray
    return x.clamp(0, 1)


@dataclass
class Trained:
    """A trained backbone, its head and the per-epoch ``history`` (loss, accuracy, lr, images/s, …)."""

    backbone: IResNet
    head: MarginHead
    history: pd.DataFrame


def train(data: FaceSet, backbone_config: BackboneConfig, config: TrainConfig,
          checkpoint_dir: str | Path | None = None, init: dict | None = None,
          on_epoch: Callable[[int, IResNet], dict] | None = None, stop_after: int | None = None,
          progress_bar: bool = True) -> Trained:
    """Train (or resume training) a backbone and a fresh margin head on ``data``.

    Args:
        data: the identity set (faces resized to ``backbone_config.input_size``).
        backbone_config: the architecture.
        config: the optimisation.
        checkpoint_dir: where ``checkpoint.pt`` is written after every epoch and resumed from.
        init: a backbone state dict to start from (the real stage after synthetic pretraining).
        on_epoch: called as ``on_epoch(epoch, backbone)`` after each epoch; the dict it returns
            (e.g. LFW accuracy) is added to that epoch's history row.
        stop_after: stop after this many finished epochs (to split a run; resume finishes it).
        progress_bar: show a tqdm bar per epoch.
    """
    size = backbone_config.input_size
    if tuple(data.images.shape[-2:]) != (size, size):
        raise ValueError(f"identity set holds {tuple(data.images.shape[-2:])} faces; the backbone takes {size} px")
    with seeded_init(config.seed, _STREAM, "init"):
        backbone = IResNet(backbone_config)
        head = make_head(config.head, data.num_classes, backbone_config.embedding_dim, config.scale,
                         config.margin, config.h)
    if init is not None:
        backbone.load_state_dict(init)
    # as in AdaFace/InsightFace: no weight decay on BN and PReLU parameters
    decay = [p for n, p in backbone.named_parameters() if p.ndim > 1] + [head.weight]
    rest = [p for n, p in backbone.named_parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": config.weight_decay},
                           {"params": rest, "weight_decay": 0.0}], lr=config.lr, momentum=config.momentum)
    history: list[dict] = []
    start = 0
    path = Path(checkpoint_dir) / "checkpoint.pt" if checkpoint_dir else None
    if path and path.is_file():
        state = torch.load(path, weights_only=False)
        if state["config"] != asdict(config) or state["backbone_config"] != backbone_config.as_dict():
            raise RuntimeError(f"{path} was written by a different training configuration: "
                               f"delete it or use another checkpoint directory")
        backbone.load_state_dict(state["backbone"])
        head.load_state_dict(state["head"])
        opt.load_state_dict(state["optimizer"])
        history, start = state["history"], state["epoch"]
    n = len(data.labels)
    steps = n // config.batch_size
    if steps == 0:
        raise ValueError(f"{n} faces are fewer than one batch of {config.batch_size}")
    last = config.epochs if stop_after is None else min(config.epochs, stop_after)
    for epoch in range(start, last):
        order = torch.randperm(n, generator=torch_generator(config.seed, _STREAM, "batches", epoch))
        augment_gen = torch_generator(config.seed, _STREAM, "augment", epoch)
        backbone.train()
        head.train()
        loss_sum = correct = seen = 0
        t0 = time.perf_counter()
        for i in progress(range(steps), enabled=progress_bar, desc=f"epoch {epoch + 1}/{config.epochs}"):
            step = epoch * steps + i
            for group in opt.param_groups:
                group["lr"] = config.lr_at(step, steps)
            head.margin_scale = config.margin_scale_at(step, steps)
            idx = order[i * config.batch_size:(i + 1) * config.batch_size]
            x = augment(data.images[idx].float() / 255, config.augment_p, augment_gen)
            y = data.labels[idx]
            emb = backbone(x)
            logits = head(emb, y)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(backbone.parameters()) + [head.weight], 5.0)
            opt.step()
            loss_sum += loss.item() * len(y)
            with torch.no_grad():
                correct += int((head.cosines(emb).argmax(1) == y).sum())
            seen += len(y)
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "loss": loss_sum / seen, "train_accuracy": correct / seen,
               "lr": opt.param_groups[0]["lr"], "seconds": seconds, "images_per_s": seen / seconds}
        if on_epoch is not None:
            row.update(on_epoch(epoch + 1, backbone))
        history.append(row)
        if path:
            with atomic_write(path) as f:
                torch.save({"epoch": epoch + 1, "backbone": backbone.state_dict(), "head": head.state_dict(),
                            "optimizer": opt.state_dict(), "history": history, "config": asdict(config),
                            "backbone_config": backbone_config.as_dict()}, f)
    backbone.eval()
    return Trained(backbone, head, pd.DataFrame(history))


def load_backbone(path: str | Path) -> IResNet:
    """A backbone saved by :func:`save_backbone` (architecture and weights), in eval mode."""
    state = torch.load(path, weights_only=False)
    model = IResNet(BackboneConfig(**state["backbone_config"]))
    model.load_state_dict(state["backbone"])
    return model.eval()


def save_backbone(model: IResNet, path: str | Path) -> None:
    """Write a backbone with its architecture, atomically."""
    with atomic_write(path) as f:
        torch.save({"backbone": model.state_dict(), "backbone_config": model.config.as_dict()}, f)

