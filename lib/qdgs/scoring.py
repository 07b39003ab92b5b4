"""Prompt-guided scoring of latents: the objective, the measures and their Jacobian in one pass.

QDGS (Algorithm 1) asks, for every latent ``z``, an objective ``f(z)`` (image quality, judged by
how much closer ``G(z)`` is to a positive than to a negative prompt) and measures ``m_i(z)``
(which of two prompts the image is closer to). The differentiable QD search also needs the
Jacobian of ``[f, m_1, ..., m_M]`` with respect to ``z``. The reference implementation runs one
generator + image-encoder forward and backward per row; here one forward feeds a batched
backward (``torch.autograd.grad(..., is_grads_batched=True)``), which gives the same Jacobian at
a fraction of the cost (see ``benchmarks/``). Which of the equivalent methods is fastest depends on
the device (a GPU prefers one larger batch, a CPU one forward with a batched backward), so
``jacobian_method="auto"`` times them on the models themselves (:func:`fastest_jacobian_method`).

A *generator* is an ``nn.Module`` with ``latent_dim`` and ``forward(z (B, D)) -> images
(B, 3, H, W)`` in [0, 1]. A *scorer* is an ``nn.Module`` with ``encode_text(list[str]) -> (P, E)``
and ``encode_image(images) -> (B, E)``, both L2-normalised; it resizes and normalises internally.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn

from qdgs.device import resolve_device
from qdgs.timing import Clock, interleaved_ms

JACOBIAN_METHODS = ("batched", "retain", "replicate", "reference")
#: The method every earlier result was made with; ``"auto"`` leaves it only for a clear gain.
PREFERRED_METHOD = "batched"
#: ``fp32``, or the generator and image encoder under bf16 autocast; ``auto`` decides per device.
PRECISIONS = ("fp32", "bf16", "auto")
#: ``precision="auto"`` takes bf16 only where, on the scoring's own models, its Jacobian is within
#: this of fp32's (per row, largest |J_bf16 − J_fp32| over the largest |J_fp32|) and its measures within
#: :data:`BF16_MEASURE_TOLERANCE`. The search normalises its gradient steps, so a 1 % error
#: changes a step's direction by about 1 %; the measure bound is a tenth of a cell of the paper's
#: 25 cells over ±0.1.
BF16_JACOBIAN_TOLERANCE = 1e-2
BF16_MEASURE_TOLERANCE = 8e-4


class Regularizer(Protocol):
    """An extra loss term on latents and their image embeddings, added before the remap."""

    def __call__(self, z: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor: ...


def fold_into_box(z: torch.Tensor, bound: float) -> torch.Tensor:
    """Each coordinate reflected back at ±``bound`` (a triangle wave): the identity inside, gradient ±1 everywhere."""
    return bound * (1 - torch.abs(torch.remainder(z / bound + 1, 4) - 2))


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
        """(B, D) search latents → (B, D) generator latents inside [-bound, bound] (:func:`fold_into_box`)."""
        return fold_into_box(z, self.bound)

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


@dataclass(frozen=True)
class MethodChoice:
    """The Jacobian method ``jacobian_method="auto"`` chose, and the times it chose by.

    Attributes:
        method: the fastest of the methods that ran.
        ms: milliseconds of each method that ran (its fastest round), on ``device`` at ``batch`` latents.
        device: where they were timed.
        batch: latents per Jacobian.
        failed: methods that raised on these models (left out of the choice).
    """

    method: str
    ms: dict[str, float]
    device: str
    batch: int
    failed: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        times = ", ".join(f"{m} {t:.1f} ms" for m, t in sorted(self.ms.items(), key=lambda kv: kv[1]))
        failed = f"; failed: {', '.join(self.failed)}" if self.failed else ""
        return f"Jacobian method '{self.method}' (measured on {self.device}, batch {self.batch}: {times}{failed})"


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
            benchmark never times one method under another's label. ``"auto"`` times the methods
            on these models once per process (:meth:`jacobian_choice`) and uses the fastest.
        precision: ``"fp32"``; ``"bf16"`` runs the generator and image encoder under bf16
            autocast (distances and gradients stay fp32); ``"auto"`` is fp32 on the CPU and, on
            CUDA, bf16 where a one-time check against fp32 (:func:`bf16_error`) is within
            :data:`BF16_JACOBIAN_TOLERANCE` and :data:`BF16_MEASURE_TOLERANCE`. The precision
            that runs is :attr:`precision`; the check, if made, is :attr:`precision_check`.
        device: where the models run (:func:`qdgs.device.resolve_device`); both are moved there,
            in place. ``None`` keeps the generator's device.
    """

    def __init__(
        self,
        generator: nn.Module,
        scorer: nn.Module,
        objective_prompts: tuple[str, str],
        measure_prompts: Sequence[tuple[str, str]],
        regularizers: Sequence[Regularizer] = (),
        jacobian_method: str = "batched",
        precision: str = "fp32",
        device: str | torch.device | None = None,
    ) -> None:
        _check_method(jacobian_method, allow_auto=True)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.device = (next(iter(generator.parameters()), torch.zeros(())).device if device is None
                       else resolve_device(device))
        self.generator = generator.eval().requires_grad_(False).to(self.device)
        self.scorer = scorer.eval().requires_grad_(False).to(self.device)
        self.objective_prompts = tuple(objective_prompts)
        self.measure_prompts = [tuple(p) for p in measure_prompts]
        self.regularizers = list(regularizers)
        self.jacobian_method = jacobian_method
        prompts = list(self.objective_prompts) + [p for pair in self.measure_prompts for p in pair]
        with torch.no_grad():
            self.text = scorer.encode_text(prompts).to(self.device)
        self.precision, self.precision_check = precision, None
        if precision == "auto":
            self.precision = "fp32"
            if self.device.type == "cuda" and torch.cuda.is_bf16_supported():
                self.precision_check = bf16_error(self, generator.sample_latents(2, seed=0).cpu().numpy())
                if bf16_within_tolerance(self.precision_check):
                    self.precision = "bf16"

    @property
    def latent_dim(self) -> int:
        return int(self.generator.latent_dim)

    @property
    def n_measures(self) -> int:
        return len(self.measure_prompts)

    def outputs(self, z: torch.Tensor, precision: str | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One generator + scorer forward (under autocast when the precision is bf16).

        Args:
            z: (B, D) latents.
            precision: ``"fp32"`` or ``"bf16"``; default :attr:`precision`.

        Returns:
            (B, 1 + M) [objective, measures], (B, E) embeddings and (B, 3, H, W) images, in fp32.
        """
        with self._autocast(precision or self.precision):
            images = self.generator(z)
            emb = self.scorer.encode_image(images)
        emb = emb.float()
        return self.values(z, emb), emb, images.float()

    def _autocast(self, precision: str) -> contextlib.AbstractContextManager:
        if precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

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

    def jacobian(self, latents: np.ndarray, method: str, precision: str | None = None) -> np.ndarray:
        """The (B, 1 + M, D) Jacobian by a named method (for tests and benchmarks), at a precision."""
        z = torch.as_tensor(np.asarray(latents), dtype=torch.float32, device=self.device)
        return self._with_jacobian(z, method, precision)[3].detach().cpu().numpy()

    def jacobian_choice(self, batch: int = 1) -> MethodChoice:
        """The method ``"auto"`` uses at ``batch`` latents: measured once per process and remembered.

        Remembered per (generator, scorer, device, batch, precision) object, in memory only. The
        methods give the same Jacobian up to the last bits; a search's key holds the method chosen
        (:func:`qdgs.search.search_key`), since a search amplifies those bits.
        """
        key = (id(self.generator), id(self.scorer), str(self.device), batch, self.precision)
        held = _CHOICES.get(key)
        if held is None or held[0]() is not self.generator or held[1]() is not self.scorer:
            choice = fastest_jacobian_method(self, batch)
            held = _CHOICES[key] = (weakref.ref(self.generator), weakref.ref(self.scorer), choice)
        return held[2]

    def _with_jacobian(self, z: torch.Tensor, method: str, precision: str | None = None):
        _check_method(method, allow_auto=True)
        if method == "auto":
            method = self.jacobian_choice(len(z)).method
        rows = 1 + self.n_measures
        if method == "reference":  # one full forward and backward per row, as the reference code
            jac = []
            for k in range(rows):
                zk = z.detach().clone().requires_grad_(True)
                values, emb, images = self.outputs(zk, precision)
                (grad,) = torch.autograd.grad(values[:, k].sum(), zk)
                jac.append(grad)
            return values.detach(), emb.detach(), images.detach(), torch.stack(jac, dim=1)
        if method == "replicate":  # every row's copy of the batch in one larger forward
            zr = z.detach().repeat(rows, 1).requires_grad_(True)
            values, emb, images = self.outputs(zr, precision)
            picked = values.view(rows, len(z), rows).diagonal(dim1=0, dim2=2).sum()
            (grad,) = torch.autograd.grad(picked, zr)
            n = len(z)
            return (values[:n].detach(), emb[:n].detach(), images[:n].detach(),
                    grad.view(rows, n, -1).transpose(0, 1))
        z = z.detach().clone().requires_grad_(True)
        values, emb, images = self.outputs(z, precision)
        basis = torch.eye(rows, device=z.device)[:, None, :].expand(rows, len(z), rows)
        if method == "batched":
            return values.detach(), emb.detach(), images.detach(), _batched_backward(values, z, basis)
        grads = [torch.autograd.grad(values, z, grad_outputs=basis[k], retain_graph=k < rows - 1)[0]
                 for k in range(rows)]
        return values.detach(), emb.detach(), images.detach(), torch.stack(grads, dim=1)


#: Measured choices of ``jacobian_method="auto"``: key → (generator ref, scorer ref, choice). The
#: weak references tell a live model from a new one that reuses a dead one's ``id``.
_CHOICES: dict[tuple, tuple[weakref.ref, weakref.ref, MethodChoice]] = {}


def fastest_jacobian_method(scoring: PromptScoring, batch: int = 1, rounds: int = 5, margin: float = 0.1,
                            clock: Clock = time.perf_counter) -> MethodChoice:
    """Time every method of :data:`JACOBIAN_METHODS` on the scoring's own models and pick the fastest.

    One untimed call of each method first (it also finds a method that cannot run on these models,
    which is left out, its error noted), then ``rounds`` interleaved timed rounds on the scoring's
    device, on ``batch`` of the generator's random latents (seed 0; no stream of a search is drawn).
    Each method's fastest round counts: on a shared machine other work only adds time, and a
    median of a few rounds still swings with it. ``"batched"`` is kept unless another method beats it by more than ``margin`` (a fraction of
    its time): the methods agree only to rounding (about 1e-7 relative), so a switch on timing
    noise would change a search's last bits from run to run. Out-of-memory errors pass through:
    a smaller batch or another device is the fix.
    """
    latents = scoring.generator.sample_latents(batch, seed=0).cpu().numpy()
    runs, failed = {}, []
    for method in JACOBIAN_METHODS:
        try:
            scoring.jacobian(latents, method)
        except torch.OutOfMemoryError:
            raise
        except RuntimeError:
            failed.append(method)
            continue
        runs[method] = lambda m=method: scoring.jacobian(latents, m)
    if not runs:
        raise RuntimeError(f"no Jacobian method runs on these models (tried {', '.join(JACOBIAN_METHODS)}); "
                           "call scoring.jacobian(latents, 'reference') to see the error")
    ms = interleaved_ms(runs, rounds, warmup=0, device=scoring.device, clock=clock, statistic=np.min)
    fastest = min(ms, key=ms.get)
    if PREFERRED_METHOD in ms and ms[PREFERRED_METHOD] <= (1 + margin) * ms[fastest]:
        fastest = PREFERRED_METHOD
    return MethodChoice(fastest, ms, str(scoring.device), batch, tuple(failed))


def bf16_error(scoring: PromptScoring, latents: np.ndarray, method: str = "reference") -> dict[str, float]:
    """How far bf16 autocast moves the measures, the objective and the Jacobian from fp32.

    Args:
        scoring: the models under test (on their device; its own precision is not used).
        latents: (B, D) latents.
        method: the Jacobian method used for both precisions (the reference runs everywhere).

    Returns:
        ``jacobian_rel`` (the worst row's largest |J_bf16 − J_fp32| over its largest |J_fp32|:
        per row, because the objective's row, with the faces' latent-norm penalty in it, can be
        far larger than a measure's and would hide the measure's error), ``measures_abs``
        (largest |Δ measure|, in measure units) and ``objective_abs`` (largest |Δ objective|).
    """
    z = torch.as_tensor(np.asarray(latents), dtype=torch.float32, device=scoring.device)
    (v32, _, _, j32), (v16, _, _, j16) = (scoring._with_jacobian(z, method, p) for p in ("fp32", "bf16"))
    v32, j32, v16, j16 = (t.detach().cpu().double() for t in (v32, j32, v16, j16))
    dv = (v16 - v32).abs()
    rows = (j16 - j32).abs().amax(dim=(0, 2)) / j32.abs().amax(dim=(0, 2)).clamp(min=1e-30)
    return {"jacobian_rel": float(rows.max()),
            "measures_abs": float(dv[:, 1:].max()), "objective_abs": float(dv[:, 0].max())}


def bf16_within_tolerance(error: dict[str, float]) -> bool:
    """Whether a :func:`bf16_error` is within :data:`BF16_JACOBIAN_TOLERANCE` and :data:`BF16_MEASURE_TOLERANCE`."""
    return error["jacobian_rel"] <= BF16_JACOBIAN_TOLERANCE and error["measures_abs"] <= BF16_MEASURE_TOLERANCE


def _check_method(method: str, allow_auto: bool = False) -> None:
    allowed = JACOBIAN_METHODS + (("auto",) if allow_auto else ())
    if method not in allowed:
        raise ValueError(f"jacobian_method must be one of {allowed}, got {method!r}")


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
