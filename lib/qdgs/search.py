"""Algorithm 1 of the paper: CMA-MAEGA over a generator's latent space, with checkpoint and resume.

The search keeps two archives. The *search* archive is CMA-MAE's soft archive (learning rate
0.02, threshold_min 0): its annealed thresholds steer the gradient arborescence emitter towards
cells not yet well served. The *passive* archive is a plain elitist grid that keeps the best
latent ever seen in each cell; it is what becomes the synthetic dataset.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from ribs.archives import GridArchive
from ribs.emitters import GradientArborescenceEmitter
from ribs.schedulers import Scheduler

from qdgs.cache import atomic_write, cache_root, params_key, weights_hash
from qdgs.progress import progress
from qdgs.scoring import PromptScoring


@dataclass(frozen=True)
class SearchConfig:
    """Settings of one QDGS search (defaults are the paper's, see the facts file).

    Args:
        iterations: number of ask/tell iterations (each evaluates ``batch_size`` latents).
        archive_dims: cells per measure, e.g. (50, 50).
        measure_ranges: (low, high) per measure; measures outside are clipped to the edge cells.
        seed: seeds the start latent, the emitter and the archives.
        sigma0: initial step size of the emitter's CMA-ES over gradient coefficients.
        lr: the emitter's Adam learning rate on the latent.
        archive_learning_rate: CMA-MAE's threshold learning rate.
        batch_size: latents per iteration: one gradient-step solution plus ``batch_size - 1``.
        init_batches: random batches searched for the start latent.
        init_batch_size: latents per such batch.
        checkpoint_every: iterations between checkpoints (and history rows).

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
    init_batches: int = 32
    init_batch_size: int = 16
    checkpoint_every: int = 500

    def key(self) -> str:
        """A hash of every setting except the iteration count (a longer run may resume a shorter one)."""
        settings = {k: v for k, v in asdict(self).items() if k != "iterations"}
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class SearchResult:
    """The outcome of a search or of the random baseline.

    Attributes:
        archive: the passive elitist archive (the dataset's source).
        history: one row per checkpoint: iteration, coverage, qd_score, seconds.
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
    return GridArchive(solution_dim=solution_dim, dims=config.archive_dims,
                       ranges=config.measure_ranges, seed=config.seed, **kwargs)


def start_latent(scoring: PromptScoring, config: SearchConfig) -> np.ndarray:
    """The best of ``init_batches × init_batch_size`` random latents by objective."""
    best, best_f = None, -np.inf
    for b in range(config.init_batches):
        z = scoring.generator.sample_latents(config.init_batch_size, seed=config.seed * 10_007 + b)
        z = z.cpu().numpy()
        f = scoring.evaluate(z).objective
        if f.max() > best_f:
            best, best_f = z[f.argmax()], f.max()
    return best


def _new_state(scoring: PromptScoring, config: SearchConfig) -> dict:
    dim = scoring.latent_dim
    archive = make_archive(config, dim, learning_rate=config.archive_learning_rate)
    passive = make_archive(config, dim)
    emitter = GradientArborescenceEmitter(
        archive, x0=start_latent(scoring, config), sigma0=config.sigma0, lr=config.lr,
        ranker="imp", selection_rule="mu", restart_rule="basic", grad_opt="adam",
        normalize_grad=True, batch_size=config.batch_size - 1, seed=config.seed,
    )
    return {"key": config.key(), "iteration": 0, "history": [], "seconds": 0.0,
            "scheduler": Scheduler(archive, [emitter], result_archive=passive),
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


def run_search(scoring: PromptScoring, config: SearchConfig, checkpoint_path: str | Path | None = None,
               progress_bar: bool = True) -> SearchResult:
    """Run (or resume) a QDGS search.

    Args:
        scoring: scores latents and gives Jacobians.
        config: the search settings.
        checkpoint_path: a file to save the state to every ``checkpoint_every`` iterations and to
            resume from; a checkpoint of another config is refused rather than silently mixed.
        progress_bar: show a tqdm bar.

    Returns:
        The passive archive and the coverage / QD-score history.
    """
    path = Path(checkpoint_path) if checkpoint_path else None
    if path is not None and path.exists():
        try:
            with open(path, "rb") as f:
                state = pickle.load(f)
        except Exception as err:  # truncated or foreign file: never resume from it silently
            raise RuntimeError(f"checkpoint {path} is unreadable ({type(err).__name__}); "
                               "delete it to start the search over") from err
        if state["key"] != config.key():
            raise ValueError(f"checkpoint {path} was written by a search with other settings; "
                             "delete it or choose another checkpoint path")
        scoring.regularizers = state["regularizers"]
    else:
        state = _new_state(scoring, config)
    scheduler: Scheduler = state["scheduler"]
    passive = scheduler.result_archive
    start, t0 = state["iteration"], time.perf_counter()
    bar = progress(range(start, config.iterations), enabled=progress_bar, desc="QDGS search",
                   initial=start, total=config.iterations)
    for it in bar:
        sols = scheduler.ask_dqd()
        ev = scoring.evaluate(sols, jacobian=True)
        scheduler.tell_dqd(ev.objective, ev.measures, ev.jacobian)
        _remember_accepted(scoring, passive, sols, ev.measures, ev.embeddings)
        sols = scheduler.ask()
        ev = scoring.evaluate(sols)
        scheduler.tell(ev.objective, ev.measures)
        _remember_accepted(scoring, passive, sols, ev.measures, ev.embeddings)
        done = it + 1
        if done % config.checkpoint_every == 0 or done == config.iterations:
            seconds = state["seconds"] + time.perf_counter() - t0
            state["history"].append(_row(done, passive, seconds))
            state["iteration"] = done
            if path is not None:
                saved = dict(state, seconds=seconds)
                with atomic_write(path) as f:
                    pickle.dump(saved, f)
    seconds = time.perf_counter() - t0
    return SearchResult(passive, pd.DataFrame(state["history"]), seconds)


def random_archive(scoring: PromptScoring, config: SearchConfig, n_samples: int,
                   batch_size: int = 64) -> SearchResult:
    """The baseline: ``n_samples`` random latents inserted into an archive identical to the search's."""
    archive = make_archive(config, scoring.latent_dim)
    t0 = time.perf_counter()
    for start in range(0, n_samples, batch_size):
        n = min(batch_size, n_samples - start)
        z = scoring.generator.sample_latents(n, seed=config.seed * 10_007 + 1_000_003 + start)
        ev = scoring.evaluate(z.cpu().numpy())
        archive.add(z.cpu().numpy(), ev.objective, ev.measures)
    seconds = time.perf_counter() - t0
    return SearchResult(archive, pd.DataFrame([_row(n_samples, archive, seconds)]), seconds)


def search_key(scoring: PromptScoring, config: SearchConfig, extra: dict | None = None) -> str:
    """The identity of a search's archive: models (by weights), prompts, regularizers and settings.

    Everything that determines the archive is in it, except the iteration count (a longer run
    resumes a shorter one). ``extra`` names what the weights do not show (e.g. a latent bound).
    """
    return params_key("search", {
        "config": config.key(), "generator": weights_hash(scoring.generator), "scorer": weights_hash(scoring.scorer),
        "prompts": [list(scoring.objective_prompts), [list(p) for p in scoring.measure_prompts]],
        "regularizers": [repr(r) for r in scoring.regularizers], **(extra or {})})


def cached_search(scoring: PromptScoring, config: SearchConfig, extra: dict | None = None,
                  progress_bar: bool = True) -> SearchResult:
    """:func:`run_search` with its checkpoint in the artifact cache, keyed by :func:`search_key`.

    An unchanged rerun returns the finished archive at once; a longer run resumes a shorter one.
    """
    path = cache_root() / "search" / f"{search_key(scoring, config, extra)}.ckpt"
    return run_search(scoring, config, checkpoint_path=path, progress_bar=progress_bar)


def project_archive(archive: GridArchive, dims: tuple[int, int], bins: tuple[int, int] | None = None) -> GridArchive:
    """A 2-D elitist archive of the best elite per cell over two of an archive's measures.

    pyribs draws heatmaps of 1-D and 2-D archives only; a 4-D faces archive is shown as slices:
    for each cell of two measures, the best objective over the other measures.

    Args:
        archive: a pyribs GridArchive.
        dims: the two measure indices kept.
        bins: cells along each kept measure (default: the archive's own).
    """
    data = archive.data()
    flat = GridArchive(solution_dim=archive.solution_dim,
                       dims=bins or tuple(archive.dims[d] for d in dims),
                       ranges=[(archive.lower_bounds[d], archive.upper_bounds[d]) for d in dims])
    if len(data["solution"]):
        flat.add(data["solution"], data["objective"], data["measures"][:, list(dims)])
    return flat
