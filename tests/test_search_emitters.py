"""Several gradient arborescence emitters share one search: budget, streams and reproducibility."""

from dataclasses import replace

import numpy as np
from qdgs.scoring import PromptScoring
from qdgs.search import SearchConfig, new_state, run_search
from toys import ToyGenerator, ToyScorer

CONFIG = SearchConfig(iterations=12, archive_dims=(10, 10), measure_ranges=((-0.4, 0.1), (0.0, 0.4)),
                      seed=3, init_batches=2, init_batch_size=8, checkpoint_every=4)


def _scoring():
    return PromptScoring(ToyGenerator(), ToyScorer(), ("good", "bad"), [("a", "b"), ("c", "d")])


def test_each_emitter_adds_its_batch_and_the_budget_counts_them():
    scoring, sizes = _scoring(), []
    evaluate = scoring.evaluate
    scoring.evaluate = lambda z, **kw: (sizes.append(len(z)), evaluate(z, **kw))[1]
    three = replace(CONFIG, emitters=3)
    run_search(scoring, three, progress_bar=False)
    per_iteration = sizes[CONFIG.init_batches:]  # after the start-latent batches
    assert per_iteration[:2] == [3, 3 * (CONFIG.batch_size - 1)]  # 3 DQD solutions, then 3 batches
    assert sum(per_iteration) == three.evaluations == 12 * 3 * CONFIG.batch_size
    assert len(new_state(_scoring(), three)["scheduler"].emitters) == 3


def test_emitters_are_a_setting_and_one_emitter_is_the_default():
    assert CONFIG.emitters == 1 and CONFIG.evaluations == 12 * CONFIG.batch_size
    assert replace(CONFIG, emitters=2).key() != CONFIG.key()
    a, b = (run_search(_scoring(), replace(CONFIG, emitters=2), progress_bar=False).elites() for _ in range(2))
    order_a, order_b = np.argsort(a["index"]), np.argsort(b["index"])
    np.testing.assert_array_equal(a["solution"][order_a], b["solution"][order_b])
