"""One seed policy: every random stream is derived from a chapter's seed and the stream's name.

A chapter has one ``seed`` parameter. Each consumer of randomness (a model's initialisation, its
batch order, the search's start latents, a test set's renders) asks for its own stream by name,
``derive(seed, "shapes-vae", "init")``; names go into :class:`numpy.random.SeedSequence`'s
``spawn_key``, so two differently named streams never share a seed (unlike ``seed + 1`` and
``seed * 10_007 + b``, which collide), and adding a stream never shifts another.

Library code never seeds the global RNGs: it takes a :class:`numpy.random.Generator` or a
:class:`torch.Generator` from here. Module initialisation, which PyTorch draws from the global
stream, runs inside :func:`seeded_init`, which forks the global state and restores it afterwards,
so a model built from the cache and one trained afresh leave the process in the same state.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["derive", "numpy_rng", "torch_generator", "seeded_init"]


def _word(name: str | int) -> int:
    """A stable 32-bit integer for one part of a stream's name (ints stand for themselves)."""
    if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
        if name < 0:
            raise ValueError(f"stream name parts must be non-negative integers or strings, got {name}")
        return int(name)
    return int.from_bytes(hashlib.sha256(str(name).encode()).digest()[:4], "little")


def _sequence(seed: int, names: tuple[str | int, ...]) -> np.random.SeedSequence:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.SeedSequence(int(seed), spawn_key=tuple(_word(n) for n in names))


def derive(seed: int, *names: str | int) -> int:
    """A 63-bit integer seed for the stream ``names`` of ``seed`` (for APIs that take an int)."""
    return int(_sequence(seed, names).generate_state(2, np.uint32).astype(np.uint64) @ [1, 2**32]) >> 1


def numpy_rng(seed: int, *names: str | int) -> np.random.Generator:
    """A NumPy generator for the stream ``names`` of ``seed``."""
    return np.random.default_rng(_sequence(seed, names))


def torch_generator(seed: int, *names: str | int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator (on ``device``) for the stream ``names`` of ``seed``."""
    return torch.Generator(device=device).manual_seed(derive(seed, *names))


@contextlib.contextmanager
def seeded_init(seed: int, *names: str | int) -> Iterator[None]:
    """Build modules inside this block: their initialisation draws from the stream ``names``.

    PyTorch's ``nn.Module`` initialisers read the global generator; this block forks it (CPU
    only, CUDA initialisation of our models happens on the CPU first), seeds the fork and
    restores the caller's global state on exit.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive(seed, *names))
        yield
