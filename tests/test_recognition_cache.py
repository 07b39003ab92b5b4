"""Recognition artifacts are keyed by the content of what they read, never by where it lies."""

import hashlib
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from qdgs.recognition import BackboneConfig, TrainConfig, load_lfw, save_backbone
from qdgs.recognition import experiment as ex
from qdgs.recognition.identities import identity_set_fingerprint

TINY = BackboneConfig(depth=18, width=8, input_size=16, stem_stride=1, embedding_dim=32)
QUICK = TrainConfig(head="cosface", scale=16.0, margin=0.1, epochs=1, batch_size=8, lr=0.05)


def _identity_folder(root, n_ids: int = 4, per: int = 4, seed: int = 0) -> None:
    """An image-folder identity set (metadata.csv + PNGs) of noisy per-identity prototypes."""
    rng = np.random.default_rng(seed)
    protos = rng.integers(0, 256, (n_ids, 16, 16, 3))
    rows = []
    for i in range(n_ids * per):
        rel = f"images/{i // per:05d}/{i:03d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        noisy = np.clip(protos[i // per] + rng.integers(-20, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(root / rel)
        rows.append({"path": rel, "identity": i // per})
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)


def _flip_one_pixel(png) -> None:
    rgb = np.asarray(Image.open(png)).copy()
    rgb[0, 0, 0] ^= 1
    Image.fromarray(rgb).save(png)


def _artifacts(tmp_path, kind: str) -> int:
    return sum(1 for p in (tmp_path / "cache" / kind).iterdir() if not p.name.startswith("."))


def test_identity_set_fingerprint_follows_what_is_read(tmp_path):
    _identity_folder(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    (tmp_path / "b" / "datasheet.md").write_text("# not read by the loader\n")
    assert identity_set_fingerprint(tmp_path / "a") == identity_set_fingerprint(tmp_path / "b")
    meta = pd.read_csv(tmp_path / "b" / "metadata.csv")
    meta.loc[0, "identity"] = 1  # a relabelled face
    meta.to_csv(tmp_path / "b" / "metadata.csv", index=False)
    assert identity_set_fingerprint(tmp_path / "a") != identity_set_fingerprint(tmp_path / "b")


def test_trained_backbone_is_keyed_by_data_and_init_content(tmp_path, monkeypatch):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path / "cache"))
    torch.set_num_threads(1)
    _identity_folder(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "copy")
    model, _, first = ex.trained_backbone(tmp_path / "a", TINY, QUICK, progress_bar=False)
    _, _, again = ex.trained_backbone(tmp_path / "copy", TINY, QUICK, progress_bar=False)
    assert again == first and _artifacts(tmp_path, "recognition-model") == 1  # same set elsewhere: reused
    _flip_one_pixel(tmp_path / "copy" / "images" / "00000" / "000.png")
    _, _, changed = ex.trained_backbone(tmp_path / "copy", TINY, QUICK, progress_bar=False)
    assert changed != first  # one changed face: retrained

    save_backbone(model, tmp_path / "one" / "backbone.pt")
    (tmp_path / "two").mkdir()
    shutil.copy(tmp_path / "one" / "backbone.pt", tmp_path / "two" / "start.pt")
    _, _, from_one = ex.trained_backbone(tmp_path / "a", TINY, QUICK, init=tmp_path / "one" / "backbone.pt",
                                         progress_bar=False)
    _, _, from_two = ex.trained_backbone(tmp_path / "a", TINY, QUICK, init=tmp_path / "two" / "start.pt",
                                         progress_bar=False)
    assert from_one == from_two != first  # same starting weights under another name: reused


def _fake_lfw(root, manifest: bool = False) -> None:
    """Three people in the deep-funneled layout, a two-fold pairs.txt and optionally MANIFEST.sha256."""
    people = {"Ann_A": 2, "Bob_B": 1, "Cy_C": 2}
    for name, n in people.items():
        (root / "lfw-deepfunneled" / name).mkdir(parents=True)
        for k in range(1, n + 1):
            rgb = np.zeros((250, 250, 3), np.uint8)
            rgb[60:190, 60:190] = 40 * k + 10 * len(name)
            Image.fromarray(rgb).save(root / "lfw-deepfunneled" / name / f"{name}_{k:04d}.jpg")
    (root / "pairs.txt").write_text("2\t1\nAnn_A\t1\t2\nAnn_A\t1\tBob_B\t1\nCy_C\t1\t2\nBob_B\t1\tCy_C\t2\n")
    if manifest:
        files = sorted(p for p in root.rglob("*") if p.is_file())
        (root / "MANIFEST.sha256").write_text("".join(
            f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(root).as_posix()}\n" for p in files))


def test_lfw_cache_is_keyed_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path / "cache"))
    _fake_lfw(tmp_path / "lfw")
    shutil.copytree(tmp_path / "lfw", tmp_path / "elsewhere")
    first = load_lfw(size=32, crop=130, root=tmp_path / "lfw")
    copy = load_lfw(size=32, crop=130, root=tmp_path / "elsewhere")
    assert torch.equal(first.images, copy.images) and _artifacts(tmp_path, "lfw-pairs") == 1
    image = tmp_path / "elsewhere" / "lfw-deepfunneled" / "Bob_B" / "Bob_B_0001.jpg"
    Image.fromarray(np.full((250, 250, 3), 200, np.uint8)).save(image)
    changed = load_lfw(size=32, crop=130, root=tmp_path / "elsewhere")
    assert _artifacts(tmp_path, "lfw-pairs") == 2 and not torch.equal(changed.images, first.images)


def test_lfw_with_a_manifest_is_checked_while_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path / "cache"))
    _fake_lfw(tmp_path / "lfw", manifest=True)
    assert len(load_lfw(size=32, crop=130, root=tmp_path / "lfw").same) == 4
    image = tmp_path / "lfw" / "lfw-deepfunneled" / "Cy_C" / "Cy_C_0002.jpg"
    Image.fromarray(np.full((250, 250, 3), 7, np.uint8)).save(image)  # decodable, but not what the manifest lists
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path / "fresh-cache"))
    with pytest.raises(RuntimeError, match="Cy_C_0002.jpg is corrupt"):
        load_lfw(size=32, crop=130, root=tmp_path / "lfw")
