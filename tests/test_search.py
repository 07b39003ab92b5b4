from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from qdgs.scoring import BoundedLatent, PromptScoring
from qdgs.search import SearchConfig, cached_search, random_archive, run_search, search_key, start_latent
from toys import ToyGenerator, ToyScorer

CONFIG = SearchConfig(iterations=20, archive_dims=(10, 10), measure_ranges=((-0.4, 0.1), (0.0, 0.4)),
                      seed=3, init_batches=2, init_batch_size=8, checkpoint_every=5)


def _scoring():
    return PromptScoring(ToyGenerator(), ToyScorer(), ("good", "bad"), [("a", "b"), ("c", "d")])


def _sorted_elites(result):
    e = result.elites()
    order = np.argsort(e["index"])
    return {k: v[order] for k, v in e.items()}


def test_search_fills_archive_and_logs_history():
    result = run_search(_scoring(), CONFIG, progress_bar=False)
    assert result.archive.stats.num_elites > 5
    assert list(result.history.iteration) == [5, 10, 15, 20]
    assert result.history.coverage.is_monotonic_increasing


def test_interrupted_search_resumes_to_the_same_archive(tmp_path):
    full = run_search(_scoring(), CONFIG, tmp_path / "full.pkl", progress_bar=False)

    scoring = _scoring()
    calls, evaluate = [0], scoring.evaluate

    def dying(*args, **kwargs):  # dies mid-way through iteration 13, after the checkpoint at 10
        calls[0] += 1
        if calls[0] == 2 * 2 + 2 * 12 + 1:  # 2 start batches, 2 evaluations per iteration
            raise KeyboardInterrupt
        return evaluate(*args, **kwargs)

    scoring.evaluate = dying
    with pytest.raises(KeyboardInterrupt):
        run_search(scoring, CONFIG, tmp_path / "resumed.pkl", progress_bar=False)
    resumed = run_search(_scoring(), CONFIG, tmp_path / "resumed.pkl", progress_bar=False)

    a, b = _sorted_elites(full), _sorted_elites(resumed)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert list(resumed.history.iteration) == [5, 10, 15, 20]


def test_checkpoint_of_other_settings_is_refused(tmp_path):
    run_search(_scoring(), CONFIG, tmp_path / "c.pkl", progress_bar=False)
    other = SearchConfig(**{**CONFIG.__dict__, "seed": 4})
    with pytest.raises(ValueError, match="other settings"):
        run_search(_scoring(), other, tmp_path / "c.pkl", progress_bar=False)


def test_same_seed_same_archive():
    a, b = (_sorted_elites(run_search(_scoring(), CONFIG, progress_bar=False)) for _ in range(2))
    np.testing.assert_array_equal(a["solution"], b["solution"])
    np.testing.assert_array_equal(a["objective"], b["objective"])


def test_random_baseline_uses_the_same_archive():
    result = random_archive(_scoring(), CONFIG, n_samples=80, batch_size=32)
    assert result.archive.dims.tolist() == [10, 10] and 0 < result.archive.stats.num_elites <= 80


def _assert_same_archive(a, b):
    a, b = _sorted_elites(a), _sorted_elites(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def _counting(scoring):
    calls, evaluate = [0], scoring.evaluate

    def counted(*args, **kwargs):
        calls[0] += 1
        return evaluate(*args, **kwargs)

    scoring.evaluate = counted
    return calls


def test_longer_run_with_another_checkpoint_interval_resumes_a_shorter_one(tmp_path):
    path = tmp_path / "c.pkl"
    run_search(_scoring(), replace(CONFIG, iterations=10, checkpoint_every=10), path, progress_bar=False)
    scoring = _scoring()
    calls = _counting(scoring)
    resumed = run_search(scoring, replace(CONFIG, checkpoint_every=2), path, progress_bar=False)
    assert calls[0] == 2 * 10  # ten more iterations, no new start latent
    _assert_same_archive(resumed, run_search(_scoring(), CONFIG, progress_bar=False))
    assert list(resumed.history.iteration) == [10, 12, 14, 16, 18, 20]


def test_shorter_request_on_a_longer_checkpoint_is_refused(tmp_path):
    run_search(_scoring(), CONFIG, tmp_path / "c.pkl", progress_bar=False)
    with pytest.raises(ValueError, match="holds 20 iterations, more than the 10 asked"):
        run_search(_scoring(), replace(CONFIG, iterations=10), tmp_path / "c.pkl", progress_bar=False)


def test_cached_search_resumes_shorter_runs_and_never_returns_a_longer_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path))
    short, long = replace(CONFIG, iterations=10), CONFIG
    cached_search(_scoring(), short, progress_bar=False)
    scoring = _scoring()
    calls = _counting(scoring)
    _assert_same_archive(cached_search(scoring, long, progress_bar=False),
                         run_search(_scoring(), long, progress_bar=False))
    assert calls[0] == 2 * 10  # resumed from the 10-iteration checkpoint
    again = cached_search(_scoring(), short, progress_bar=False)
    _assert_same_archive(again, run_search(_scoring(), short, progress_bar=False))
    assert again.archive.stats.num_elites < run_search(_scoring(), long, progress_bar=False).archive.stats.num_elites


class _Penalty:
    def __init__(self, q):
        self.q = q

    def __call__(self, z, embeddings):
        return (z.norm(dim=1) - self.q).clamp(min=0)


def test_search_key_names_everything_that_shapes_the_archive():
    def key(q=1.0, bound=3.0, prompts=(("a", "b"), ("c", "d")), config=CONFIG):
        scoring = PromptScoring(BoundedLatent(ToyGenerator(), bound), ToyScorer(), ("good", "bad"), list(prompts),
                                regularizers=[_Penalty(q)])
        return search_key(scoring, config)

    base = key()
    assert key() == base  # fresh but equal objects: the same key (no ids or addresses in it)
    assert key(q=2.0) != base and key(bound=2.0) != base and key(prompts=(("a", "b"), ("d", "c"))) != base
    assert key(config=replace(CONFIG, seed=4)) != base
    assert key(config=replace(CONFIG, iterations=99, checkpoint_every=7)) == base
    other_scorer = PromptScoring(BoundedLatent(ToyGenerator(), 3.0), ToyScorer(seed=1), ("good", "bad"),
                                 [("a", "b"), ("c", "d")], regularizers=[_Penalty(1.0)])
    assert search_key(other_scorer, CONFIG) != base


def test_start_batches_and_random_baseline_draw_disjoint_seeds():
    """Offsets like ``seed * 10_007 + b`` collide: seed 100's 8th start batch was seed 0's 12th baseline batch."""
    seen = []
    scoring = _scoring()
    sample = scoring.generator.sample_latents
    scoring.generator.sample_latents = lambda n, seed: seen.append(seed) or sample(n, seed)
    random_archive(scoring, replace(CONFIG, seed=0), n_samples=64 * 12, batch_size=64)
    start_latent(scoring, replace(CONFIG, seed=100, init_batches=8))
    assert len(set(seen)) == len(seen) == 12 + 8


def test_project_archive_rebins_elites_onto_fixed_ranges():
    from ribs.archives import GridArchive

    from qdgs.search import project_archive

    archive = GridArchive(solution_dim=1, dims=(10, 10), ranges=[(-1, 1), (-1, 1)])
    archive.add(np.zeros((3, 1)), np.array([1.0, 2.0, 3.0]), np.array([[-0.9, -0.9], [0.05, 0.05], [0.9, 0.9]]))
    wide = project_archive(archive, (0, 1), bins=(2, 2), ranges=[(-2, 2), (-2, 2)])
    assert len(wide) == 2 and sorted(wide.data("objective")) == [1.0, 3.0]  # the middle elite loses its cell to the best
    narrow = project_archive(archive, (0, 1), bins=(4, 4), ranges=[(-0.5, 0.5), (-0.5, 0.5)])
    assert len(narrow) == 3 and sorted(narrow.data("objective")) == [1.0, 2.0, 3.0]  # outside: the edge cells


def test_an_auto_search_is_keyed_by_the_method_the_timing_chose(monkeypatch):
    """The methods agree only to the last bits, which a search amplifies: the key holds the method that ran."""
    config = SearchConfig(iterations=3, archive_dims=(4, 4), measure_ranges=((-1, 1), (-1, 1)), emitters=2)

    def scoring(method):
        return PromptScoring(ToyGenerator(), ToyScorer(), ("good", "bad"), [("a", "b"), ("c", "d")],
                             jacobian_method=method)

    asked = []
    for chosen in ("retain", "replicate"):
        auto = scoring("auto")
        monkeypatch.setattr(auto, "jacobian_choice", lambda batch, m=chosen: asked.append(batch) or SimpleNamespace(method=m))
        assert search_key(auto, config) == search_key(scoring(chosen), config)
    assert asked == [2, 2]  # timed at the search's gradient batch: one latent per emitter
    assert search_key(scoring("retain"), config) != search_key(scoring("replicate"), config)
