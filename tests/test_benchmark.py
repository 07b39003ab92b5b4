import numpy as np

from qdgs.benchmark import iteration_breakdown, time_jacobians
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


def test_iteration_breakdown_accounts_for_all_parts():
    config = SearchConfig(iterations=3, archive_dims=(5, 5), measure_ranges=((-0.4, 0.1), (0.0, 0.4)),
                          init_batches=1, init_batch_size=4)
    table = iteration_breakdown(_scoring(), config, iterations=3)
    assert list(table.part) == ["generator forward", "scorer forward", "backward", "pyribs ask/tell"]
    assert abs(table.share.sum() - 1) < 1e-9 and (table.ms > 0).all()
