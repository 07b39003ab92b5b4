"""Labelled identity sets for recognition training: image-folder and InsightFace record layouts.

Both are read into one uint8 tensor in memory: the synthetic sets of this project (thousands of
faces) fit easily, and batches then cost no decoding. Paper-scale real sets (CASIA-WebFace,
0.5 M faces at 112 px ≈ 19 GB) need a streaming reader instead; this module says so rather
than trying.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from qdgs.cache import fingerprint

#: MXNet RecordIO magic number that starts every record of a ``.rec`` file.
RECORD_MAGIC = 0xCED7230A
_HEADER = struct.Struct("<IfQQ")  # flag, label, id, id2 (MXNet IRHeader)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class FaceSet:
    """Faces with identity labels: (N, 3, S, S) uint8 ``images`` and (N,) int64 ``labels`` in 0..C−1."""

    images: torch.Tensor
    labels: torch.Tensor

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0


def decode(data: bytes, size: int, crop: int | None = None) -> np.ndarray:
    """(3, size, size) uint8 from encoded image bytes, after an optional central ``crop`` px square."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    if crop:
        w, h = img.size
        left, top = (w - crop) // 2, (h - crop) // 2
        img = img.crop((left, top, left + crop, top + crop))
    if img.size != (size, size):
        img = img.resize((size, size), Image.BICUBIC)
    return np.asarray(img).transpose(2, 0, 1)


def _faceset(images: list[np.ndarray], identities: list) -> FaceSet:
    if not images:
        raise RuntimeError("the identity set holds no images")
    _, labels = np.unique(np.asarray(identities).astype(str), return_inverse=True)
    return FaceSet(torch.from_numpy(np.stack(images)), torch.from_numpy(labels.astype(np.int64)))


def _image_folder_listing(root: Path) -> tuple[list[Path], list]:
    """The image files of an image-folder set and each one's identity (see :func:`load_image_folder`)."""
    if (root / "metadata.csv").is_file():
        meta = pd.read_csv(root / "metadata.csv")
        if not {"path", "identity"} <= set(meta.columns):
            raise RuntimeError(f"{root / 'metadata.csv'} needs 'path' and 'identity' columns")
        files, ids = [root / p for p in meta.path], list(meta.identity)
    else:
        base = root / "images" if (root / "images").is_dir() else root
        files = sorted(p for p in base.glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)
        ids = [p.parent.name for p in files]
    missing = [f for f in files if not f.is_file()]
    if missing or not files:
        raise FileNotFoundError(f"identity set {root}: {len(missing)} listed images missing "
                                f"(e.g. {missing[0] if missing else 'no images found'}); expected "
                                f"images/<identity>/<k>.png and metadata.csv (see qdgs.faces.write_face_dataset)")
    return files, ids


def load_image_folder(root: str | Path, size: int = 112) -> FaceSet:
    """An image-folder set: ``metadata.csv`` (``path``, ``identity``) if present, else ``[images/]<identity>/*``."""
    files, ids = _image_folder_listing(Path(root))
    return _faceset([decode(f.read_bytes(), size) for f in files], ids)


def read_record(rec: str | Path) -> list[tuple[float, bytes]]:
    """(label, image bytes) of every face in an InsightFace/MXNet ``train.rec`` (with its ``.idx``).

    The first record of InsightFace packs is a header (flag > 0) whose label says where the faces
    end; identity-range records after that are skipped.
    """
    rec = Path(rec)
    idx = rec.with_suffix(".idx")
    if not idx.is_file():
        raise FileNotFoundError(f"{idx} not found: InsightFace record sets need train.rec and train.idx side by side")
    offsets = {int(k): int(v) for k, v in (line.split("\t") for line in idx.read_text().split("\n") if line.strip())}
    data = rec.read_bytes()

    def record(key: int) -> tuple[np.ndarray, bytes]:
        at = offsets[key]
        magic, lrec = struct.unpack_from("<II", data, at)
        if magic != RECORD_MAGIC or lrec >> 29:
            raise RuntimeError(f"{rec}: record {key} is corrupt or multi-part; re-download the record set")
        body = data[at + 8:at + 8 + (lrec & ((1 << 29) - 1))]
        flag, label, _, _ = _HEADER.unpack_from(body)
        labels = np.frombuffer(body, np.float32, flag, _HEADER.size) if flag else np.array([label], np.float32)
        return labels, body[_HEADER.size + 4 * flag:]

    keys = sorted(offsets)
    first_labels, first_body = record(keys[0])
    if len(first_labels) > 1 and not first_body:  # InsightFace header record: faces are keys 1..label[0]-1
        keys = [k for k in keys if 0 < k < int(first_labels[0])]
    faces = []
    for k in keys:
        labels, body = record(k)
        faces.append((float(labels[0]), body))
    return faces


def write_record(rec: str | Path, faces: list[tuple[int, bytes]]) -> None:
    """Write an InsightFace-style ``.rec``/``.idx`` pair (header record + one record per face).

    Used to make small fixtures, and to pack an image-folder set for tools that want records.
    """
    rec = Path(rec)
    n = len(faces) + 1

    def pack(labels: list[float], payload: bytes) -> bytes:
        flag = 0 if len(labels) == 1 else len(labels)
        head = _HEADER.pack(flag, labels[0] if flag == 0 else 0.0, 0, 0)
        extra = np.asarray(labels, np.float32).tobytes() if flag else b""
        body = head + extra + payload
        pad = (-len(body)) % 4
        return struct.pack("<II", RECORD_MAGIC, len(body)) + body + b"\0" * pad

    chunks, lines, at = [], [], 0
    for key, (labels, payload) in enumerate([([float(n), float(n)], b"")] + [([float(lab)], img) for lab, img in faces]):
        chunk = pack(labels, payload)
        chunks.append(chunk)
        lines.append(f"{key}\t{at}")
        at += len(chunk)
    rec.write_bytes(b"".join(chunks))
    rec.with_suffix(".idx").write_text("\n".join(lines) + "\n")


def load_record(rec: str | Path, size: int = 112) -> FaceSet:
    """An InsightFace record set (``train.rec`` + ``train.idx``) as a :class:`FaceSet`."""
    faces = read_record(rec)
    return _faceset([decode(b, size) for _, b in faces], [int(lab) for lab, _ in faces])


def _record_file(path: Path) -> Path | None:
    """The ``train.rec`` that ``path`` names (the file, or a folder holding one); None for an image folder."""
    if path.suffix == ".rec":
        return path
    if (path / "train.rec").is_file():
        return path / "train.rec"
    if path.is_dir():
        return None
    raise FileNotFoundError(f"no identity set at {path}: pass an image-folder dataset directory "
                            f"(images/<identity>/*.png) or an InsightFace train.rec with its train.idx")


def load_identity_set(path: str | Path, size: int = 112) -> FaceSet:
    """Read a labelled identity set in either layout (a ``.rec`` file, a folder with ``train.rec``, or an image folder)."""
    path = Path(path)
    rec = _record_file(path)
    return load_record(rec, size) if rec else load_image_folder(path, size)


def identity_set_fingerprint(path: str | Path) -> str:
    """A short hash of exactly the files :func:`load_identity_set` reads, never of where they are.

    Keys what is trained on a set: a copy of the set elsewhere shares the hash, a changed face or
    label changes it, and files beside the faces that are not read (a datasheet, an artifact's
    ``params.json``) do not.
    """
    path = Path(path)
    rec = _record_file(path)
    if rec:
        root, files = rec.parent, [rec, rec.with_suffix(".idx")]
    else:
        root, (files, _) = path, _image_folder_listing(path)
        if (path / "metadata.csv").is_file():
            files = [path / "metadata.csv", *files]
    h = hashlib.sha256()
    for f in files:
        h.update(Path(os.path.relpath(f, root)).as_posix().encode())
        h.update(fingerprint(f).encode())
    return h.hexdigest()[:16]
