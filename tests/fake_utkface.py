"""A tiny fake UTKFace for tests: labelled random images and a data root whose manifest can change."""

import numpy as np
import pandas as pd
from qdgs.data import FaceArrays


def fake_faces(n: int = 40, size: int = 32, seed: int = 0) -> FaceArrays:
    """``n`` random (size × size) uint8 faces with random UTKFace labels."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"file": [f"UTKFace/{i}.jpg" for i in range(n)], "age": rng.integers(1, 90, n),
                          "gender": rng.integers(0, 2, n), "race": rng.integers(0, 5, n)})
    return FaceArrays((rng.random((n, size, size, 3)) * 255).astype(np.uint8), table)


def use_fake_utkface(monkeypatch, tmp_path, faces: FaceArrays, manifest: str = "v1") -> None:
    """Serve ``faces`` as UTKFace from a fake data root whose ``MANIFEST.sha256`` says ``manifest``."""
    from qdgs import data
    from qdgs.faces import utkface

    root = tmp_path / "data"
    (root / "utkface" / "UTKFace").mkdir(parents=True, exist_ok=True)
    (root / "utkface" / "MANIFEST.sha256").write_text(manifest)
    monkeypatch.setenv("QDGS_DATA", str(root))
    monkeypatch.setattr(data, "load_utkface", lambda size=64, **kw: faces)
    monkeypatch.setattr(utkface, "utkface_ita", lambda size=64: np.linspace(-30, 70, len(faces.table)))
