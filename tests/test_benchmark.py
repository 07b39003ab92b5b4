import time

import numpy as np
import pytest

from qdgs.benchmark import PARTS, batching_ceiling, iteration_breakdown, time_jacobians
from qdgs.scoring import JACOBIAN_METHODS, PromptScoring
from qdgs.search import SearchConfig
from toys import ToyGenerator, ToyScorer

CONFIG = SearchConfig(iterations=3, archive_dims=(5, 5), measure_ranges=((-0.4, 0.1), (0.0, 0.4)),
                      init_batches=1, init_batch_size=4)


def _scoring(**kwargs):
    return PromptScoring(ToyGenerator(), ToyScorer(), ("good", "bad"), [("a", "b"), ("c", "d")], **kwargs)


def _slow_generator(scoring, seconds_per_call=0.0, seconds_per_latent=0.0):
    """Make every generator forward sleep: a known cost the timings must find."""
    forward = scoring.generator.forward

    def slow(z):
        time.sleep(seconds_per_call + seconds_per_latent * len(z))
        return forward(z)

    scoring.generator.forward = slow


def test_time_jacobians_finds_the_slow_method_and_the_wrong_one():
    scoring = _scoring()
    jacobian = scoring.jacobian

    def rigged(latents, method):
        if method == "reference":
            time.sleep(0.2)
        j = jacobian(latents, method)
        return j + 0.1 * np.abs(j).max() if method == "replicate" else j

    scoring.jacobian = rigged
    table = time_jacobians(scoring, np.zeros((1, 6)) + 0.3, rounds=3).set_index("method")
    assert sorted(table.index) == sorted(JACOBIAN_METHODS)
    assert table.loc["batched", "speedup"] > 3 and table.loc["retain", "speedup"] > 3
    assert table.loc["replicate", "max_rel_diff"] == pytest.approx(0.1, rel=1e-3)
    assert table.drop(index="replicate").max_rel_diff.max() < 1e-5


@pytest.mark.parametrize("per_latent, expected_k", [(True, 3.0), (False, 1.0)])
def test_batching_ceiling_finds_how_a_pass_scales_with_the_batch(per_latent, expected_k):
    scoring = _scoring()
    if per_latent:  # compute-bound: a pass over 3 × as many latents costs 3 ×, batching gains nothing
        _slow_generator(scoring, seconds_per_latent=0.05)
    else:  # latency-bound: any batch costs the same, batching the 3 rows gains 3 ×
        _slow_generator(scoring, seconds_per_call=0.05)
    got = batching_ceiling(scoring, np.zeros((1, 6)) + 0.3, rounds=3)
    assert got["rows"] == 3
    assert got["k"] == pytest.approx(expected_k, rel=0.3)
    assert got["ceiling"] == pytest.approx(3 / expected_k, rel=0.3)


class _Memory:
    """A stateful regularizer like the uniqueness memory: counts what the search tells it."""

    def __init__(self):
        self.updates = 0

    def __call__(self, z, embeddings):
        return z.sum(dim=1) * 0

    def update(self, accepted):
        self.updates += len(accepted)


@pytest.mark.parametrize("method, generator_calls", [("batched", 2), ("reference", 4)])
def test_iteration_breakdown_times_the_real_search_step(method, generator_calls):
    memory = _Memory()
    scoring = _scoring(regularizers=[memory])
    _slow_generator(scoring, seconds_per_call=0.01)
    table = iteration_breakdown(scoring, CONFIG, iterations=3, method=method, warmup=1).set_index("part")
    assert list(table.index) == list(PARTS)
    # one generator forward per Jacobian row for the DQD latent (1 batched, 3 reference) + 1 for the others
    assert table.loc["generator forward", "ms"] == pytest.approx(10 * generator_calls, rel=0.3)
    assert table.loc["generator forward", "share"] > 0.5
    assert memory.updates > 0  # the uniqueness memory is part of the step
    assert scoring.jacobian_method == "batched"  # the scoring's own method is restored


def test_iteration_breakdown_refuses_an_unknown_method():
    with pytest.raises(ValueError, match="jacobian_method must be one of"):
        iteration_breakdown(_scoring(), CONFIG, iterations=1, method="batchd", warmup=0)


@pytest.mark.slow
def test_paper_scale_architectures_give_equal_jacobians_on_cpu():
    """The GPU benchmark's models (StyleGAN2, shrunk to 32 px, + ViT-B/32) run and agree across methods."""
    from qdgs.benchmark import paper_scale_scoring

    scoring = paper_scale_scoring("cpu", channels=((4, 64), (8, 64), (16, 32), (32, 32)))
    z = scoring.generator.sample_latents(1, seed=0).numpy()
    table = time_jacobians(scoring, z, methods=["batched"], rounds=1, warmup=0).set_index("method")
    assert table.loc["batched", "max_rel_diff"] < 1e-4
