"""Data-parallel recognition training: what one rank of a ``torchrun`` job needs to know and share.

:func:`qdgs.recognition.train` runs unchanged in one process or as one of N ranks of a
DistributedDataParallel job (the process group is set up by :func:`init_process_group`, see
:mod:`qdgs.recognition.launch`). Each rank takes a disjoint, contiguous 1/N of every global batch
(:func:`local_rows`), so a run on N ranks optimises the same loss, with the same global batch, as
one process: DDP averages the gradients of the per-rank mean losses, which is the gradient of the
global mean loss. The margin head is inside the DDP module with the backbone
(:class:`qdgs.recognition.train.Recognizer`), so its prototypes get averaged gradients too. Two
things would still differ and are synchronised here:

- BatchNorm statistics: a rank would normalise with its shard's statistics. :func:`sync_batchnorm`
  turns every BatchNorm into one that uses the global batch's: PyTorch's ``SyncBatchNorm`` on CUDA,
  and on the CPU (where ``SyncBatchNorm`` refuses to run) :class:`GlobalBatchNorm`, which
  all-reduces per-channel sums with an autograd-aware all-reduce.
- AdaFace's running feature-norm statistics: the head reads them through :func:`global_mean_std`.

Outside a process group every function here is the single-process identity, so that path stays
bit for bit what it was.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel

__all__ = ["GlobalBatchNorm", "all_reduce_sum", "broadcast_object", "data_parallel", "global_mean_std",
           "init_process_group", "local_rows", "rank", "sync_batchnorm", "world_size"]


def world_size() -> int:
    """Ranks in the job (1 outside a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if world_size() > 1 else 0


def local_rows(batch_size: int) -> slice:
    """The rows of each global batch of ``batch_size`` that this rank trains on (disjoint, contiguous)."""
    n = world_size()
    if batch_size % n:
        raise ValueError(f"batch_size {batch_size} does not split over {n} ranks: pass a multiple of {n} "
                         f"(the global batch is shared out, so the curve matches one process at that batch)")
    per = batch_size // n
    return slice(rank() * per, (rank() + 1) * per)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over the ranks, in place (unchanged in one process)."""
    if world_size() > 1:
        dist.all_reduce(tensor)
    return tensor


def broadcast_object(obj: Any = None) -> Any:
    """Rank 0's ``obj`` (any picklable value) on every rank; also a barrier for the other ranks."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def global_mean_std(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased standard deviation of the (n,) values ``x`` of all ranks together (no gradient)."""
    if world_size() == 1:
        return x.mean(), x.std()
    x = x.detach().double()
    stats = all_reduce_sum(torch.stack([x.sum(), x.square().sum(), torch.tensor(float(len(x)), dtype=x.dtype,
                                                                                 device=x.device)]))
    total, squares, n = stats
    mean = total / n
    return mean.float(), ((squares - n * mean.square()) / (n - 1)).clamp_min(0).sqrt().float()


class _SumOverRanks(torch.autograd.Function):
    """A sum over the ranks that autograd differentiates: every rank's loss depends on every rank's
    input, so the gradient that reaches a rank's input is the sum of the ranks' output gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return all_reduce_sum(x.clone())

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return all_reduce_sum(grad.clone())


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm over the global batch of all ranks, on any backend (gloo on the CPU included).

    In training under a process group, per-channel sums of x − r and (x − r)² (r, the running mean,
    is the same on every rank and keeps the subtraction well conditioned) and the count are summed
    over the ranks with an all-reduce that autograd differentiates (its backward all-reduces the
    gradients), so forward and backward are those of one BatchNorm on the whole batch. Elsewhere it
    is a plain BatchNorm. Inputs are (B, C) or (B, C, ...).
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"GlobalBatchNorm expects (B, C) or (B, C, ...) input, got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if not (self.training and world_size() > 1):
            return super().forward(x)
        c = x.shape[1]
        view = (1, c) + (1,) * (x.dim() - 2)
        dims = [0, *range(2, x.dim())]
        shift = (self.running_mean if self.running_mean is not None else x.new_zeros(c)).detach()
        xs = x - shift.view(view)
        count = x.new_full((1,), x.numel() // c)
        stats = _SumOverRanks.apply(torch.cat([xs.sum(dims), xs.square().sum(dims), count]))
        n = stats[-1]
        shifted_mean = stats[:c] / n
        var = stats[c:2 * c] / n - shifted_mean.square()
        mean = shifted_mean + shift
        y = (x - mean.view(view)) * torch.rsqrt(var.view(view) + self.eps)
        if self.affine:
            y = y * self.weight.view(view) + self.bias.view(view)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - factor).add_(factor * mean.detach())
                self.running_var.mul_(1 - factor).add_(factor * var.detach() * n / (n - 1))
        return y


def _to_global(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm replaced by a :class:`GlobalBatchNorm` sharing its parameters and buffers."""
    out = module
    if isinstance(module, _BatchNorm) and not isinstance(module, GlobalBatchNorm):
        out = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        if module.track_running_stats:
            out.running_mean, out.running_var = module.running_mean, module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _to_global(child))
    return out


def sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` with BatchNorm statistics over the global batch: ``SyncBatchNorm`` on CUDA, else
    :class:`GlobalBatchNorm`. Parameters and buffers are shared with the original modules."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _to_global(module)


def data_parallel(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` (already on ``device``) ready for data-parallel training: global-batch BatchNorm
    and DistributedDataParallel, which averages the gradients over the ranks; as it is in one process."""
    if world_size() == 1:
        return module
    gpu = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(sync_batchnorm(module, device), device_ids=gpu)


def init_process_group(device: str = "auto", timeout_s: float = 1800) -> torch.device:
    """Join the ``torchrun`` job described by the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR``/``MASTER_PORT``) and return this rank's device.

    NCCL on CUDA (rank ``LOCAL_RANK`` takes ``cuda:LOCAL_RANK``), gloo on the CPU. ``device`` is the
    chapter's ``auto`` | ``cpu`` | ``cuda``; a fixed ``cuda:N`` makes no sense for several ranks.
    """
    from qdgs.device import resolve_device

    missing = [k for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not set: launch this with torchrun, e.g. "
                           f"torchrun --nproc_per_node=2 -m qdgs.recognition.launch --data DIR")
    chosen = resolve_device(device)
    if chosen.type == "cuda":
        if chosen.index is not None and int(os.environ["WORLD_SIZE"]) > 1:
            raise ValueError(f"device {device!r} pins every rank to one GPU; pass cuda or auto (rank k takes "
                             f"cuda:LOCAL_RANK)")
        chosen = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(chosen)
    dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo", timeout=timedelta(seconds=timeout_s))
    return chosen
