"""Recognition artifacts are keyed by the content of what they read, never by where it lies."""

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from qdgs.recognition import TrainConfig, identity_set_fingerprint, load_lfw, save_backbone
from qdgs.recognition import experiment as ex
from recognition_fixtures import TINY, fake_lfw, toy_faces, write_identity_folder

QUICK = TrainConfig(head="cosface", scale=16.0, margin=0.1, epochs=1, batch_size=8, lr=0.05)


def _flip_one_pixel(png) -> None:
    rgb = np.asarray(Image.open(png)).copy()
    rgb[0, 0, 0] ^= 1
    Image.fromarray(rgb).save(png)


def _artifacts(tmp_path, kind: str) -> int:
    return sum(1 for p in (tmp_path / "cache" / kind).iterdir() if not p.name.startswith("."))


def test_identity_set_fingerprint_follows_what_is_read(tmp_path):
    write_identity_folder(tmp_path / "a", toy_faces(n_ids=4, per=4))
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
    write_identity_folder(tmp_path / "a", toy_faces(n_ids=4, per=4))
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


def test_lfw_cache_is_keyed_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path / "cache"))
    fake_lfw(tmp_path / "lfw")
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
    fake_lfw(tmp_path / "lfw", manifest=True)
    assert len(load_lfw(size=32, crop=130, root=tmp_path / "lfw").same) == 4
    image = tmp_path / "lfw" / "lfw-deepfunneled" / "Cy_C" / "Cy_C_0002.jpg"
    Image.fromarray(np.full((250, 250, 3), 7, np.uint8)).save(image)  # decodable, but not what the manifest lists
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path / "fresh-cache"))
    with pytest.raises(RuntimeError, match="Cy_C_0002.jpg is corrupt"):
        load_lfw(size=32, crop=130, root=tmp_path / "lfw")
