"""Committed artifacts: copied instead of built, checked by sha256, and current with the code."""

import pytest
import torch

from qdgs import committed
from qdgs.cache import params_key


def _commit(root, kind, params, build, files):
    """A committed entry of ``build``'s key under ``root``, with its sums."""
    folder = root / kind / params_key(kind, params, (committed.__name__, build.__module__))
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    committed.write_sums(folder)
    return folder


def _never(d):
    raise AssertionError("built although a committed entry exists")


def test_a_committed_entry_is_copied_into_the_cache_not_built(tmp_path, monkeypatch):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(committed, "COMMITTED", tmp_path / "committed")
    _commit(tmp_path / "committed", "thing", {"n": 1}, _never, {"x.txt": "made by make models"})
    path = committed.artifact("thing", {"n": 1}, _never)
    assert (path / "x.txt").read_text() == "made by make models" and (path / "params.json").is_file()
    assert path.is_relative_to(tmp_path / "cache")
    with pytest.raises(AssertionError, match="built although"):
        committed.artifact("thing", {"n": 2}, _never)  # another key: nothing committed, so it builds
    built = []
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path / "fresh"))
    with committed.artifact_source("build"):  # make models: the committed entry is ignored
        committed.artifact("thing", {"n": 1}, lambda d: built.append(d))
    assert len(built) == 1


def test_a_damaged_or_missing_committed_entry_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(committed, "COMMITTED", tmp_path / "committed")
    folder = _commit(tmp_path / "committed", "thing", {"n": 1}, _never, {"x.txt": "good"})
    (folder / "x.txt").write_text("bad")
    with pytest.raises(RuntimeError, match="x.txt is missing or differs.*make models"):
        committed.artifact("thing", {"n": 1}, _never)
    assert list((tmp_path / "cache" / "thing").iterdir()) == []  # nothing half-copied
    with committed.artifact_source("committed"), pytest.raises(LookupError, match="run `make models`"):
        committed.artifact("thing", {"n": 3}, _never)
    with pytest.raises(ValueError, match="'any', 'build' or 'committed'"):
        with committed.artifact_source("anything"):
            pass


def test_the_committed_models_are_current():
    """Chapter 01's VAEs load from the committed entries alone: a code or default change that moved a key fails here."""
    from qdgs import committed_models

    if committed_models.made_with() != committed_models.libraries():
        pytest.skip(f"the committed models were made with {committed_models.made_with()}, this environment has "
                    f"{committed_models.libraries()}: here the chapter trains them afresh")
    committed_models.check()


def test_make_models_rebuilds_every_recipe_into_the_committed_folder(tmp_path, monkeypatch):
    from qdgs import committed_models

    def toy_recipe():
        committed.artifact("toy", {"n": 1}, lambda d: (d / "w.bin").write_bytes(b"weights"))

    monkeypatch.setattr(committed, "COMMITTED", tmp_path / "committed")
    monkeypatch.setattr(committed_models, "LIBRARIES", tmp_path / "committed" / "libraries.json")
    monkeypatch.setattr(committed_models, "RECIPES", {"toy": (("toy",), toy_recipe)})
    (tmp_path / "committed" / "toy" / "stale-key").mkdir(parents=True)  # an entry no recipe makes any more
    threads = torch.get_num_threads()
    seconds = committed_models.rebuild(committed=tmp_path / "committed", threads=1)
    assert torch.get_num_threads() == threads  # the test process keeps its thread count
    entries = list((tmp_path / "committed" / "toy").iterdir())
    assert set(seconds) == {"toy"} and len(entries) == 1 and entries[0].name != "stale-key"
    assert (entries[0] / "w.bin").read_bytes() == b"weights" and (entries[0] / committed.SUMS).is_file()
    assert committed_models.made_with() == committed_models.libraries()
    committed_models.check()  # the fresh entry loads from the committed folder alone
