"""The image-folder dataset layout shared by the shapes, faces and recognition chapters.

A dataset directory holds ``images/<class_or_identity>/<index>.png``, a ``metadata.csv`` with one
row per image (``path`` relative to the directory, ``label`` and any domain columns such as
``latent`` (a JSON list), ``objective``, ``m0 … m{M-1}``, ``bin``) and a ``datasheet.md`` saying
how it was made. Plain PNG folders can be opened by any tool (torchvision's ``ImageFolder``
reads them too), and the metadata keeps each image's latent and scores for audits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import Dataset


def write_image_folder(root: str | Path, images: torch.Tensor | np.ndarray, labels: Sequence,
                       class_names: Sequence[str] | None = None, columns: Mapping[str, Sequence] | None = None,
                       datasheet: str = "") -> pd.DataFrame:
    """Write images in the image-folder layout and return the metadata table.

    Args:
        root: the dataset directory (created; it should be empty or absent, e.g. a cache build dir).
        images: (N, 3, H, W) images, floats in [0, 1] or uint8.
        labels: (N,) integer labels (or identities); the folder of an image is ``class_names[label]``
            when ``class_names`` is given, else the label itself.
        class_names: a folder name per label.
        columns: extra metadata columns, each of length N (arrays become JSON lists).
        datasheet: markdown describing the dataset (provenance, sizes, labelling rule).

    Returns:
        The metadata table written to ``metadata.csv``.
    """
    root = Path(root)
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = np.rint(np.clip(images, 0, 1) * 255).astype(np.uint8)
    if images.ndim != 4 or images.shape[1] != 3 or len(images) != len(labels):
        raise ValueError(f"images must be (N, 3, H, W) with N = len(labels); got {images.shape}, {len(labels)} labels")
    rows = []
    for i, (img, label) in enumerate(zip(images, labels)):
        folder = class_names[int(label)] if class_names is not None else str(label)
        rel = Path("images") / folder / f"{i:06d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.transpose(1, 2, 0)).save(root / rel)
        rows.append({"path": rel.as_posix(), "label": int(label), "folder": folder})
    meta = pd.DataFrame(rows)
    for name, values in (columns or {}).items():
        values = list(values)
        if len(values) != len(meta):
            raise ValueError(f"metadata column '{name}' has {len(values)} values for {len(meta)} images")
        meta[name] = [json.dumps(np.asarray(v).tolist()) if np.ndim(v) else v for v in values]
    meta.to_csv(root / "metadata.csv", index=False)
    (root / "datasheet.md").write_text(datasheet or f"# Dataset\n\n{len(meta)} images.\n")
    return meta


class ImageFolderDataset(Dataset):
    """Reads an image-folder dataset: ``dataset[i] -> (image (3, H, W) float in [0, 1], label int)``.

    Args:
        root: the dataset directory (with ``metadata.csv``).
        label_column: the metadata column holding the integer label (``label`` or ``identity``).
    """

    def __init__(self, root: str | Path, label_column: str = "label") -> None:
        self.root = Path(root)
        meta_path = self.root / "metadata.csv"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path} not found: {self.root} is not an image-folder dataset "
                                    "(write one with qdgs.datasets.write_image_folder)")
        self.meta = pd.read_csv(meta_path)
        if label_column not in self.meta:
            raise ValueError(f"{meta_path} has no column '{label_column}'; columns: {', '.join(self.meta.columns)}")
        self.labels = self.meta[label_column].to_numpy(dtype=np.int64)

    def __len__(self) -> int:
        return len(self.meta)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        with Image.open(self.root / self.meta.path.iloc[i]) as img:
            arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255
        return torch.from_numpy(arr).permute(2, 0, 1), int(self.labels[i])

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All images (N, 3, H, W) in [0, 1] and labels (N,), loaded at once (small datasets)."""
        if not len(self):
            return torch.zeros(0, 3, 1, 1), torch.zeros(0, dtype=torch.long)
        images = torch.stack([self[i][0] for i in range(len(self))])
        return images, torch.tensor(self.labels)
