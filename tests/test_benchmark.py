import numpy as np
import pytest

from qdgs.benchmark import batching_ceiling, iteration_breakdown, time_jacobians
from qdgs.scoring import JACOBIAN_METHODS, PromptScoring
from qdgs.search import SearchConfig
from toys import ToyGenerator, ToyScorer


def _scoring():
    return PromptScoring(ToyGenerator(), ToyScorer(), ("good", "bad"), [("a", "b"), ("c", "d")])


def test_time_jacobians_compares_every_method_to_the_reference():
    table = time_jacobians(_scoring(), np.zeros((1, 6)) + 0.3, rounds=2)
    assert sorted(table.method) == sorted(JACOBIAN_METHODS)
    assert (table.max_rel_diff < 1e-5).all() and (table.ms > 0).all()
    assert table.set_index("method").loc["reference", "speedup"] == 1.0


def test_batching_ceiling_times_one_pass_against_a_pass_of_every_row():
    scoring = _scoring()
    seen, outputs = [], scoring.outputs
    scoring.outputs = lambda z: seen.append(len(z)) or outputs(z)
    got = batching_ceiling(scoring, np.zeros((2, 6)) + 0.3, rounds=2)
    assert sorted(set(seen)) == [2, 6] and seen.count(6) == seen.count(2) == 3  # 3 rows, one warm-up round
    assert got["rows"] == 3 and got["ceiling"] == pytest.approx(3 * got["ms_one"] / got["ms_all"])
    assert got["k"] == pytest.approx(got["ms_all"] / got["ms_one"])


@pytest.mark.parametrize("method", ["batched", "retain", "reference"])
def test_iteration_breakdown_accounts_for_all_parts(method):
    config = SearchConfig(iterations=3, archive_dims=(5, 5), measure_ranges=((-0.4, 0.1), (0.0, 0.4)),
                          init_batches=1, init_batch_size=4)
    table = iteration_breakdown(_scoring(), config, iterations=3, method=method)
    assert list(table.part) == ["generator forward", "scorer forward", "backward", "pyribs ask/tell"]
    assert abs(table.share.sum() - 1) < 1e-9 and (table.ms > 0).all()


@pytest.mark.slow
def test_paper_scale_architectures_give_equal_jacobians_on_cpu():
    """The GPU benchmark's models (StyleGAN2, shrunk to 32 px, + ViT-B/32) run and agree across methods."""
    from qdgs.benchmark import paper_scale_scoring

    scoring = paper_scale_scoring("cpu", channels=((4, 64), (8, 64), (16, 32), (32, 32)))
    z = scoring.generator.sample_latents(1, seed=0).numpy()
    table = time_jacobians(scoring, z, methods=["batched"], rounds=1, warmup=0).set_index("method")
    assert table.loc["batched", "max_rel_diff"] < 1e-4
