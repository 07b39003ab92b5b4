"""Prompt-guided scoring of latents: the objective, the measures and their Jacobian in one pass.

QDGS (Algorithm 1) asks, for every latent ``z``, an objective ``f(z)`` (image quality, judged by
how much closer ``G(z)`` is to a positive than to a negative prompt) and measures ``m_i(z)``
(which of two prompts the image is closer to). The differentiable QD search also needs the
Jacobian of ``[f, m_1, ..., m_M]`` with respect to ``z``. The reference implementation runs one
generator + image-encoder forward and backward per row; here one forward feeds a batched
backward (``torch.autograd.grad(..., is_grads_batched=True)``), which gives the same Jacobian at
a fraction of the cost (see ``benchmarks/``).

A *generator* is an ``nn.Module`` with ``latent_dim`` and ``forward(z (B, D)) -> images
(B, 3, H, W)`` in [0, 1]. A *scorer* is an ``nn.Module`` with ``encode_text(list[str]) -> (P, E)``
and ``encode_image(images) -> (B, E)``, both L2-normalised; it resizes and normalises internally.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

JACOBIAN_METHODS = ("batched", "retain", "replicate", "reference")


class Regularizer(Protocol):
    """An extra loss term on latents and their image embeddings, added before the remap."""

    def __call__(self, z: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor: ...


class BoundedLatent(nn.Module):
    """A generator whose latents are reflected into the box ``[-bound, bound]^D`` before decoding.

    pyribs' gradient arborescence emitter cannot bound solutions, and unbounded latents drift off
    the generator's data manifold. A penalty on ``|z|`` does not stop that: after the objective's
    remap it only makes the off-manifold elites' scores hugely negative while they still fill
    archive cells. Mapping every latent into the box does. The map folds each coordinate back at
    the walls (a triangle wave), so its gradient keeps magnitude one everywhere: a squash such as
    ``bound · tanh(z / bound)`` also bounds, but the search's steps carry its latents far out where
    the squash is flat, the gradients vanish and the emitter stalls (measured on the shapes chapter:
    coverage 0.15 against 0.32 after 1,000 iterations). Inside the box the map is the identity, so
    random latents are unchanged.

    Args:
        generator: a QDGS generator (``latent_dim``, ``forward``, ``sample_latents``).
        bound: the largest |coordinate| the generator ever sees.
    """

    def __init__(self, generator: nn.Module, bound: float) -> None:
        super().__init__()
        self.generator, self.bound, self.latent_dim = generator, float(bound), generator.latent_dim

    def squash(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) search latents → (B, D) generator latents inside [-bound, bound], folded at the walls."""
        return self.bound * (1 - torch.abs(torch.remainder(z / self.bound + 1, 4) - 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(self.squash(z))

    def sample_latents(self, n: int, seed: int) -> torch.Tensor:
        """The generator's random latents, clipped into the box (where the map is the identity)."""
        return self.generator.sample_latents(n, seed).clamp(-self.bound, self.bound)


def spherical_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Great-circle distance between unit vectors, ``2·arcsin(‖a − b‖ / 2)``.

    Args:
        a: (B, E) unit embeddings.
        b: (P, E) unit embeddings.

    Returns:
        (B, P) distances in [0, π].
    """
    chord = (a[:, None, :] - b[None, :, :]).norm(dim=-1)
    return 2 * torch.arcsin((chord / 2).clamp(max=1.0))


def pair_differences(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
    """(B, P) ``d(image, first) − d(image, second)`` for (B, E) images and (2P, E) prompts in pairs."""
    d = spherical_distance(image_embeddings, text_embeddings)
    return d[:, 0::2] - d[:, 1::2]


@torch.no_grad()
def prompt_values(scorer: nn.Module, images: torch.Tensor, pairs: Sequence[tuple[str, str]],
                  batch_size: int = 256) -> np.ndarray:
    """(N, P) ``d(img, first) − d(img, second)`` of each prompt pair, in batches: the one prompt score.

    Negative means closer to the pair's first prompt. The search's measures are these values of
    the measure pairs; its objective is :func:`remap_objective` of the objective pair's value
    (plus regularizers). The zero-shot checks, calibrations, notebooks and benchmarks call this.

    Args:
        scorer: a text-image model (``encode_text``, ``encode_image``).
        images: (N, 3, H, W) images in [0, 1].
        pairs: (first, second) prompts.
    """
    text = scorer.encode_text([p for pair in pairs for p in pair])
    out = []
    for i in range(0, len(images), batch_size):
        batch = images[i:i + batch_size].to(text.device)
        out.append(pair_differences(scorer.encode_image(batch), text).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(pairs)), dtype=np.float32)


def remap_objective(loss: torch.Tensor) -> torch.Tensor:
    """Map a prompt loss (lower is better, about [-2, 2]) to QDGS's maximised ``(10 − 5·loss)·10``."""
    return (10 - 5 * loss) * 10


@dataclass
class Evaluation:
    """What the search needs to know about a batch of latents.

    Attributes:
        objective: (B,) remapped objective, higher is better.
        measures: (B, M) measures; negative means closer to the first prompt of the pair.
        jacobian: (B, 1 + M, D) gradients of [objective, measures] w.r.t. the latent, or None.
        embeddings: (B, E) unit image embeddings.
        images: (B, 3, H, W) generated images in [0, 1], detached.
    """

    objective: np.ndarray
    measures: np.ndarray
    jacobian: np.ndarray | None
    embeddings: np.ndarray
    images: torch.Tensor


class PromptScoring:
    """Scores latents of a frozen generator with a frozen text-image model and prompt pairs.

    Args:
        generator: maps (B, D) latents to (B, 3, H, W) images in [0, 1].
        scorer: a text-image model with ``encode_text`` and ``encode_image``.
        objective_prompts: (positive, negative) quality prompts.
        measure_prompts: one (first, second) prompt pair per measure.
        regularizers: extra loss terms ``(z, embeddings) -> (B,)`` (faces: latent norm, uniqueness).
        jacobian_method: how the Jacobian is computed; all give the same values (see module doc).
            A method that fails raises: the method named is always the method that ran, so a
            benchmark never times one method under another's label.
    """

    def __init__(
        self,
        generator: nn.Module,
        scorer: nn.Module,
        objective_prompts: tuple[str, str],
        measure_prompts: Sequence[tuple[str, str]],
        regularizers: Sequence[Regularizer] = (),
        jacobian_method: str = "batched",
    ) -> None:
        _check_method(jacobian_method)
        self.generator = generator.eval().requires_grad_(False)
        self.scorer = scorer.eval().requires_grad_(False)
        self.objective_prompts = tuple(objective_prompts)
        self.measure_prompts = [tuple(p) for p in measure_prompts]
        self.regularizers = list(regularizers)
        self.jacobian_method = jacobian_method
        self.device = next(iter(generator.parameters()), torch.zeros(())).device
        prompts = list(self.objective_prompts) + [p for pair in self.measure_prompts for p in pair]
        with torch.no_grad():
            self.text = scorer.encode_text(prompts).to(self.device)

    @property
    def latent_dim(self) -> int:
        return int(self.generator.latent_dim)

    @property
    def n_measures(self) -> int:
        return len(self.measure_prompts)

    def outputs(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One generator + scorer forward.

        Args:
            z: (B, D) latents.

        Returns:
            (B, 1 + M) [objective, measures], (B, E) embeddings and (B, 3, H, W) images.
        """
        images = self.generator(z)
        emb = self.scorer.encode_image(images)
        return self.values(z, emb), emb, images

    def values(self, z: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """(B, 1 + M) [objective, measures] of latents (B, D) whose images embed as (B, E)."""
        pairs = pair_differences(emb, self.text)  # the objective pair first, then one per measure
        loss = pairs[:, 0]
        for reg in self.regularizers:
            loss = loss + reg(z, emb)
        return torch.cat([remap_objective(loss)[:, None], pairs[:, 1:]], dim=1)

    def evaluate(self, latents: np.ndarray, jacobian: bool = False) -> Evaluation:
        """Objective, measures and (optionally) the Jacobian of a batch of latents.

        Args:
            latents: (B, D) latents.
            jacobian: also compute the (B, 1 + M, D) Jacobian.
        """
        z = torch.as_tensor(np.asarray(latents), dtype=torch.float32, device=self.device)
        if not jacobian:
            with torch.no_grad():
                values, emb, images = self.outputs(z)
            jac = None
        else:
            values, emb, images, jac = self._with_jacobian(z, self.jacobian_method)
        return Evaluation(
            objective=values[:, 0].detach().cpu().numpy().astype(np.float64),
            measures=values[:, 1:].detach().cpu().numpy().astype(np.float64),
            jacobian=None if jac is None else jac.detach().cpu().numpy().astype(np.float64),
            embeddings=emb.detach().cpu().numpy(),
            images=images.detach(),
        )

    def jacobian(self, latents: np.ndarray, method: str) -> np.ndarray:
        """The (B, 1 + M, D) Jacobian by a named method (for tests and benchmarks)."""
        z = torch.as_tensor(np.asarray(latents), dtype=torch.float32, device=self.device)
        return self._with_jacobian(z, method)[3].detach().cpu().numpy()

    def _with_jacobian(self, z: torch.Tensor, method: str):
        _check_method(method)
        rows = 1 + self.n_measures
        if method == "reference":  # one full forward and backward per row, as the reference code
            jac = []
            for k in range(rows):
                zk = z.detach().clone().requires_grad_(True)
                values, emb, images = self.outputs(zk)
                (grad,) = torch.autograd.grad(values[:, k].sum(), zk)
                jac.append(grad)
            return values.detach(), emb.detach(), images.detach(), torch.stack(jac, dim=1)
        if method == "replicate":  # every row's copy of the batch in one larger forward
            zr = z.detach().repeat(rows, 1).requires_grad_(True)
            values, emb, images = self.outputs(zr)
            picked = values.view(rows, len(z), rows).diagonal(dim1=0, dim2=2).sum()
            (grad,) = torch.autograd.grad(picked, zr)
            n = len(z)
            return (values[:n].detach(), emb[:n].detach(), images[:n].detach(),
                    grad.view(rows, n, -1).transpose(0, 1))
        z = z.detach().clone().requires_grad_(True)
        values, emb, images = self.outputs(z)
        basis = torch.eye(rows, device=z.device)[:, None, :].expand(rows, len(z), rows)
        if method == "batched":
            return values.detach(), emb.detach(), images.detach(), _batched_backward(values, z, basis)
        grads = [torch.autograd.grad(values, z, grad_outputs=basis[k], retain_graph=k < rows - 1)[0]
                 for k in range(rows)]
        return values.detach(), emb.detach(), images.detach(), torch.stack(grads, dim=1)


def _check_method(method: str) -> None:
    if method not in JACOBIAN_METHODS:
        raise ValueError(f"jacobian_method must be one of {JACOBIAN_METHODS}, got {method!r}")


def _batched_backward(values: torch.Tensor, z: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """(B, R, D) Jacobian from one ``is_grads_batched`` backward; one clear error where it cannot run.

    Out-of-memory errors pass through untouched (a smaller batch or another device is the fix, not
    another method); any other failure, typically an operation without a batching rule, says which
    method gives the same Jacobian without batching.
    """
    try:
        (grad,) = torch.autograd.grad(values, z, grad_outputs=basis, is_grads_batched=True)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as err:
        raise RuntimeError(f"the batched Jacobian backward failed on these models ({err}); pass "
                           "jacobian_method='retain' to PromptScoring (the same Jacobian, one backward per row)") from err
    return grad.transpose(0, 1)
