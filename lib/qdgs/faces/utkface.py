"""UTKFace as the faces chapter reads it: one held-out split, skin labels, a content fingerprint.

The offline scorer and the audit classifier train on the same 90 % and report on the same 10 %,
so neither number is measured on faces the other model learnt from by accident of a second split.
Artifacts built from UTKFace are keyed by :func:`utkface_fingerprint` (its manifest's hash), so
another copy of the same files reuses them and a changed file rebuilds them.
"""

from __future__ import annotations

import numpy as np
import torch

from qdgs import data
from qdgs.cache import artifact, fingerprint
from qdgs.faces.ita import MIN_SKIN_SHARE, SKIN_LABEL_ITA, ita, skin_labels
from qdgs.seeds import numpy_rng

__all__ = ["HELD_OUT", "LABEL_KEY", "utkface_split", "utkface_fingerprint", "utkface_ita", "utkface_skin", "to_tensor"]

#: Share of the deduplicated UTKFace images held out from every model trained here.
HELD_OUT = 0.1
#: What defines the split and the skin labels: part of the key of every model trained on them.
LABEL_KEY = {"skin_label_ita": SKIN_LABEL_ITA, "min_skin_share": MIN_SKIN_SHARE, "held_out": HELD_OUT,
             "split": "named stream"}


def utkface_split(n: int, seed: int = 0, held_out: float = HELD_OUT) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train, held-out) index split of the ``n`` rows of the deduplicated UTKFace table."""
    held = numpy_rng(seed, "utkface", "held-out split").random(n) < held_out
    return np.flatnonzero(~held), np.flatnonzero(held)


def utkface_fingerprint() -> str:
    """Content hash of the UTKFace folder under the data root (cheap: its ``MANIFEST.sha256``)."""
    return fingerprint(data.utkface_dir())


def utkface_ita(size: int = 64, chunk: int = 2048) -> np.ndarray:
    """Normalised ITA of every preloaded UTKFace image, in :func:`qdgs.data.load_utkface` order (cached)."""
    def build(tmp) -> None:
        images = data.load_utkface(size).images
        values = [ita(np.asarray(images[i:i + chunk])) for i in range(0, len(images), chunk)]
        np.save(tmp / "ita.npy", np.concatenate(values))

    key = {"size": size, "data": utkface_fingerprint(), "min_skin_share": MIN_SKIN_SHARE}
    return np.load(artifact("utkface-ita", key, build) / "ita.npy")


def utkface_skin(faces: data.FaceArrays) -> np.ndarray:
    """(N,) skin labels of preloaded UTKFace (0 dark, 1 light, -1 none; :func:`qdgs.faces.ita.skin_labels`)."""
    return skin_labels(faces.table.race.values, utkface_ita(faces.images.shape[1]))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 → (N, 3, H, W) float in [0, 1]."""
    return torch.as_tensor(np.asarray(images)).permute(0, 3, 1, 2).float() / 255
