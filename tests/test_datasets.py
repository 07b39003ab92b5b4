"""The image-folder dataset writer and reader."""

import json

import numpy as np
import pytest
import torch

from qdgs.datasets import ImageFolderDataset, write_image_folder


def test_write_read_round_trip(tmp_path):
    images = torch.rand(5, 3, 12, 12)
    labels = [0, 1, 1, 0, 1]
    meta = write_image_folder(tmp_path, images, labels, class_names=["triangle", "square"],
                              columns={"latent": [np.arange(3) * i for i in range(5)], "m0": np.linspace(-1, 1, 5)},
                              datasheet="# Test set\n")
    assert (tmp_path / "images" / "square").is_dir() and (tmp_path / "datasheet.md").read_text() == "# Test set\n"
    ds = ImageFolderDataset(tmp_path)
    assert len(ds) == 5
    x, y = ds[1]
    assert y == 1 and x.shape == (3, 12, 12)
    assert torch.allclose(x, images[1], atol=1 / 255 + 1e-6)  # 8-bit PNG
    assert json.loads(ds.meta.latent[2]) == [0, 2, 4] and ds.meta.m0.iloc[0] == pytest.approx(-1)
    assert meta.path.iloc[0] == "images/triangle/000000.png"
    xs, ys = ds.tensors()
    assert xs.shape == (5, 3, 12, 12) and ys.tolist() == labels


def test_reader_refuses_a_non_dataset(tmp_path):
    with pytest.raises(FileNotFoundError, match="write_image_folder"):
        ImageFolderDataset(tmp_path)


def test_writer_checks_lengths(tmp_path):
    with pytest.raises(ValueError, match="len"):
        write_image_folder(tmp_path, torch.rand(2, 3, 4, 4), [0])
