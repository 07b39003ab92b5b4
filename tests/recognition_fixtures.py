"""Small recognition fixtures shared by the recognition tests: toy identity sets, image folders, a fake LFW."""

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from qdgs.recognition import BackboneConfig, FaceSet

#: An IR-18 small enough to train in a second on 16 px faces.
TINY = BackboneConfig(depth=18, width=8, input_size=16, stem_stride=1, embedding_dim=32)


def png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) image."""
    buf = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def toy_faces(n_ids: int = 6, per: int = 8, size: int = 16, seed: int = 0) -> FaceSet:
    """``per`` noisy copies of each of ``n_ids`` random prototypes."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(n_ids, 3, size, size, generator=g)
    noise = torch.rand(n_ids, per, 3, size, size, generator=g) * 0.3
    images = ((0.7 * protos[:, None] + noise) * 255).to(torch.uint8).reshape(-1, 3, size, size)
    return FaceSet(images, torch.arange(n_ids).repeat_interleave(per))


def write_identity_folder(root: Path, data: FaceSet) -> None:
    """``data`` as an image-folder identity set: ``images/<identity>/<k>.png`` and ``metadata.csv``."""
    rows = []
    for i, (x, y) in enumerate(zip(data.images, data.labels)):
        rel = f"images/{int(y):05d}/{i:03d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x.permute(1, 2, 0).numpy()).save(root / rel)
        rows.append({"path": rel, "identity": int(y)})
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)


def fake_lfw(root: Path, manifest: bool = False) -> None:
    """Three people in LFW's deep-funneled layout (flat 130 px faces), a two-fold ``pairs.txt`` of four
    pairs and, if asked, a ``MANIFEST.sha256`` as the shared data carries."""
    for name, n in {"Ann_A": 2, "Bob_B": 1, "Cy_C": 2}.items():
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
