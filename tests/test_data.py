"""Dataset loaders: UTKFace labels and deduplication, checksums, LFW pairs, clear errors, read-only root."""

import shutil

import numpy as np
import pytest

from qdgs import data


def test_utkface_names_parse_and_malformed_are_skipped():
    assert data.parse_utkface_name("26_1_3_20170117154513561.jpg.chip.jpg") == (26, 1, 3)
    assert data.parse_utkface_name("39_1_20170116174525125.jpg.chip.jpg") is None  # race missing
    assert data.parse_utkface_name("55_0_0_20170116232725357jpg.chip.jpg") is None
    assert data.parse_utkface_name("24_0_9_20170116220224657.jpg.chip.jpg") is None  # race out of range


def _mini_utkface(root, data_root):
    """A copy of 8 UTKFace files (two byte-identical groups among them) with their own manifest."""
    src = data_root / "utkface"
    groups = [line.split("\t") for line in (src / "duplicates.tsv").read_text().splitlines()
              if line and not line.startswith("#")]
    agree = next(g for g in groups if g[1] == "1")
    disagree = next(g for g in groups if g[1] == "0")
    manifest = dict(reversed(line.split(None, 1)) for line in (src / "MANIFEST.sha256").read_text().splitlines())
    manifest = {k.strip(): v for k, v in manifest.items()}
    names = agree[2:] + disagree[2:] + sorted(p.name for p in (src / "UTKFace").iterdir())[:4]
    (root / "UTKFace").mkdir(parents=True)
    lines = []
    for n in names:
        shutil.copy(src / "UTKFace" / n, root / "UTKFace" / n)
        lines.append(f"{manifest['UTKFace/' + n]}  UTKFace/{n}")
    (root / "MANIFEST.sha256").write_text("\n".join(lines) + "\n")
    (root / "duplicates.tsv").write_text("#\n" + "\t".join(agree) + "\n" + "\t".join(disagree) + "\n")
    return agree[2:], disagree[2:]


def test_utkface_dedup_cache_and_checksums(tmp_path, data_root, monkeypatch):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "utkface"
    agree, disagree = _mini_utkface(root, data_root)
    table = data.utkface_table(root)
    files = set(table.file)
    assert sum(f"UTKFace/{n}" in files for n in agree) == 1  # agreeing copies: one kept
    assert not any(f"UTKFace/{n}" in files for n in disagree)  # conflicting labels: all dropped
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    faces = data.load_utkface(size=16, root=root)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written to the data root
    assert faces.images.shape == (len(table), 16, 16, 3) and faces.images.dtype == np.uint8
    assert list(faces.table.file) == list(table.file)
    assert data.verify(root) == len(data.read_manifest(root))
    victim = root / table.file[0]
    victim.write_bytes(victim.read_bytes()[:-10] + b"corrupted!")
    with pytest.raises(RuntimeError, match="corrupt"):
        data.verify(root)
    with pytest.raises(RuntimeError, match="corrupt"):
        data.load_utkface(size=24, root=root)


def test_missing_datasets_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("QDGS_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="place .*UTKFace"):
        data.utkface_dir()
    with pytest.raises(FileNotFoundError, match="place lfw-deepfunneled"):
        data.read_lfw_pairs()


def test_lfw_pairs_follow_view2_protocol(data_root):
    pairs = data.read_lfw_pairs(data_root / "lfw")
    assert len(pairs) == 6000 and pairs.same.sum() == 3000
    assert (pairs.groupby("fold").same.agg(["sum", "count"]).values == [300, 600]).all()
    first = pairs.iloc[0]
    assert first.same and first.path1.endswith("_0001.jpg")


def test_utkface_cache_is_keyed_by_content_not_location(tmp_path, data_root, monkeypatch):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path / "cache"))
    _mini_utkface(tmp_path / "utkface", data_root)
    shutil.copytree(tmp_path / "utkface", tmp_path / "copy")
    first = data.load_utkface(size=16, root=tmp_path / "utkface")
    assert np.array_equal(data.load_utkface(size=16, root=tmp_path / "copy").images, first.images)
    assert len(list((tmp_path / "cache" / "utkface-arrays").iterdir())) == 1  # a copy elsewhere reuses it
    (tmp_path / "copy" / "MANIFEST.sha256").unlink()  # a user's own copy: no manifest to vouch for the bytes
    unchecked = data.load_utkface(size=16, root=tmp_path / "copy", verify_files=False)
    names = list(unchecked.table.file)
    (tmp_path / "copy" / names[0]).write_bytes((tmp_path / "copy" / names[1]).read_bytes())
    changed = data.load_utkface(size=16, root=tmp_path / "copy", verify_files=False)
    assert np.array_equal(changed.images[0], changed.images[1])  # the changed image was decoded afresh
    assert not np.array_equal(changed.images[0], unchecked.images[0])
