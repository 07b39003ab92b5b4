"""The shared image operations (qdgs.images): degradations, reframing, blur, relighting."""

import pytest
import torch
from qdgs import images


@pytest.mark.parametrize("kind", images.DEGRADATION_KINDS)
def test_degradations_change_images_without_darkening_them(kind):
    x = 0.25 + 0.5 * torch.rand(16, 3, 32, 32)
    y = images.degrade(x, kind, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    assert (y - x).abs().mean() > 0.02
    assert abs(float(y.mean() - x.mean())) < 0.1


def test_reframe_identity_settings_and_blur_zero():
    x = torch.rand(4, 3, 16, 16)
    g = torch.Generator().manual_seed(0)
    y = images.reframe(x, g, max_angle=0.0, scale=(1.0, 1.0), shift=0.0)
    flipped = y.flip(-1)
    assert all(torch.allclose(y[i], x[i], atol=1e-5) or torch.allclose(flipped[i], x[i], atol=1e-5) for i in range(4))
    assert torch.allclose(images.blur(x, torch.zeros(4)), x, atol=1e-5)


def test_relight_keeps_range_and_strength_zero_is_identity():
    x = torch.rand(8, 3, 16, 16)
    g = torch.Generator().manual_seed(0)
    y = images.relight(x, g)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1 and not torch.allclose(x, y)
    assert torch.allclose(images.relight(x, g, strength=0.0), x, atol=1e-6)
