"""Real face datasets in their official layouts: UTKFace (attributes) and LFW (verification pairs).

Both live under the data root (:func:`qdgs.cache.data_root`, ``$QDGS_DATA``), which may be
read-only: nothing is ever written there. Derived arrays (UTKFace resized into one uint8 array,
which takes about half a minute to decode) go to the artifact cache, keyed by the dataset's
content (its manifest, see :func:`qdgs.cache.fingerprint`), so a changed dataset rebuilds them
and a copy elsewhere reuses them. Every file read for a cached array is checked against
``MANIFEST.sha256`` on the way, so a corrupt copy stops the build with the file's name instead
of silently training on it.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from qdgs.cache import artifact, data_root, fingerprint

UTKFACE_URL = "https://susanqq.github.io/UTKFace/"
LFW_URL = "http://vis-www.cs.umass.edu/lfw/"
#: UTKFace race codes (file-name field 3); categorical labels, not skin-tone measurements.
RACES = ("White", "Black", "Asian", "Indian", "Others")


def _dataset_dir(name: str, what: str, url: str, root: str | Path | None) -> Path:
    path = Path(root) if root is not None else data_root() / name
    if not path.is_dir():
        raise FileNotFoundError(
            f"{name} not found at {path}: place {what} there (official source: {url}), "
            f"or set QDGS_DATA to a folder that holds {name}/"
        )
    return path


def utkface_dir(root: str | Path | None = None) -> Path:
    """The UTKFace folder (``<data root>/utkface``, holding ``UTKFace/*.jpg.chip.jpg``)."""
    path = _dataset_dir("utkface", "the unpacked UTKFace.tar.gz (aligned & cropped faces) as utkface/UTKFace/",
                        UTKFACE_URL, root)
    if not (path / "UTKFace").is_dir():
        raise FileNotFoundError(f"{path} has no UTKFace/ folder: unpack UTKFace.tar.gz into {path} "
                                f"so that images are at {path}/UTKFace/<age>_<gender>_<race>_<date>.jpg.chip.jpg")
    return path


def lfw_dir(root: str | Path | None = None) -> Path:
    """The LFW folder (``<data root>/lfw``, holding ``pairs.txt`` and ``lfw-deepfunneled/``)."""
    path = _dataset_dir("lfw", "lfw-deepfunneled/ and pairs.txt as lfw/lfw-deepfunneled/ and lfw/pairs.txt",
                        LFW_URL, root)
    for item in ("pairs.txt", "lfw-deepfunneled"):
        if not (path / item).exists():
            raise FileNotFoundError(f"{path / item} is missing: place LFW's {item} (from {LFW_URL}) there")
    return path


def read_manifest(folder: Path) -> dict[str, str]:
    """``MANIFEST.sha256`` of a dataset folder as {relative path: sha256}."""
    path = folder / "MANIFEST.sha256"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: it lists the sha256 of every file of the dataset; "
                                "restore it from the dataset's distribution")
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(None, 1)
            entries[name.strip().lstrip("*")] = digest
    return entries


def verify(folder: str | Path, files: list[str] | None = None) -> int:
    """Check files of a dataset folder against its ``MANIFEST.sha256``.

    Args:
        folder: a dataset folder holding ``MANIFEST.sha256``.
        files: relative paths to check (default: every file the manifest lists).

    Returns:
        The number of files checked.

    Raises:
        RuntimeError: naming the first missing or corrupt file and what to do.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    for name in files if files is not None else list(manifest):
        check_bytes(folder, name, (folder / name).read_bytes() if (folder / name).is_file() else None, manifest)
    return len(files if files is not None else manifest)


def check_bytes(folder: Path, name: str, data: bytes | None, manifest: dict[str, str]) -> None:
    """Raise a RuntimeError unless ``data`` (a file's bytes, None if absent) matches the manifest."""
    if data is None:
        raise RuntimeError(f"{folder / name} is missing: restore the dataset from its official source")
    if name not in manifest:
        raise RuntimeError(f"{folder / name} is not listed in {folder / 'MANIFEST.sha256'}: "
                           "the dataset folder holds files it should not; restore the official copy")
    if hashlib.sha256(data).hexdigest() != manifest[name]:
        raise RuntimeError(f"{folder / name} is corrupt (sha256 differs from MANIFEST.sha256): "
                           "replace it with the file from the official distribution")


def read_checked(folder: Path, name: str, manifest: dict[str, str] | None) -> bytes:
    """The bytes of ``folder / name``, checked against ``manifest`` (see :func:`check_bytes`) unless it is None."""
    data = (folder / name).read_bytes()
    if manifest is not None:
        check_bytes(folder, name, data, manifest)
    return data


def parse_utkface_name(name: str) -> tuple[int, int, int] | None:
    """(age, gender, race) from ``<age>_<gender>_<race>_<date>.jpg.chip.jpg``; None if malformed."""
    if not name.endswith(".jpg.chip.jpg"):
        return None
    fields = name[: -len(".jpg.chip.jpg")].split("_")
    if len(fields) != 4 or not all(f.isdigit() for f in fields):
        return None
    age, gender, race = int(fields[0]), int(fields[1]), int(fields[2])
    if gender > 1 or race > 4:
        return None
    return age, gender, race


def utkface_table(root: str | Path | None = None) -> pd.DataFrame:
    """One row per distinct UTKFace image with its labels, duplicates resolved.

    Byte-identical copies (``duplicates.tsv``) would leak across train/test splits. A group whose
    copies agree on the labels keeps one copy; a group whose labels disagree is dropped entirely,
    because we cannot tell which label is right. Malformed file names are skipped.

    Returns:
        Columns ``file`` (relative to the utkface folder), ``age``, ``gender`` (0 male, 1 female),
        ``race`` (index into :data:`RACES`), sorted by file name.
    """
    folder = utkface_dir(root)
    rows = [(f"UTKFace/{p.name}", *labels) for p in sorted((folder / "UTKFace").iterdir())
            if (labels := parse_utkface_name(p.name)) is not None]
    table = pd.DataFrame(rows, columns=["file", "age", "gender", "race"])
    drop: set[str] = set()
    dup_path = folder / "duplicates.tsv"
    if dup_path.is_file():
        for line in dup_path.read_text().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            _, agree, *names = line.split("\t")
            names = sorted(f"UTKFace/{n}" for n in names)
            drop.update(names[1:] if agree == "1" else names)
    return table[~table.file.isin(drop)].reset_index(drop=True)


@dataclass
class FaceArrays:
    """Preloaded face images with their labels.

    Attributes:
        images: (N, S, S, 3) uint8 RGB.
        table: N rows of labels (see :func:`utkface_table`).
    """

    images: np.ndarray
    table: pd.DataFrame


def _decode(data: bytes, size: int) -> np.ndarray:
    img = Image.open(io.BytesIO(data))
    img.draft("RGB", (size, size))  # JPEG DCT scaling: decode at >= size, much faster than full size
    return np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR, reducing_gap=2.0))


def load_utkface(size: int = 64, root: str | Path | None = None, verify_files: bool = True) -> FaceArrays:
    """UTKFace resized to ``size``×``size`` as one uint8 array, cached in the artifact cache.

    Args:
        size: side length in pixels.
        root: the utkface folder (default ``<data root>/utkface``).
        verify_files: check every image against ``MANIFEST.sha256`` while building the cache.

    Returns:
        The images and their labels (deduplicated, see :func:`utkface_table`).
    """
    folder = utkface_dir(root)
    table = utkface_table(folder)
    key = {"size": size, "files": hashlib.sha256("\n".join(table.file).encode()).hexdigest(),
           "data": fingerprint(folder), "decoder": "pil-draft-bilinear"}

    def build(tmp: Path) -> None:
        manifest = read_manifest(folder) if verify_files else None
        images = np.empty((len(table), size, size, 3), np.uint8)
        for i, name in enumerate(table.file):
            images[i] = _decode(read_checked(folder, name, manifest), size)
        np.save(tmp / "images.npy", images)
        table.to_csv(tmp / "labels.csv", index=False)

    path = artifact("utkface-arrays", key, build)
    return FaceArrays(np.load(path / "images.npy", mmap_mode="r"), pd.read_csv(path / "labels.csv"))


def read_lfw_pairs(root: str | Path | None = None) -> pd.DataFrame:
    """LFW View 2 verification pairs from the official ``pairs.txt``.

    Returns:
        6,000 rows (10 folds × 600): ``fold``, ``path1``, ``path2`` (absolute image paths) and
        ``same`` (True for matched pairs).

    Raises:
        RuntimeError: if ``pairs.txt`` is malformed or names an image that is not there.
    """
    folder = lfw_dir(root)
    lines = (folder / "pairs.txt").read_text().splitlines()
    try:
        folds, per_fold = (int(x) for x in lines[0].split())
    except ValueError as err:
        raise RuntimeError(f"{folder / 'pairs.txt'}: first line must be '<folds> <pairs per fold>'") from err

    def image(name: str, number: str) -> str:
        return str(folder / "lfw-deepfunneled" / name / f"{name}_{int(number):04d}.jpg")

    rows = []
    for i, line in enumerate(lines[1:]):
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) == 3:
            rows.append((i // (2 * per_fold), image(fields[0], fields[1]), image(fields[0], fields[2]), True))
        elif len(fields) == 4:
            rows.append((i // (2 * per_fold), image(fields[0], fields[1]), image(fields[2], fields[3]), False))
        elif line.strip():
            raise RuntimeError(f"{folder / 'pairs.txt'} line {i + 2} is malformed: {line!r}")
    pairs = pd.DataFrame(rows, columns=["fold", "path1", "path2", "same"])
    if len(pairs) != folds * 2 * per_fold:
        raise RuntimeError(f"{folder / 'pairs.txt'} lists {len(pairs)} pairs, its header promises "
                           f"{folds * 2 * per_fold}: restore the official file")
    missing = [p for p in pd.unique(pairs[["path1", "path2"]].values.ravel()) if not Path(p).is_file()]
    if missing:
        raise RuntimeError(f"{len(missing)} LFW images named in pairs.txt are missing, e.g. {missing[0]}: "
                           f"place the deep-funneled images at {folder / 'lfw-deepfunneled'}")
    return pairs
