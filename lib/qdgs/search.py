"""Algorithm 1 of the paper: CMA-MAEGA over a generator's latent space, with checkpoint and resume.

The search keeps two archives. The *search* archive is CMA-MAE's soft archive (learning rate
0.02, threshold_min 0): its annealed thresholds steer the gradient arborescence emitter towards
cells not yet well served. The *passive* archive is a plain elitist grid that keeps the best
latent ever seen in each cell; it is what becomes the synthetic dataset.

One iteration is :func:`search_step`; :func:`run_search` loops it with checkpoints, and the
benchmarks time the same function through its ``phase`` hook, so what is timed is what runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import pickle
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from ribs.archives import GridArchive
from ribs.emitters import GradientArborescenceEmitter
from ribs.schedulers import Scheduler
from torch import nn

from qdgs.cache import arrays_hash, atomic_write, cache_root, params_key, weights_hash
from qdgs.progress import progress
from qdgs.scoring import PromptScoring
from qdgs.seeds import derive

#: Names :func:`search_step` passes to its ``phase`` hook, in the order they first occur.
PHASES = ("pyribs ask/tell", "dqd evaluation", "uniqueness memory", "evaluation")

#: ``phase(name)`` returns a context manager wrapped around one part of an iteration.
Phase = Callable[[str], AbstractContextManager]


@dataclass(frozen=True)
class SearchConfig:
    """Settings of one QDGS search (defaults are the paper's, see the facts file).

    Args:
        iterations: number of ask/tell iterations (each evaluates ``emitters × batch_size`` latents).
        archive_dims: cells per measure, e.g. (50, 50).
        measure_ranges: (low, high) per measure; measures outside are clipped to the edge cells.
        seed: seeds the start latent, the emitter and the archives (each its own named stream).
        sigma0: initial step size of the emitter's CMA-ES over gradient coefficients.
        lr: the emitter's Adam learning rate on the latent.
        archive_learning_rate: CMA-MAE's threshold learning rate.
        batch_size: latents per emitter and iteration: one gradient-step solution plus ``batch_size - 1``.
        emitters: gradient arborescence emitters sharing the archives (the paper runs one); each
            has its own random stream, so several explore apart from the same start.
        init_batches: random batches searched for the start latent.
        init_batch_size: latents per such batch.
        checkpoint_every: iterations between checkpoints (and history rows); it does not change
            the archive, so it may differ between a run and the run that resumes it.

    pyribs' gradient arborescence emitter cannot bound solutions; to keep latents on the
    generator's manifold wrap the generator in :class:`qdgs.scoring.BoundedLatent`.
    """

    iterations: int
    archive_dims: tuple[int, ...]
    measure_ranges: tuple[tuple[float, float], ...]
    seed: int = 0
    sigma0: float = 0.5
    lr: float = 0.5
    archive_learning_rate: float = 0.02
    batch_size: int = 4
    emitters: int = 1
    init_batches: int = 32
    init_batch_size: int = 16
    checkpoint_every: int = 500

    @property
    def evaluations(self) -> int:
        """Latents the search evaluates: the budget a random baseline gets for a fair comparison."""
        return self.iterations * self.emitters * self.batch_size

    def key(self) -> str:
        """A hash of the settings that shape the archive's trajectory.

        The iteration count is left out (a longer run resumes a shorter one: the first ``n``
        iterations do not depend on how many follow), and so is ``checkpoint_every`` (saving the
        state does not change it; notebooks derive it from the iteration count).
        """
        settings = {k: v for k, v in asdict(self).items() if k not in ("iterations", "checkpoint_every")}
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class SearchResult:
    """The outcome of a search or of the random baseline.

    Attributes:
        archive: the passive elitist archive (the dataset's source).
        history: one row per checkpoint: iteration, coverage, qd_score, seconds (rows before a
            resume come from the run that wrote the checkpoint, at its ``checkpoint_every``).
        seconds: wall time spent in this process (excluding time before a resume).
    """

    archive: GridArchive
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    seconds: float = 0.0

    def elites(self) -> dict[str, np.ndarray]:
        """The archive's elites: ``solution`` (n, D), ``objective`` (n,), ``measures`` (n, M)."""
        data = self.archive.data()
        return {k: np.asarray(data[k]) for k in ("solution", "objective", "measures", "index")}


def make_archive(config: SearchConfig, solution_dim: int, learning_rate: float | None = None) -> GridArchive:
    """A grid archive with the config's cells and ranges (elitist unless a learning rate is given)."""
    kwargs = {"learning_rate": learning_rate, "threshold_min": 0.0} if learning_rate else {}
    return GridArchive(solution_dim=solution_dim, dims=config.archive_dims, ranges=config.measure_ranges,
                       seed=derive(config.seed, "search", "archive"), **kwargs)


def start_latent(scoring: PromptScoring, config: SearchConfig) -> np.ndarray:
    """The best of ``init_batches × init_batch_size`` random latents by objective."""
    best, best_f = None, -np.inf
    for b in range(config.init_batches):
        z = scoring.generator.sample_latents(config.init_batch_size, seed=derive(config.seed, "search", "start", b))
        z = z.cpu().numpy()
        f = scoring.evaluate(z).objective
        if f.max() > best_f:
            best, best_f = z[f.argmax()], f.max()
    return best


def new_state(scoring: PromptScoring, config: SearchConfig) -> dict[str, Any]:
    """The state of a search before its first iteration (what a checkpoint stores).

    Keys: ``key`` (:meth:`SearchConfig.key`), ``iteration``, ``history`` (rows), ``seconds``,
    ``scheduler`` (pyribs, with the passive archive as its result archive) and ``regularizers``
    (stateful: the uniqueness memory).
    """
    dim = scoring.latent_dim
    archive = make_archive(config, dim, learning_rate=config.archive_learning_rate)
    passive = make_archive(config, dim)
    x0 = start_latent(scoring, config)
    emitters = [GradientArborescenceEmitter(
        archive, x0=x0, sigma0=config.sigma0, lr=config.lr,
        ranker="imp", selection_rule="mu", restart_rule="basic", grad_opt="adam",
        normalize_grad=True, batch_size=config.batch_size - 1,
        seed=derive(config.seed, "search", "emitter", *([k] if k else [])),  # the first keeps the one-emitter stream
    ) for k in range(config.emitters)]
    return {"key": config.key(), "iteration": 0, "history": [], "seconds": 0.0,
            "scheduler": Scheduler(archive, emitters, result_archive=passive),
            "regularizers": scoring.regularizers}


def _row(iteration: int, archive: GridArchive, seconds: float) -> dict:
    stats = archive.stats
    return {"iteration": iteration, "coverage": float(stats.coverage),
            "qd_score": float(stats.qd_score), "seconds": seconds}


def _remember_accepted(scoring: PromptScoring, passive: GridArchive, solutions: np.ndarray,
                       measures: np.ndarray, embeddings: np.ndarray) -> None:
    """Tell stateful regularizers (the uniqueness memory) which latents entered the archive."""
    updaters = [r for r in scoring.regularizers if hasattr(r, "update")]
    if not updaters:
        return
    occupied, data = passive.retrieve(measures)
    accepted = occupied & np.all(np.isclose(data["solution"], solutions), axis=1)
    if accepted.any():
        for r in updaters:
            r.update(torch.as_tensor(embeddings[accepted]))


def _untimed(name: str) -> AbstractContextManager:
    return contextlib.nullcontext()


def search_step(scoring: PromptScoring, scheduler: Scheduler, phase: Phase = _untimed) -> None:
    """One iteration of Algorithm 1: per emitter, the DQD step (one latent with its Jacobian), then ``batch_size - 1``.

    Args:
        scoring: scores latents and gives Jacobians.
        scheduler: the search's pyribs scheduler (its result archive is the passive archive).
        phase: wrapped around each part, named as in :data:`PHASES` (a benchmark times them).
    """
    passive = scheduler.result_archive
    with phase("pyribs ask/tell"):
        sols = scheduler.ask_dqd()
    with phase("dqd evaluation"):
        ev = scoring.evaluate(sols, jacobian=True)
    with phase("pyribs ask/tell"):
        scheduler.tell_dqd(ev.objective, ev.measures, ev.jacobian)
    with phase("uniqueness memory"):
        _remember_accepted(scoring, passive, sols, ev.measures, ev.embeddings)
    with phase("pyribs ask/tell"):
        sols = scheduler.ask()
    with phase("evaluation"):
        ev = scoring.evaluate(sols)
    with phase("pyribs ask/tell"):
        scheduler.tell(ev.objective, ev.measures)
    with phase("uniqueness memory"):
        _remember_accepted(scoring, passive, sols, ev.measures, ev.embeddings)


def _load_checkpoint(path: Path, config: SearchConfig) -> dict[str, Any]:
    """A checkpoint's state, refused when unreadable, of other settings, or past the request."""
    try:
        with open(path, "rb") as f:
            state = pickle.load(f)
    # what pickle raises for a truncated, damaged or foreign file: never resume from one silently
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, ValueError) as err:
        raise RuntimeError(f"checkpoint {path} is unreadable ({type(err).__name__}); "
                           "delete it to start the search over") from err
    if not isinstance(state, dict) or state.get("key") != config.key():
        raise ValueError(f"checkpoint {path} was written by a search with other settings; "
                         "delete it or choose another checkpoint path")
    if state["iteration"] > config.iterations:
        raise ValueError(f"checkpoint {path} holds {state['iteration']} iterations, more than the "
                         f"{config.iterations} asked, and a search cannot be rewound: ask for at least "
                         f"{state['iteration']} iterations or choose another checkpoint path "
                         "(qdgs.search.cached_search keeps one checkpoint per iteration count)")
    return state


def run_search(scoring: PromptScoring, config: SearchConfig, checkpoint_path: str | Path | None = None,
               progress_bar: bool = True, resume_from: str | Path | None = None) -> SearchResult:
    """Run (or resume) a QDGS search.

    Args:
        scoring: scores latents and gives Jacobians.
        config: the search settings.
        checkpoint_path: a file to save the state to every ``checkpoint_every`` iterations and to
            resume from; a checkpoint of other settings, or of more iterations than asked, is
            refused rather than silently mixed or returned.
        progress_bar: show a tqdm bar.
        resume_from: a checkpoint of the same search with at most ``config.iterations`` iterations,
            read when ``checkpoint_path`` does not exist yet (a longer run continuing a shorter
            one without overwriting it).

    Returns:
        The passive archive and the coverage / QD-score history.
    """
    path = Path(checkpoint_path) if checkpoint_path else None
    source = path if path is not None and path.exists() else (Path(resume_from) if resume_from else None)
    if source is not None:
        state = _load_checkpoint(source, config)
        scoring.regularizers = state["regularizers"]
    else:
        state = new_state(scoring, config)
    scheduler: Scheduler = state["scheduler"]
    start, t0 = state["iteration"], time.perf_counter()
    bar = progress(range(start, config.iterations), enabled=progress_bar, desc="QDGS search",
                   initial=start, total=config.iterations)
    for it in bar:
        search_step(scoring, scheduler)
        done = it + 1
        if done % config.checkpoint_every == 0 or done == config.iterations:
            seconds = state["seconds"] + time.perf_counter() - t0
            state["history"].append(_row(done, scheduler.result_archive, seconds))
            state["iteration"] = done
            if path is not None:
                with atomic_write(path) as f:
                    pickle.dump(dict(state, seconds=seconds), f)
    seconds = time.perf_counter() - t0
    return SearchResult(scheduler.result_archive, pd.DataFrame(state["history"]), seconds)


def random_archive(scoring: PromptScoring, config: SearchConfig, n_samples: int,
                   batch_size: int = 64) -> SearchResult:
    """The baseline: ``n_samples`` random latents inserted into an archive identical to the search's."""
    archive = make_archive(config, scoring.latent_dim)
    t0 = time.perf_counter()
    for start in range(0, n_samples, batch_size):
        n = min(batch_size, n_samples - start)
        z = scoring.generator.sample_latents(n, seed=derive(config.seed, "random-baseline", start)).cpu().numpy()
        ev = scoring.evaluate(z)
        archive.add(z, ev.objective, ev.measures)
    seconds = time.perf_counter() - t0
    return SearchResult(archive, pd.DataFrame([_row(n_samples, archive, seconds)]), seconds)


def _settings(obj: object) -> dict[str, Any]:
    """The public plain-valued attributes of an object (tensors and arrays by content hash)."""
    out: dict[str, Any] = {}
    for name, value in sorted(vars(obj).items()):
        if name.startswith("_") or name == "training":
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            out[name] = value
        elif isinstance(value, (tuple, list)) and all(isinstance(v, (bool, int, float, str)) for v in value):
            out[name] = list(value)
        elif isinstance(value, (torch.Tensor, np.ndarray)):
            out[name] = arrays_hash(value)
    return out


def _identity(obj: object) -> dict[str, Any]:
    """What of a model or a regularizer shapes the archive, stable across processes (unlike ``repr``).

    A module: each submodule's class and plain settings (a latent bound, a truncation ψ, an output
    size) and the hash of its weights. A function: its name and code. Any other object: its class
    and plain settings (a penalty's ``q`` and weight; a uniqueness memory's contents by hash).
    """
    if isinstance(obj, nn.Module):
        return {"modules": [[name, type(m).__qualname__, _settings(m)] for name, m in obj.named_modules()],
                "weights": weights_hash(obj)}
    code = getattr(obj, "__code__", None)
    if code is not None:
        return {"function": obj.__qualname__, "code": hashlib.sha256(code.co_code + repr(code.co_consts).encode()).hexdigest()[:16]}
    return {"class": type(obj).__qualname__, "settings": _settings(obj)}


def search_key(scoring: PromptScoring, config: SearchConfig, extra: dict | None = None) -> str:
    """The identity of a search's archive: models, prompts, regularizers, Jacobian method, precision and settings.

    Everything that determines the archive is in it, except the iteration count (a longer run
    resumes a shorter one) and where the search runs (a GPU's rounding differs from a CPU's, but a
    search may move between them). ``extra`` names what the models do not show (e.g. the scorer's
    training data). The key covers the code too: the search's own, and that of every class the
    generator, scorer and regularizers are made of (a decoder's drawing code is not in its weights).
    With ``jacobian_method="auto"`` the key holds the method the timing chose for the search's
    gradient batch (one latent per emitter): the methods agree only to the last bits, and a search
    amplifies last bits into other cells, so two methods' archives are two artifacts.
    """
    models = [scoring.generator, scoring.scorer, *scoring.regularizers]
    method = (scoring.jacobian_choice(config.emitters).method if scoring.jacobian_method == "auto"
              else scoring.jacobian_method)
    code = {__name__} | {type(m).__module__ for model in models
                         for m in (model.modules() if isinstance(model, nn.Module) else [model])}
    return params_key("search", {
        "config": config.key(), "generator": _identity(scoring.generator), "scorer": _identity(scoring.scorer),
        "prompts": [list(scoring.objective_prompts), [list(p) for p in scoring.measure_prompts]],
        "regularizers": [_identity(r) for r in scoring.regularizers],
        "jacobian_method": method,
        **({"precision": scoring.precision} if scoring.precision != "fp32" else {}),  # bf16 moves measures
        **(extra or {})}, code=code)


def cached_search(scoring: PromptScoring, config: SearchConfig, extra: dict | None = None,
                  progress_bar: bool = True) -> SearchResult:
    """:func:`run_search` with its checkpoints in the artifact cache, keyed by :func:`search_key`.

    Each requested iteration count keeps its own checkpoint, ``search/<key>/<iterations>.ckpt``.
    An unchanged rerun returns its finished archive at once; a longer run resumes from the longest
    shorter one (and leaves it intact); a shorter request never sees a longer run's archive, it
    resumes from a shorter checkpoint or starts afresh. Keeping one file per count (rather than
    refusing shorter requests) lets a teacher's ``smoke`` and ``default`` profiles share a cache;
    each file holds one passive and one search archive.
    """
    folder = cache_root() / "search" / search_key(scoring, config, extra)
    target = folder / f"{config.iterations}.ckpt"
    shorter = sorted((int(p.stem), p) for p in folder.glob("*.ckpt")
                     if p.stem.isdigit() and int(p.stem) < config.iterations)
    return run_search(scoring, config, checkpoint_path=target, progress_bar=progress_bar,
                      resume_from=shorter[-1][1] if shorter else None)


def project_archive(archive: GridArchive, dims: tuple[int, int], bins: tuple[int, int] | None = None,
                    ranges: Sequence[tuple[float, float]] | None = None) -> GridArchive:
    """A 2-D elitist archive of the best elite per cell over two of an archive's measures.

    pyribs draws heatmaps of 1-D and 2-D archives only; a 4-D faces archive is shown as slices:
    for each cell of two measures, the best objective over the other measures. With ``ranges`` the
    elites are re-binned onto other ranges (measures outside fall into the edge cells), so two
    archives built on ranges calibrated to one sampler can be compared on ranges fixed beforehand.

    Args:
        archive: a pyribs GridArchive.
        dims: the two measure indices kept.
        bins: cells along each kept measure (default: the archive's own).
        ranges: (low, high) of each kept measure (default: the archive's own).
    """
    data = archive.data()
    flat = GridArchive(solution_dim=archive.solution_dim,
                       dims=bins or tuple(archive.dims[d] for d in dims),
                       ranges=ranges or [(archive.lower_bounds[d], archive.upper_bounds[d]) for d in dims])
    if len(data["solution"]):
        flat.add(data["solution"], data["objective"], data["measures"][:, list(dims)])
    return flat


def archive_table(results: Mapping[str, SearchResult], ranges: Sequence[tuple[float, float]] | None = None) -> pd.DataFrame:
    """Coverage, QD score and elite count of each archive over its first two measures, on its own ranges or ``ranges``.

    Re-binning (:func:`project_archive`) keeps one elite per new cell from those each archive holds,
    so every sampler is judged the same way on ranges it did not search on.
    """
    rows = []
    for name, result in results.items():
        archive = project_archive(result.archive, (0, 1), ranges=None if ranges is None else list(ranges)[:2])
        rows.append({"sampler": name, "coverage": archive.stats.coverage, "QD score": archive.stats.qd_score,
                     "elites": len(archive)})
    return pd.DataFrame(rows)
