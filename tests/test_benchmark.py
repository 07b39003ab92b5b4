"""Timing helpers, on a fake clock that only the models' forwards advance: exact, whatever the load."""

import types

import numpy as np
import pytest

from qdgs import benchmark
from qdgs.benchmark import PARTS, batching_ceiling, iteration_breakdown, time_jacobians
from qdgs.scoring import JACOBIAN_METHODS, PromptScoring
from qdgs.search import SearchConfig
from toys import ToyGenerator, ToyScorer

CONFIG = SearchConfig(iterations=3, archive_dims=(5, 5), measure_ranges=((-0.4, 0.1), (0.0, 0.4)),
                      init_batches=1, init_batch_size=4)


def _scoring(**kwargs):
    return PromptScoring(ToyGenerator(), ToyScorer(), ("good", "bad"), [("a", "b"), ("c", "d")], **kwargs)


@pytest.fixture
def clock(monkeypatch):
    """The benchmark's clock, as seconds a test adds by hand (the real work takes none)."""
    now = [0.0]
    monkeypatch.setattr(benchmark, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    return now


def _costly(obj, attr, clock, per_call=0.0, per_latent=0.0):
    """Make each call of ``obj.attr`` cost ``per_call + per_latent · batch`` seconds of the fake clock."""
    original = getattr(obj, attr)

    def costly(x):
        clock[0] += per_call + per_latent * len(x)
        return original(x)

    setattr(obj, attr, costly)


def test_time_jacobians_counts_the_passes_of_each_method_and_flags_a_wrong_one(clock):
    scoring = _scoring()
    _costly(scoring.generator, "forward", clock, per_call=1.0)  # a latency-bound generator
    jacobian = scoring.jacobian

    def replicate_off(latents, method):
        j = jacobian(latents, method)
        return j + 0.1 * np.abs(j).max() if method == "replicate" else j

    scoring.jacobian = replicate_off
    table = time_jacobians(scoring, np.zeros((1, 6)) + 0.3, rounds=3).set_index("method")
    assert sorted(table.index) == sorted(JACOBIAN_METHODS)
    assert table.loc["reference", "ms"] == 3000  # a forward per row: objective + 2 measures
    for method in ("batched", "retain", "replicate"):  # one forward each
        assert table.loc[method, "ms"] == 1000 and table.loc[method, "speedup"] == 3
    assert table.loc["replicate", "max_rel_diff"] == pytest.approx(0.1, rel=1e-3)
    assert table.drop(index="replicate").max_rel_diff.max() < 1e-5


@pytest.mark.parametrize("cost, expected_k", [({"per_latent": 1.0}, 3.0), ({"per_call": 1.0}, 1.0)])
def test_batching_ceiling_finds_how_a_pass_scales_with_the_batch(clock, cost, expected_k):
    """Compute-bound (cost per latent): batching the 3 rows gains nothing; latency-bound: it gains 3 ×."""
    scoring = _scoring()
    _costly(scoring.generator, "forward", clock, **cost)
    got = batching_ceiling(scoring, np.zeros((1, 6)) + 0.3, rounds=3)
    assert got["rows"] == 3 and got["k"] == expected_k and got["ceiling"] == 3 / expected_k


class _Memory:
    """A stateful regularizer like the uniqueness memory: counts what the search tells it."""

    def __init__(self):
        self.updates = 0

    def __call__(self, z, embeddings):
        return z.sum(dim=1) * 0

    def update(self, accepted):
        self.updates += len(accepted)


@pytest.mark.parametrize("method, forwards", [("batched", 2), ("reference", 4)])
def test_iteration_breakdown_times_the_real_search_step(clock, method, forwards):
    memory = _Memory()
    scoring = _scoring(regularizers=[memory])
    _costly(scoring.generator, "forward", clock, per_call=1.0)
    _costly(scoring.scorer, "encode_image", clock, per_call=0.5)
    table = iteration_breakdown(scoring, CONFIG, iterations=3, method=method, warmup=1).set_index("part")
    assert list(table.index) == list(PARTS)
    # per iteration: the DQD latent's forwards (1 batched, 1 per Jacobian row in the reference) + 1 for the others
    assert table.loc["generator forward", "ms"] == 1000 * forwards
    assert table.loc["scorer forward", "ms"] == 500 * forwards
    assert table.loc["generator forward", "share"] == pytest.approx(2 / 3)
    assert table.loc[["backward", "pyribs ask/tell", "uniqueness memory"], "ms"].abs().max() < 1e-9
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
