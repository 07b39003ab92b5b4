"""Side-by-side timings of the DQD step: one-pass Jacobians against per-measure passes.

Machines are noisy, so every comparison is measured in one run with the methods interleaved
(round-robin, rotating the order each round) and reported as medians and ratios; never as
absolute timings from separate runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from qdgs.scoring import JACOBIAN_METHODS, PromptScoring
from qdgs.search import SearchConfig, _new_state




def default_scoring(domain: str) -> PromptScoring:
    """The default profile's architectures for ``domain`` (shapes or faces), weights random.

    Timing does not depend on the weights, so the benchmark needs no trained model and measures
    exactly the work of the book's default searches.
    """
    from qdgs.scorers.offline_clip import OfflineClipScorer, make_clip

    torch.manual_seed(0)
    if domain == "shapes":
        from qdgs import shapes
        from qdgs.generators.shapes_vae import ShapesVAE

        return PromptScoring(ShapesVAE(), OfflineClipScorer(make_clip("shapes_clip")),
                             shapes.OBJECTIVE_PROMPTS, shapes.MEASURE_PROMPTS)
    from qdgs import faces
    from qdgs.generators.dcgan import DCGANFaces

    generator = DCGANFaces()
    return PromptScoring(generator, OfflineClipScorer(make_clip("faces_clip")), faces.OBJECTIVE_PROMPTS,
                         faces.MEASURE_PROMPTS, regularizers=faces.regularizers(generator))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _interleaved_ms(calls: dict[str, Callable[[], object]], rounds: int, warmup: int,
                    device: torch.device) -> dict[str, float]:
    """Median milliseconds of each call: ``warmup`` untimed rounds, then ``rounds`` timed round-robin
    rounds with the order rotated every round, so drifts of a noisy machine hit every call alike."""
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(_timed(calls[name], device))
    return {name: 1000 * float(np.median(t)) for name, t in times.items()}


def time_jacobians(scoring: PromptScoring, latents: np.ndarray, methods: Sequence[str] = JACOBIAN_METHODS,
                   rounds: int = 5, warmup: int = 1) -> pd.DataFrame:
    """Median time of each Jacobian method on the same latents, and its agreement with the reference.

    Args:
        scoring: the generator + scorer under test.
        latents: (B, D) latents (the DQD step uses B = 1).
        methods: names from :data:`qdgs.scoring.JACOBIAN_METHODS`; ``"reference"`` is always added.
        rounds: timed calls per method, interleaved.
        warmup: untimed calls per method first.

    Returns:
        One row per method: ``method``, ``ms`` (median), ``speedup`` (reference ms / ms) and
        ``max_rel_diff`` (largest |J − J_ref| / max |J_ref|).
    """
    methods = list(dict.fromkeys(["reference", *methods]))
    reference = scoring.jacobian(latents, "reference")
    scale = np.abs(reference).max()
    diffs = {m: float(np.abs(scoring.jacobian(latents, m) - reference).max() / scale) for m in methods}
    ms = _interleaved_ms({m: (lambda m=m: scoring.jacobian(latents, m)) for m in methods}, rounds, warmup,
                         scoring.device)
    rows = [{"method": m, "ms": ms[m], "speedup": ms["reference"] / ms[m], "max_rel_diff": diffs[m]} for m in methods]
    return pd.DataFrame(rows)


def batching_ceiling(scoring: PromptScoring, latents: np.ndarray, rounds: int = 5) -> dict[str, float]:
    """How far batching the Jacobian's rows can go on this machine: one pass against a pass of all rows.

    The reference style makes ``1 + M`` forward-and-backward passes of one batch; the batched
    methods do the same work as one pass over ``1 + M`` times as many rows. If that larger pass
    costs ``k`` single passes, a batched method beats the reference by about ``(1 + M) / k`` at best.
    On a GPU ``k`` is close to 1; on a CPU the convolutions are compute-bound and ``k`` is large.

    Returns ``ms_one`` and ``ms_all`` (medians of interleaved forward + backward passes of the
    latents and of them repeated once per row), ``rows``, ``k`` = ``ms_all / ms_one`` and
    ``ceiling`` = ``rows / k``.
    """
    rows = 1 + scoring.n_measures
    z = torch.as_tensor(np.asarray(latents), dtype=torch.float32, device=scoring.device)

    def one_pass(batch: torch.Tensor) -> None:
        batch = batch.detach().clone().requires_grad_(True)
        torch.autograd.grad(scoring.outputs(batch)[0].sum(), batch)

    ms = _interleaved_ms({"one": lambda: one_pass(z), "all": lambda: one_pass(z.repeat(rows, 1))}, rounds,
                         warmup=1, device=scoring.device)
    k = ms["all"] / ms["one"]
    return {"ms_one": ms["one"], "ms_all": ms["all"], "rows": rows, "k": k, "ceiling": rows / k}


def iteration_breakdown(scoring: PromptScoring, config: SearchConfig, iterations: int = 20,
                        method: str = "batched", warmup: int = 2) -> pd.DataFrame:
    """Where the time of one search iteration goes: generator, scorer, backward, pyribs.

    ``method`` is ``"batched"`` (one forward, batched backward), ``"retain"`` (one forward,
    a backward per row) or ``"reference"`` (a forward and backward per row, as the paper's code).

    Runs ``iterations`` real CMA-MAEGA iterations and splits each into the generator forward, the
    image-encoder forward (with the prompt distances), the Jacobian backward, and pyribs'
    ask/tell. The first ``warmup`` iterations (pyribs compiles its CMA-ES kernels with numba on
    first use) are run but not counted. Returns one row per part with ``ms`` per iteration and its
    ``share``.
    """
    state = _new_state(scoring, config)
    scheduler, device = state["scheduler"], scoring.device
    parts = {"generator forward": 0.0, "scorer forward": 0.0, "backward": 0.0, "pyribs ask/tell": 0.0}
    rows = 1 + scoring.n_measures

    def forward(z: torch.Tensor, grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.set_grad_enabled(grad):
            t = time.perf_counter()
            images = scoring.generator(z)
            _sync(device)
            parts["generator forward"] += time.perf_counter() - t
            t = time.perf_counter()
            emb = scoring.scorer.encode_image(images)
            values = scoring.values(z, emb)
            _sync(device)
            parts["scorer forward"] += time.perf_counter() - t
        return values, emb

    def backward(values: torch.Tensor, z: torch.Tensor, k: int | None) -> torch.Tensor:
        t = time.perf_counter()
        if k is not None:  # one row of the reference style
            (grad,) = torch.autograd.grad(values[:, k].sum(), z)
        elif method == "batched":
            basis = torch.eye(rows, device=device)[:, None, :].expand(rows, len(z), rows)
            (grad,) = torch.autograd.grad(values, z, grad_outputs=basis, is_grads_batched=True)
            grad = grad.transpose(0, 1)
        else:
            grad = torch.stack([torch.autograd.grad(values[:, j].sum(), z, retain_graph=j < rows - 1)[0]
                                for j in range(rows)], dim=1)
        _sync(device)
        parts["backward"] += time.perf_counter() - t
        return grad

    for it in range(warmup + iterations):
        if it == warmup:
            parts = dict.fromkeys(parts, 0.0)
        t = time.perf_counter()
        sols = scheduler.ask_dqd()
        parts["pyribs ask/tell"] += time.perf_counter() - t
        z = torch.as_tensor(sols, dtype=torch.float32, device=device).requires_grad_(True)
        if method == "reference":  # 1 + M full forward and backward passes
            grads = []
            for k in range(rows):
                values, _ = forward(z, grad=True)
                grads.append(backward(values, z, k))
            jac = torch.stack(grads, dim=1)
        else:
            values, _ = forward(z, grad=True)
            jac = backward(values, z, None)
        values = values.detach().cpu().numpy().astype(np.float64)
        t = time.perf_counter()
        scheduler.tell_dqd(values[:, 0], values[:, 1:], jac.detach().cpu().numpy().astype(np.float64))
        sols = scheduler.ask()
        parts["pyribs ask/tell"] += time.perf_counter() - t
        values, _ = forward(torch.as_tensor(sols, dtype=torch.float32, device=device), grad=False)
        values = values.cpu().numpy().astype(np.float64)
        t = time.perf_counter()
        scheduler.tell(values[:, 0], values[:, 1:])
        parts["pyribs ask/tell"] += time.perf_counter() - t
    total = sum(parts.values())
    return pd.DataFrame([{"part": k, "ms": 1000 * v / iterations, "share": v / total} for k, v in parts.items()])


def paper_scale_scoring(device: str = "cuda", channels: tuple[tuple[int, int], ...] | None = None) -> PromptScoring:
    """StyleGAN2-256 (W space) + CLIP ViT-B/32 with random weights: the paper's architectures, for timing.

    Timings do not depend on the weights, so this needs no download; nothing it produces is an image
    worth looking at. ``channels`` (resolution, width) pairs shrink the generator for quick tests.
    """
    import open_clip

    from qdgs import faces
    from qdgs.generators.stylegan2 import StyleGAN2, StyleGAN2Config, StyleGAN2Faces
    from qdgs.scorers.openai_clip import MODEL_NAME, OpenAIClipScorer

    torch.manual_seed(0)
    config = StyleGAN2Config() if channels is None else StyleGAN2Config(channels=channels)
    generator = StyleGAN2Faces(StyleGAN2(config), n_stats=1024).to(device)
    model = open_clip.create_model(MODEL_NAME, pretrained=None)
    scorer = OpenAIClipScorer(model, open_clip.get_tokenizer(MODEL_NAME)).to(device)
    return PromptScoring(generator, scorer, faces.OBJECTIVE_PROMPTS, faces.MEASURE_PROMPTS)
