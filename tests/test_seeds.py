"""The seed policy: named streams are reproducible, distinct, and never touch the global RNG."""

import numpy as np
import pytest
import torch
from torch import nn

from qdgs.seeds import derive, numpy_rng, seeded_init, torch_generator


def test_same_name_same_stream_and_different_names_differ():
    assert derive(3, "search", "start", 0) == derive(3, "search", "start", 0)
    seeds = {derive(s, *name) for s in range(4) for name in
             [("search", "start", b) for b in range(32)] + [("random",), ("vae", "init"), ("vae", "batches")]}
    assert len(seeds) == 4 * 35  # no two streams share a seed (seed+1 and seed*10007+b used to collide)
    assert np.array_equal(numpy_rng(1, "a").random(5), numpy_rng(1, "a").random(5))
    assert not np.array_equal(numpy_rng(1, "a").random(5), numpy_rng(2, "a").random(5))
    a = torch.randn(4, generator=torch_generator(0, "x"))
    assert torch.equal(a, torch.randn(4, generator=torch_generator(0, "x")))
    assert not torch.equal(a, torch.randn(4, generator=torch_generator(0, "y")))


def test_seeded_init_is_reproducible_and_restores_the_global_state():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    with seeded_init(7, "model"):
        first = nn.Linear(4, 4).weight.detach().clone()
    assert torch.equal(torch.rand(3), expected_next)  # the caller's global stream is untouched
    with seeded_init(7, "model"):
        assert torch.equal(nn.Linear(4, 4).weight, first)
    with seeded_init(8, "model"):
        assert not torch.equal(nn.Linear(4, 4).weight, first)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_bad_seeds_are_refused(bad):
    with pytest.raises(ValueError, match="seed"):
        derive(bad, "x")
