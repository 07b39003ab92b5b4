import pytest

from qdgs.cache import artifact, atomic_write, params_key


def test_artifact_is_built_once_and_keyed_by_params(tmp_path, monkeypatch):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path))
    calls = []

    def build(d):
        calls.append(d)
        (d / "x.txt").write_text("hello")

    a = artifact("thing", {"n": 1}, build)
    b = artifact("thing", {"n": 1}, build)
    c = artifact("thing", {"n": 2}, build)
    assert a == b != c and len(calls) == 2
    assert (a / "x.txt").read_text() == "hello" and (a / "params.json").exists()
    assert params_key("thing", {"n": 1}) != params_key("other", {"n": 1})


def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path))

    def build(d):
        (d / "half.bin").write_bytes(b"12")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        artifact("thing", {"n": 1}, build)
    assert list((tmp_path / "thing").iterdir()) == []


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as f:
            f.write("new, partial")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_fingerprint_follows_content_not_location(tmp_path):
    from qdgs.cache import fingerprint

    a, b = tmp_path / "a", tmp_path / "elsewhere" / "b"
    for d in (a, b):
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "x.txt").write_text("same")
    assert fingerprint(a) == fingerprint(b)
    (b / "sub" / "x.txt").write_text("changed")
    assert fingerprint(a) != fingerprint(b)
    (a / "MANIFEST.sha256").write_text("abc  sub/x.txt\n")  # official datasets: the manifest stands for the files
    before = fingerprint(a)
    (a / "sub" / "x.txt").write_text("not read")
    assert fingerprint(a) == before


def test_weights_hash_changes_with_any_weight():
    import torch

    from qdgs.cache import weights_hash

    model = torch.nn.Linear(3, 2)
    before = weights_hash(model)
    with torch.no_grad():
        model.bias[0] += 1
    assert weights_hash(model) != before


def test_code_fingerprint_follows_code_and_imports_not_prose(tmp_path, monkeypatch):
    import importlib
    import sys

    from qdgs import cache

    pkg = tmp_path / "fakepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "helper.py").write_text('"""Doc."""\nSCALE = 2\n')
    (pkg / "builder.py").write_text('"""Builds."""\nfrom fakepkg.helper import SCALE\n\n\ndef build():\n    """Doc."""\n    return SCALE\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cache, "PACKAGE", "fakepkg")

    def fingerprint():
        cache.code_fingerprint.cache_clear()
        importlib.invalidate_caches()
        return cache.code_fingerprint("fakepkg.builder")

    try:
        before = fingerprint()
        (pkg / "builder.py").write_text('"""Other prose."""\n# a comment\nfrom fakepkg.helper import SCALE\n\n\n'
                                        'def build():\n    """Changed docstring."""\n    return SCALE\n')
        assert fingerprint() == before  # docstrings, comments and layout are not code
        (pkg / "__init__.py").write_text("from fakepkg.helper import SCALE as EXPORTED\n")
        assert fingerprint() == before  # a package's re-exports are not the imported module's code
        (pkg / "helper.py").write_text('"""Doc."""\nSCALE = 3\n')
        assert fingerprint() != before  # a change in an imported module is
    finally:
        cache.code_fingerprint.cache_clear()
        for name in [m for m in sys.modules if m.startswith("fakepkg")]:
            del sys.modules[name]


def test_artifact_keys_include_the_builders_code(tmp_path, monkeypatch):
    from qdgs import cache

    monkeypatch.setenv("QDGS_CACHE", str(tmp_path))
    path = cache.artifact("demo", {"n": 1}, lambda tmp: (tmp / "x").write_text("1"))
    fingerprints = {"tests.test_cache": "aaaa", "qdgs.search": "bbbb"}
    monkeypatch.setattr(cache, "code_fingerprint", lambda *mods: "+".join(fingerprints.get(m, "") for m in mods))
    other = cache.artifact("demo", {"n": 1}, lambda tmp: (tmp / "x").write_text("1"))
    assert other != path  # the same parameters built by other code are another artifact
    assert cache.artifact("demo", {"n": 1}, lambda tmp: None, code=("qdgs.search",)) != other


def test_arrays_hash_follows_content_dtype_and_shape():
    import numpy as np
    import torch

    from qdgs.cache import arrays_hash

    a = np.arange(6, dtype=np.float32)
    assert arrays_hash(a, None) == arrays_hash(torch.from_numpy(a.copy()), None)  # tensors hash as arrays
    assert arrays_hash(a) != arrays_hash(a.reshape(2, 3))
    assert arrays_hash(a) != arrays_hash(a.astype(np.float64))
    b = a.copy()
    b[0] = 1
    assert arrays_hash(a) != arrays_hash(b)
    assert arrays_hash(a, None) != arrays_hash(a)  # "not given" is part of the identity
