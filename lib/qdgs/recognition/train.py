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

The same function trains on a GPU (``device``), with DataLoader worker processes preparing the
batches (``workers``: the batch order and every augmentation are still drawn in this process, in
order, so any number of workers gives the same batches), and as one rank of a ``torchrun`` job
with DistributedDataParallel (:mod:`qdgs.recognition.distributed`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from qdgs.cache import atomic_write
from qdgs.device import resolve_device
from qdgs.progress import progress
from qdgs.recognition.distributed import all_reduce_sum, data_parallel, local_rows, rank, world_size
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


@dataclass
class AugmentPlan:
    """The random draws of :func:`augment` for one batch of B faces, one row per face.

    Drawing (in the trainer's process, in batch order, from one seeded stream) is apart from applying
    (possibly in a DataLoader worker, possibly to one rank's rows), so neither workers nor ranks
    change which face gets which augmentation.

    Args:
        flip: (B,) bool, mirror the face.
        low: (B,) bool, low-resolution round trip; ``low_side`` (B,) its side as a fraction of S.
        crop: (B,) bool, zoom into a sub-square; ``crop_scale`` (B,) its side, ``crop_shift`` (B, 2) its centre.
        photo: (B,) bool, photometric change; ``photo_factors`` (B, 3) brightness, contrast, saturation.
    """

    flip: torch.Tensor
    low: torch.Tensor
    low_side: torch.Tensor
    crop: torch.Tensor
    crop_scale: torch.Tensor
    crop_shift: torch.Tensor
    photo: torch.Tensor
    photo_factors: torch.Tensor

    def __getitem__(self, rows: slice) -> AugmentPlan:
        """The plan of the faces ``rows`` of the batch."""
        return AugmentPlan(*(getattr(self, f.name)[rows] for f in fields(self)))


def draw_augmentation(b: int, p: float, gen: torch.Generator) -> AugmentPlan:
    """Draw the augmentation of a batch of ``b`` faces: each of the three with probability ``p``, flip with ½."""

    def pick(prob: float) -> torch.Tensor:
        return torch.rand(b, generator=gen) < prob

    def u(lo: float, hi: float, n: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    def spread(mask: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        out = torch.zeros((b, *values.shape[1:]), dtype=values.dtype)
        out[mask] = values
        return out

    flip = pick(0.5)
    low = pick(p)
    low_side = spread(low, u(0.2, 0.8, int(low.sum())))  # AdaFace: 0.2–1.0 of the side
    crop = pick(p)
    n = int(crop.sum())
    scale = u(0.6, 1.0, n) if n else torch.zeros(0)
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (1 - scale)[:, None] if n else torch.zeros(0, 2)
    photo = pick(p)
    n = int(photo.sum())
    factors = torch.stack([u(0.5, 1.5, n) for _ in range(3)], 1) if n else torch.zeros(0, 3)
    return AugmentPlan(flip, low, low_side, crop, spread(crop, scale), spread(crop, shift), photo,
                       spread(photo, factors))


def apply_augmentation(images: torch.Tensor, plan: AugmentPlan) -> torch.Tensor:
    """Apply ``plan`` to (B, 3, S, S) float faces in [0, 1]; returns (B, 3, S, S) faces in [0, 1]."""
    s = images.shape[-1]
    x = torch.where(plan.flip[:, None, None, None], images.flip(-1), images)
    low = plan.low.nonzero()[:, 0].tolist()
    for i, side in zip(low, plan.low_side[plan.low].mul(s).round().int().tolist()):
        small = F.interpolate(x[i:i + 1], size=(side, side), mode="bilinear", antialias=True, align_corners=False)
        x[i] = F.interpolate(small, size=(s, s), mode="bilinear", align_corners=False)[0]
    crop = plan.crop
    if crop.any():  # zoom into a random sub-square (scale 0.6–1) as a random resized crop would
        n = int(crop.sum())
        scale = plan.crop_scale[crop]
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = scale
        theta[:, :, 2] = plan.crop_shift[crop]
        grid = F.affine_grid(theta, [n, 3, s, s], align_corners=False)
        x[crop] = F.grid_sample(x[crop], grid, mode="bilinear", padding_mode="border", align_corners=False)
    photo = plan.photo
    if photo.any():  # brightness, contrast, saturation ±50 % (AdaFace's ColorJitter)
        f = plan.photo_factors[photo]
        y = x[photo] * f[:, 0, None, None, None]
        mean = y.mean((1, 2, 3), keepdim=True)
        y = (y - mean) * f[:, 1, None, None, None] + mean
        gray = y.mean(1, keepdim=True)
        x[photo] = (y - gray) * f[:, 2, None, None, None] + gray
    return x.clamp(0, 1)


def augment(images: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Flip plus the paper's three augmentations, each on a random fraction ``p`` of the batch.

    Args:
        images: (B, 3, S, S) float faces in [0, 1].
        p: probability of each of low resolution, crop and photometric change.
        gen: the random generator (seeded by the trainer for reproducibility).

    Returns:
        (B, 3, S, S) augmented faces in [0, 1].
    """
    return apply_augmentation(images, draw_augmentation(len(images), p, gen))


class EpochBatches(torch.utils.data.Dataset):
    """One epoch's steps as a dataset: item i is this process's rows of global batch i, augmented.

    The batch order and every augmentation are drawn up front, in order, from the (seed, epoch)
    streams, so a DataLoader with any number of workers yields the same batches as a plain loop.

    Args:
        data: the identity set.
        config: its ``batch_size`` (the global batch), ``augment_p`` and ``seed``.
        epoch: which epoch (0-based).
        rows: the rows of each global batch to yield (all of them in one process; see
            :func:`qdgs.recognition.distributed.local_rows`).
    """

    def __init__(self, data: FaceSet, config: TrainConfig, epoch: int, rows: slice = slice(None)) -> None:
        self.images, self.labels, self.batch_size, self.rows = data.images, data.labels, config.batch_size, rows
        self.order = torch.randperm(len(data.labels), generator=torch_generator(config.seed, _STREAM, "batches", epoch))
        gen = torch_generator(config.seed, _STREAM, "augment", epoch)
        self.plans = [draw_augmentation(config.batch_size, config.augment_p, gen)
                      for _ in range(len(data.labels) // config.batch_size)]

    def __len__(self) -> int:
        return len(self.plans)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(b, 3, S, S) float faces and (b,) labels of step ``i``."""
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size][self.rows]
        return apply_augmentation(self.images[idx].float() / 255, self.plans[i][self.rows]), self.labels[idx]


def epoch_loader(batches: EpochBatches, workers: int = 0, pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """The steps of ``batches`` in order, prepared by ``workers`` processes (0: in this one)."""
    # a generator of its own: the loader draws its workers' base seed from it instead of from (and
    # moving) the global RNG; nothing in the batches reads the workers' RNGs
    return torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False, num_workers=workers,
                                       pin_memory=pin_memory, generator=torch.Generator())


@dataclass
class Trained:
    """A trained backbone, its head, the per-epoch ``history`` (loss, accuracy, lr, images/s, …) and
    the per-step ``steps`` (epoch, step, loss, lr), all of the global batch."""

    backbone: IResNet
    head: MarginHead
    history: pd.DataFrame
    steps: pd.DataFrame


class Recognizer(nn.Module):
    """Backbone and margin head as one module, so that data parallelism averages the head's gradients too."""

    def __init__(self, backbone: IResNet, head: MarginHead) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D) embeddings and (B, C) margin logits of (B, 3, S, S) faces with (B,) labels."""
        embeddings = self.backbone(images)
        return embeddings, self.head(embeddings, labels)


def train(data: FaceSet, backbone_config: BackboneConfig, config: TrainConfig,
          checkpoint_dir: str | Path | None = None, init: dict | None = None,
          on_epoch: Callable[[int, IResNet], dict] | None = None, stop_after: int | None = None,
          progress_bar: bool = True, device: str | torch.device = "cpu", workers: int = 0) -> Trained:
    """Train (or resume training) a backbone and a fresh margin head on ``data``.

    In a process group (one rank of a ``torchrun`` job, see :mod:`qdgs.recognition.distributed`)
    each rank trains on its share of every global batch of ``config.batch_size`` with
    DistributedDataParallel and global-batch BatchNorm, so the run follows the single-process one;
    rank 0 writes the checkpoints and calls ``on_epoch``, and every rank resumes from the same epoch.

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
        device: where the backbone and head train (``cpu``, ``cuda``, ``cuda:N``, ``auto``); the
            result does not depend on it beyond floating-point rounding, and checkpoints hold CPU tensors.
        workers: DataLoader processes that gather and augment batches (0: this process); the
            batches are the same for any number.

    Returns:
        The backbone (a plain :class:`IResNet` in eval mode, on ``device``), the head and the histories.
    """
    size = backbone_config.input_size
    if tuple(data.images.shape[-2:]) != (size, size):
        raise ValueError(f"identity set holds {tuple(data.images.shape[-2:])} faces; the backbone takes {size} px")
    device = resolve_device(device)
    ranks, lead = world_size(), rank() == 0
    rows = local_rows(config.batch_size)
    with seeded_init(config.seed, _STREAM, "init"):
        backbone = IResNet(backbone_config)
        head = make_head(config.head, data.num_classes, backbone_config.embedding_dim, config.scale,
                         config.margin, config.h)
    if init is not None:
        backbone.load_state_dict(init)
    model = data_parallel(Recognizer(backbone, head).to(device), device)
    # as in AdaFace/InsightFace: no weight decay on BN and PReLU parameters
    decay = [p for n, p in backbone.named_parameters() if p.ndim > 1] + [head.weight]
    rest = [p for n, p in backbone.named_parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": config.weight_decay},
                           {"params": rest, "weight_decay": 0.0}], lr=config.lr, momentum=config.momentum)
    history: list[dict] = []
    step_log: list[dict] = []
    start = 0
    path = Path(checkpoint_dir) / "checkpoint.pt" if checkpoint_dir else None
    if path and path.is_file():
        state = torch.load(path, map_location=device, weights_only=False)
        if state["config"] != asdict(config) or state["backbone_config"] != backbone_config.as_dict():
            raise RuntimeError(f"{path} was written by a different training configuration: "
                               f"delete it or use another checkpoint directory")
        backbone.load_state_dict(state["backbone"])
        head.load_state_dict(state["head"])
        opt.load_state_dict(state["optimizer"])
        history, step_log, start = state["history"], state["steps"], state["epoch"]
    if ranks > 1:
        starts = torch.zeros(ranks, device=device)
        starts[rank()] = start
        if not bool((all_reduce_sum(starts) == start).all()):
            raise RuntimeError(f"ranks would resume from epochs {starts.int().tolist()}: they must all see the "
                               f"same checkpoint directory {checkpoint_dir}")
    n = len(data.labels)
    steps = n // config.batch_size
    if steps == 0:
        raise ValueError(f"{n} faces are fewer than one batch of {config.batch_size}")
    last = config.epochs if stop_after is None else min(config.epochs, stop_after)
    for epoch in range(start, last):
        loader = epoch_loader(EpochBatches(data, config, epoch, rows), workers, pin_memory=device.type == "cuda")
        model.train()
        loss_sum = correct = seen = 0
        t0 = time.perf_counter()
        bar = progress(loader, enabled=progress_bar and lead, desc=f"epoch {epoch + 1}/{config.epochs}")
        for i, (x, y) in enumerate(bar):
            step = epoch * steps + i
            lr = config.lr_at(step, steps)
            for group in opt.param_groups:
                group["lr"] = lr
            head.margin_scale = config.margin_scale_at(step, steps)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            emb, logits = model(x, y)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(backbone.parameters()) + [head.weight], 5.0)
            opt.step()
            with torch.no_grad():
                hits = int((head.cosines(emb).argmax(1) == y).sum())
            # loss · faces, hits, faces of the global batch
            step_loss, step_hits, step_seen = all_reduce_sum(torch.tensor(
                [loss.item() * len(y), hits, len(y)], dtype=torch.float64, device=device)).tolist()
            loss_sum += step_loss
            correct += int(step_hits)
            seen += int(step_seen)
            step_log.append({"epoch": epoch + 1, "step": step, "loss": step_loss / step_seen, "lr": lr})
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "loss": loss_sum / seen, "train_accuracy": correct / seen,
               "lr": opt.param_groups[0]["lr"], "seconds": seconds, "images_per_s": seen / seconds}
        if on_epoch is not None and lead:
            row.update(on_epoch(epoch + 1, backbone))
        history.append(row)
        if path and lead:
            with atomic_write(path) as f:
                torch.save(_on_cpu({"epoch": epoch + 1, "backbone": backbone.state_dict(), "head": head.state_dict(),
                                    "optimizer": opt.state_dict(), "history": history, "steps": step_log,
                                    "config": asdict(config), "backbone_config": backbone_config.as_dict()}), f)
    if ranks > 1:  # hand back an ordinary backbone, not one whose BatchNorm all-reduces
        with seeded_init(config.seed, _STREAM, "init"):
            plain = IResNet(backbone_config)
        plain.load_state_dict(backbone.state_dict())
        backbone = plain.to(device)
    backbone.eval()
    return Trained(backbone, head, pd.DataFrame(history), pd.DataFrame(step_log))


def _on_cpu(obj: Any) -> Any:
    """``obj`` (nested dicts, lists and tuples) with every tensor copied to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _on_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_on_cpu(v) for v in obj)
    return obj


def load_backbone(path: str | Path, device: str | torch.device = "cpu") -> IResNet:
    """A backbone saved by :func:`save_backbone` (architecture and weights), in eval mode, on ``device``."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = IResNet(BackboneConfig(**state["backbone_config"]))
    model.load_state_dict(state["backbone"])
    return model.to(resolve_device(device)).eval()


def save_backbone(model: IResNet, path: str | Path) -> None:
    """Write a backbone with its architecture, atomically."""
    with atomic_write(path) as f:
        torch.save({"backbone": _on_cpu(model.state_dict()), "backbone_config": model.config.as_dict()}, f)

