"""Test-wide settings: offline, quiet, a private artifact cache, the shared data root."""

import os
import tempfile
from pathlib import Path

import pytest

_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["QDGS_PROGRESS"] = "0"
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
if _SHARED_DATA.is_dir():
    os.environ.setdefault("QDGS_DATA", str(_SHARED_DATA))
os.environ.setdefault("QDGS_CACHE", tempfile.mkdtemp(prefix="qdgs-test-cache-"))
os.environ.setdefault("QDGS_RESULTS", tempfile.mkdtemp(prefix="qdgs-test-results-"))

import torch  # noqa: E402  (after the environment is set)

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def data_root() -> Path:
    """The shared datasets (LFW, UTKFace); tests that need them skip when absent."""
    root = Path(os.environ.get("QDGS_DATA", ""))
    if not root.is_dir():
        pytest.skip("QDGS_DATA does not point at the shared datasets")
    return root
