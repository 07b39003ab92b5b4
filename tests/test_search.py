import numpy as np
import pytest

from qdgs.scoring import PromptScoring
from qdgs.search import SearchConfig, random_archive, run_search
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
