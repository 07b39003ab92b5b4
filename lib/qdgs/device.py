"""Which device a chapter runs on: one ``device`` parameter, resolved in one place.

``auto`` takes the first CUDA device when PyTorch sees one and the CPU otherwise, so the same
notebook runs on a laptop and on a GPU machine. Asking for CUDA where there is none is an error
that says so, not a silent run on the CPU. The device never enters a cache key: it changes how
fast an artifact is made, not what it is meant to be.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICE_PATTERN", "resolve_device"]

#: The values the ``device`` parameter accepts.
DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?"


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """The ``torch.device`` that ``name`` (``auto``, ``cpu``, ``cuda`` or ``cuda:N``) stands for."""
    import torch  # deferred: the parameter specs import this module, and `import qdgs` must not load torch

    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device '{name}' asked for, but PyTorch sees no CUDA device here; "
                               "pass device=cpu (or auto), or install a CUDA build of PyTorch")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(f"device '{name}' asked for, but only {torch.cuda.device_count()} CUDA "
                               f"device(s) are visible (cuda:0 … cuda:{torch.cuda.device_count() - 1})")
    elif device.type != "cpu":
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")
    return device
