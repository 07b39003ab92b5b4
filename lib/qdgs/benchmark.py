"""Side-by-side timings: the DQD step's one-pass Jacobians against per-measure passes, and chapter 01's
training steps against the plain formulations of the same functions.

Machines are noisy, so every comparison is measured in one run with the methods interleaved
(round-robin, rotating the order each round) and reported as medians and ratios; never as
absolute timings from separate runs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from qdgs.scoring import JACOBIAN_METHODS, PromptScoring, bf16_error, bf16_within_tolerance
from qdgs.search import PHASES, SearchConfig, new_state, search_step
from qdgs.seeds import seeded_init
from qdgs.timing import interleaved_ms, synchronize


def default_scoring(domain: str, device: str | torch.device = "cpu",
                    jacobian_method: str = "batched") -> PromptScoring:
    """The default profile's architectures for ``domain`` (shapes or faces) on ``device``, scorer weights random.

    Timing does not depend on the weights, so the benchmark needs no trained model and measures
    exactly the work of the book's default searches. (The faces generator is the package's
    trained DCGAN; the shapes VAE is randomly initialised.)
    """
    # imported on use: the domain modules pull in open_clip, gan-face-generate and image libraries
    # that the timing helpers themselves do not need
    from qdgs.scorers.offline_clip import OfflineClipScorer, make_clip

    if domain == "shapes":
        from qdgs import shapes
        from qdgs.generators.shapes_vae import ShapesVAE

        with seeded_init(0, "benchmark", domain):
            generator = ShapesVAE()
        return PromptScoring(generator, OfflineClipScorer(make_clip("shapes_clip")),
                             shapes.OBJECTIVE_PROMPTS, shapes.MEASURE_PROMPTS, jacobian_method=jacobian_method,
                             device=device)
    from qdgs import faces
    from qdgs.generators.dcgan import DCGANFaces

    generator = DCGANFaces()  # the package's trained weights: no initialisation to seed
    return PromptScoring(generator, OfflineClipScorer(make_clip("faces_clip")), faces.OBJECTIVE_PROMPTS,
                         faces.MEASURE_PROMPTS, regularizers=faces.regularizers(generator),
                         jacobian_method=jacobian_method, device=device)


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
    ms = interleaved_ms({m: (lambda m=m: scoring.jacobian(latents, m)) for m in methods}, rounds, warmup,
                        scoring.device, clock=time.perf_counter)
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

    ms = interleaved_ms({"one": lambda: one_pass(z), "all": lambda: one_pass(z.repeat(rows, 1))}, rounds,
                        warmup=1, device=scoring.device, clock=time.perf_counter)
    k = ms["all"] / ms["one"]
    return {"ms_one": ms["one"], "ms_all": ms["all"], "rows": rows, "k": k, "ceiling": rows / k}


def compare_precisions(scoring: PromptScoring, latents: np.ndarray, method: str = "batched",
                       rounds: int = 5) -> dict[str, float | bool]:
    """bf16 autocast against fp32 on the same latents: how far it moves the results and how fast it is.

    Returns:
        :func:`qdgs.scoring.bf16_error`'s ``jacobian_rel``, ``measures_abs`` and ``objective_abs``;
        ``ms_fp32`` and ``ms_bf16`` (interleaved medians of the ``method`` Jacobian at each
        precision) and ``within_tolerance`` (whether ``precision="auto"`` would take bf16 on CUDA).
    """
    error = bf16_error(scoring, latents)
    ms = interleaved_ms({p: (lambda p=p: scoring.jacobian(latents, method, p)) for p in ("fp32", "bf16")}, rounds,
                        warmup=1, device=scoring.device, clock=time.perf_counter)
    return {**error, "ms_fp32": ms["fp32"], "ms_bf16": ms["bf16"], "within_tolerance": bf16_within_tolerance(error)}


#: The parts of a search iteration that :func:`iteration_breakdown` reports, in its row order.
PARTS = ("generator forward", "scorer forward", "backward", "pyribs ask/tell", "uniqueness memory")


@contextlib.contextmanager
def _timing_calls(obj: object, attr: str, totals: dict[str, float], part: str,
                  device: torch.device) -> Iterator[None]:
    """Add the time of every call of ``obj.attr`` to ``totals[part]`` inside the block."""
    own = attr in vars(obj)
    original = getattr(obj, attr)

    def timed(*args: object, **kwargs: object) -> object:
        synchronize(device)
        start = time.perf_counter()
        out = original(*args, **kwargs)
        synchronize(device)
        totals[part] += time.perf_counter() - start
        return out

    setattr(obj, attr, timed)
    try:
        yield
    finally:
        if own:
            setattr(obj, attr, original)
        else:
            delattr(obj, attr)


def iteration_breakdown(scoring: PromptScoring, config: SearchConfig, iterations: int = 20,
                        method: str = "batched", warmup: int = 2) -> pd.DataFrame:
    """Where the time of one search iteration goes: generator, scorer, backward, pyribs, memory.

    Runs the search's own iteration, :func:`qdgs.search.search_step`, with the Jacobian ``method``
    (``"batched"``, ``"retain"``, ``"replicate"`` or ``"reference"``, see
    :class:`qdgs.scoring.PromptScoring`) and times it through its ``phase`` hook, with the generator
    forward and the image encoder's forward timed as they are called. ``backward`` is the rest of the
    scoring phases: the Jacobian's backward passes plus the prompt distances and copies. The first
    ``warmup`` iterations (pyribs compiles its CMA-ES kernels with numba on first use) are run but
    not counted.

    Returns:
        One row per part of :data:`PARTS`: ``part``, ``ms`` per iteration and its ``share``.
    """
    state = new_state(scoring, config)
    device = scoring.device
    totals = dict.fromkeys((*PARTS, *PHASES), 0.0)

    @contextlib.contextmanager
    def phase(name: str) -> Iterator[None]:
        synchronize(device)
        start = time.perf_counter()
        yield
        synchronize(device)
        totals[name] += time.perf_counter() - start

    chosen, scoring.jacobian_method = scoring.jacobian_method, method
    try:
        with (_timing_calls(scoring.generator, "forward", totals, "generator forward", device),
              _timing_calls(scoring.scorer, "encode_image", totals, "scorer forward", device)):
            for it in range(warmup + iterations):
                if it == warmup:
                    totals.update(dict.fromkeys(totals, 0.0))  # in place: the timers hold this dict
                search_step(scoring, state["scheduler"], phase)
    finally:
        scoring.jacobian_method = chosen
    scoring_total = totals["dqd evaluation"] + totals["evaluation"]
    totals["backward"] = scoring_total - totals["generator forward"] - totals["scorer forward"]
    whole = sum(totals[part] for part in PARTS)
    return pd.DataFrame([{"part": part, "ms": 1000 * totals[part] / iterations, "share": totals[part] / whole}
                         for part in PARTS])


def paper_scale_scoring(device: str = "cuda", channels: tuple[tuple[int, int], ...] | None = None) -> PromptScoring:
    """StyleGAN2-256 (W space) + CLIP ViT-B/32 with random weights: the paper's architectures, for timing.

    Timings do not depend on the weights, so this needs no download; nothing it produces is an image
    worth looking at. ``channels`` (resolution, width) pairs shrink the generator for quick tests.
    """
    import open_clip

    from qdgs import faces
    from qdgs.generators.stylegan2 import StyleGAN2, StyleGAN2Config, StyleGAN2Faces
    from qdgs.scorers.openai_clip import MODEL_NAME, OpenAIClipScorer

    config = StyleGAN2Config() if channels is None else StyleGAN2Config(channels=channels)
    with seeded_init(0, "benchmark", "paper-scale"):
        generator = StyleGAN2Faces(StyleGAN2(config), n_stats=1024).to(device)
        model = open_clip.create_model(MODEL_NAME, pretrained=None)
    scorer = OpenAIClipScorer(model, open_clip.get_tokenizer(MODEL_NAME)).to(device)
    return PromptScoring(generator, scorer, faces.OBJECTIVE_PROMPTS, faces.MEASURE_PROMPTS)


def paper_order_classifier(model: nn.Module) -> nn.Sequential:
    """``model``'s layers (a :class:`~qdgs.shapes.classifier.ShapeClassifier`) in the paper's order,
    conv → ReLU → max-pool, in the default memory layout: the plain formulation it is timed and tested against."""
    convs = [m for m in model.net if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.net if isinstance(m, nn.Linear)]
    return nn.Sequential(*[layer for conv in convs for layer in (conv, nn.ReLU(), nn.MaxPool2d(2))],
                         nn.Flatten(), linears[0], nn.ReLU(), linears[1])


def per_edge_polygon_mask(order: int, radius: torch.Tensor, angle: torch.Tensor, centre: torch.Tensor, size: int,
                          edge: float) -> torch.Tensor:
    """The shapes VAE's soft polygon mask by its definition, one edge at a time: the product over edges of
    sigmoid(signed distance / edge), (B, size, size). The batched rasteriser is timed and tested against it."""
    coords = torch.arange(size, dtype=radius.dtype, device=radius.device) + 0.5
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    mask = torch.ones(len(radius), size, size, dtype=radius.dtype, device=radius.device)
    for j in range(order):
        a = (angle + (2 * j + 1) * np.pi / order)[:, None, None]
        distance = (radius * np.cos(np.pi / order))[:, None, None] - (
            (xs - centre[:, 0, None, None]) * torch.cos(a) + (ys - centre[:, 1, None, None]) * torch.sin(a))
        mask = mask * torch.sigmoid(distance / edge)
    return mask


def time_shapes_training(rounds: int = 5, warmup: int = 1, seed: int = 0) -> pd.DataFrame:
    """Chapter 01's two training hot spots on the CPU, the plain formulation against the book's, interleaved.

    *classifier*: one Adam step of the shape classifier (batch 128, 32 px), the paper's block order
    against pooling before the ReLU in channels-last layout (the same function). *VAE rasteriser*:
    forward and backward of a batch of 64 triangle and square masks at 64 px (the VAE's training
    drawing, 2 × 32 px), one edge at a time against one matrix product for all edges.

    Returns:
        One row per (``part``, ``variant``): ``ms`` (median) and ``speedup`` (plain ms / ms).
    """
    from qdgs.generators.shapes_vae import _polygon_mask
    from qdgs.shapes.classifier import ShapeClassifier

    g = torch.Generator().manual_seed(seed)
    images, labels = torch.rand(128, 3, 32, 32, generator=g), torch.randint(0, 2, (128,), generator=g).float()
    with seeded_init(seed, "benchmark", "shape-classifier"):  # the global RNG stays untouched
        ours = ShapeClassifier(32)
        plain = paper_order_classifier(ShapeClassifier(32).to(memory_format=torch.contiguous_format))

    def classifier_step(model: nn.Module, opt: torch.optim.Optimizer) -> Callable[[], None]:
        def step() -> None:
            loss = F.binary_cross_entropy_with_logits(model(images).reshape(-1), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    params = [(8 + 8 * torch.rand(64, generator=g)).requires_grad_(), (6 * torch.rand(64, generator=g)).requires_grad_(),
              (24 + 16 * torch.rand(64, 2, generator=g)).requires_grad_()]

    def raster_step(rasterise: Callable[..., torch.Tensor]) -> Callable[[], None]:
        def step() -> None:
            (rasterise(3, *params, 64, 1.0) + rasterise(4, *params, 64, 1.0)).sum().backward()
        return step

    parts = {"classifier": {"plain": classifier_step(plain, torch.optim.Adam(plain.parameters())),
                            "ours": classifier_step(ours, torch.optim.Adam(ours.parameters()))},
             "VAE rasteriser": {"plain": raster_step(per_edge_polygon_mask), "ours": raster_step(_polygon_mask)}}
    rows = []
    for part, calls in parts.items():
        ms = interleaved_ms(calls, rounds, warmup, torch.device("cpu"), clock=time.perf_counter)
        rows += [{"part": part, "variant": v, "ms": ms[v], "speedup": ms["plain"] / ms[v]} for v in calls]
    return pd.DataFrame(rows)
