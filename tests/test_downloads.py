"""Checked downloads and the restricted unpickler, on tiny files the tests write."""

import hashlib
import io
import pickle
import urllib.request

import numpy as np
import pytest

from qdgs import downloads, safe_pickle
from qdgs.downloads import WeightFile
from qdgs.generators import stylegan2

PAYLOAD = b"tiny weights " * 1000


@pytest.fixture
def served(tmp_path):
    """A file published at a file:// URL, and its table entry without a recorded hash."""
    source = tmp_path / "published" / "w.bin"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    return WeightFile("w.bin", source.as_uri(), sha256=None, size="13 kB")


def test_download_keeps_a_file_whose_sha256_matches(served, tmp_path):
    target = downloads.download(served, tmp_path / "cache" / "w.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert target.read_bytes() == PAYLOAD


def test_download_with_another_sha256_keeps_nothing(served, tmp_path):
    with pytest.raises(RuntimeError, match="nothing was kept"):
        downloads.download(served, tmp_path / "cache" / "w.bin", sha256="0" * 64)
    assert list((tmp_path / "cache").iterdir()) == []  # no file, no temporary


def test_download_without_a_known_sha256_is_refused_before_fetching(served, tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("fetched without a hash"))
    with pytest.raises(FileNotFoundError, match="sha256 of w.bin is not known.*download file://"):
        downloads.download(served, tmp_path / "cache" / "w.bin")


def test_stylegan2_download_is_checked_and_needs_a_hash(served, tmp_path, monkeypatch):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path / "artifacts"))
    for name in ("HF_HUB_OFFLINE", "QDGS_OFFLINE", "QDGS_STYLEGAN2", "QDGS_STYLEGAN2_SHA256"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(stylegan2.PRETRAINED, "ffhq-256", served)
    with pytest.raises(FileNotFoundError, match="not known to qdgs.*place it at"):
        stylegan2.weights_path()
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    path = stylegan2.weights_path(sha256=digest)
    assert path.read_bytes() == PAYLOAD and path.parent == tmp_path / "artifacts" / "weights"
    with pytest.raises(RuntimeError, match="not the expected"):  # the cached file is checked too
        stylegan2.weights_path(sha256="f" * 64)
    monkeypatch.setenv("QDGS_STYLEGAN2_SHA256", "e" * 64)
    with pytest.raises(RuntimeError, match="not the expected"):
        stylegan2.weights_path(path)


def test_insightface_style_bin_loads_with_only_inert_globals():
    bins = [b"\xff\xd8jpeg-a", b"\xff\xd8jpeg-b"]
    assert safe_pickle.load(io.BytesIO(pickle.dumps((bins, [True])))) == (bins, [True])
    old_protocol = pickle.dumps((bins, [True]), protocol=2)
    assert safe_pickle.load(io.BytesIO(old_protocol), safe_pickle.BYTES, encoding="bytes") == (bins, [True])
    arrays = pickle.dumps(([np.frombuffer(b, np.uint8) for b in bins], np.array([True])))
    got, same = safe_pickle.load(io.BytesIO(arrays), safe_pickle.NUMPY_ARRAYS)
    assert bytes(got[1]) == bins[1] and same.tolist() == [True]


def test_a_pickle_that_would_run_code_is_refused():
    class Evil:
        def __reduce__(self):
            import os
            return os.system, ("echo pwned",)

    with pytest.raises(pickle.UnpicklingError, match=r"the \.bin file references (posix|nt|os)\.system"):
        safe_pickle.load(io.BytesIO(pickle.dumps(([Evil()], [True]))), safe_pickle.NUMPY_ARRAYS, what="the .bin file")
