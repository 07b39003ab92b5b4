import math

import numpy as np
import pytest
import torch

from qdgs.scoring import JACOBIAN_METHODS, BoundedLatent, PromptScoring, remap_objective, spherical_distance
from toys import ToyGenerator, ToyScorer


def test_spherical_distance_known_values():
    e = torch.eye(3)
    d = spherical_distance(e, torch.cat([e, -e[:1]]))
    assert d[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert d[0, 1] == pytest.approx(math.pi / 2, abs=1e-6)  # orthogonal unit vectors
    assert d[0, 3] == pytest.approx(math.pi, abs=1e-3)  # antipodal
    assert d.shape == (3, 4)


def test_remap_objective_known_values():
    assert remap_objective(torch.tensor([0.0, 2.0, -2.0])).tolist() == [100.0, 0.0, 200.0]


def _scoring(**kwargs):
    return PromptScoring(ToyGenerator(), ToyScorer(), ("good", "bad"), [("a", "b"), ("c", "d")], **kwargs)


def test_objective_and_measures_match_their_definitions():
    scoring = _scoring()
    z = np.random.default_rng(0).normal(size=(5, 6))
    ev = scoring.evaluate(z)
    emb = torch.as_tensor(ev.embeddings)
    d = spherical_distance(emb, scoring.scorer.encode_text(["good", "bad", "a", "b", "c", "d"]))
    np.testing.assert_allclose(ev.objective, ((10 - 5 * (d[:, 0] - d[:, 1])) * 10).numpy(), rtol=1e-5)
    np.testing.assert_allclose(ev.measures[:, 0], (d[:, 2] - d[:, 3]).numpy(), atol=1e-6)
    np.testing.assert_allclose(ev.measures[:, 1], (d[:, 4] - d[:, 5]).numpy(), atol=1e-6)
    assert ev.jacobian is None and ev.images.shape == (5, 3, 8, 8)


def test_regularizers_enter_the_objective():
    plain, reg = _scoring(), _scoring(regularizers=[lambda z, e: z.norm(dim=1)])
    z = np.ones((2, 6))
    diff = plain.evaluate(z).objective - reg.evaluate(z).objective
    np.testing.assert_allclose(diff, 50 * np.sqrt(6), rtol=1e-5)  # remap multiplies the loss by 50


@pytest.mark.parametrize("method", [m for m in JACOBIAN_METHODS if m != "reference"])
def test_one_pass_jacobian_equals_per_measure_passes(method):
    scoring = _scoring(regularizers=[lambda z, e: 0.1 * z.pow(2).sum(1)])
    z = np.random.default_rng(1).normal(size=(3, 6))
    reference = scoring.jacobian(z, "reference")
    assert reference.shape == (3, 3, 6) and np.abs(reference).max() > 1e-3
    np.testing.assert_allclose(scoring.jacobian(z, method), reference, atol=1e-5, rtol=1e-5)


def test_jacobian_matches_finite_differences():
    scoring = _scoring()
    z = np.random.default_rng(2).normal(size=(1, 6))
    jac = scoring.evaluate(z, jacobian=True).jacobian[0]
    eps = 1e-3
    for k in range(6):
        dz = np.zeros_like(z)
        dz[0, k] = eps
        hi, lo = scoring.evaluate(z + dz), scoring.evaluate(z - dz)
        fd = np.concatenate([(hi.objective - lo.objective), (hi.measures - lo.measures)[0]]) / (2 * eps)
        np.testing.assert_allclose(jac[:, k], fd, rtol=2e-2, atol=2e-2)


def test_bounded_latent_keeps_decoded_latents_in_the_box_with_unit_gradients():
    gen = BoundedLatent(ToyGenerator(), bound=2.0)
    z = torch.tensor([[0.1, -0.2, 0.0, 0.3, 0.0, 0.05], [51.0, -80.5, 3.0, 2.5, -2.5, 6.5]], requires_grad=True)
    folded = gen.squash(z)
    assert folded.abs().max() <= 2.0 and torch.allclose(folded[0], z[0].detach(), atol=1e-6)  # the identity inside
    assert folded[1].tolist() == pytest.approx([1.0, -0.5, 1.0, 1.5, -1.5, -1.5])  # folded back at the walls
    folded.sum().backward()
    assert torch.equal(z.grad.abs(), torch.ones_like(z))  # away from the walls: no flat region to stall in
    assert torch.allclose(gen(z[:1]), gen.generator(folded[:1]))
    assert torch.equal(gen.sample_latents(64, seed=1), gen.generator.sample_latents(64, seed=1).clamp(-2, 2))


@pytest.mark.parametrize("error", [RuntimeError("Batching rule not implemented for aten::foo"),
                                   torch.OutOfMemoryError("CUDA out of memory")])
def test_failing_batched_backward_raises_and_never_switches_method(monkeypatch, error):
    scoring = _scoring()
    grad = torch.autograd.grad

    def failing(*args, is_grads_batched=False, **kwargs):
        if is_grads_batched:
            raise error
        return grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", failing)
    with pytest.raises(type(error)) as raised:
        scoring.evaluate(np.zeros((1, 6)), jacobian=True)
    if isinstance(error, torch.OutOfMemoryError):
        assert raised.value is error  # out of memory passes through as it is
    else:
        assert "jacobian_method='retain'" in str(raised.value)
    assert scoring.jacobian_method == "batched"
