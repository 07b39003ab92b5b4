"""The device parameter: what each value resolves to, and the errors where it cannot be met."""

import pytest
import torch

from qdgs.device import resolve_device
from qdgs.params import ParameterError
from qdgs.profiles import SPECS


def test_auto_is_cuda_exactly_when_present():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_a_gpu_says_what_to_do():
    with pytest.raises(RuntimeError, match="no CUDA device.*device=cpu"):
        resolve_device("cuda:0")


@pytest.mark.parametrize("chapter", sorted(SPECS))
def test_every_chapter_has_a_checked_device_parameter(chapter):
    s = SPECS[chapter]
    assert s.resolve("smoke").device == "auto"
    assert s.resolve("smoke", device="cuda:1").device == "cuda:1"
    with pytest.raises(ParameterError, match="device"):
        s.resolve("smoke", device="gpu")
