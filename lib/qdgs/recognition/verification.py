"""Face verification benchmarks: LFW's 10-fold protocol and the InsightFace ``.bin`` sets.

A benchmark is a list of image pairs, each "same person" or not, split into 10 folds. For each
fold, the cosine-similarity threshold that maximises accuracy on the other nine folds is applied
to the held-out fold; the result is the mean ± std of the ten fold accuracies (Huang et al., 2007).
Embeddings are the sum of the embeddings of a face and its mirror image (flip averaging).

LFW is read from the official deep-funneled layout and ``pairs.txt`` (``qdgs.data.read_lfw_pairs``);
AgeDB-30, CFP-FP, CPLFW and CALFW are read from the InsightFace packaging (a pickle of
``(bins, issame_list)``, JPEG bytes of 112 × 112 aligned faces, consecutive pairs, 10 equal
consecutive folds) when present under ``<data root>/verification/<name>.bin``.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from qdgs import safe_pickle
from qdgs.faces.ita import ita, skin_tone
from qdgs.cache import artifact, data_root, fingerprint
from qdgs.data import lfw_dir, read_checked, read_lfw_pairs, read_manifest
from qdgs.recognition.identities import decode

#: The InsightFace-packaged benchmarks read when present, beside LFW.
BIN_BENCHMARKS = ("agedb_30", "cfp_fp", "cplfw", "calfw")
#: The only globals an InsightFace ``.bin`` needs: bytes and NumPy arrays and scalars.
_BIN_GLOBALS = safe_pickle.NUMPY_ARRAYS | {("builtins", "bytes")}

#: Side of the central crop of a 250 px deep-funneled LFW image that frames the face like a
#: 112 × 112 ArcFace-template aligned training face (eyebrows to chin, some margin). Unaligned
#: DCGAN faces fill their frame more tightly: a network trained on those scored 1.2 points higher
#: with a 110 px crop (0.710 vs 0.698 in our CPU runs); pass the crop that matches the training set.
LFW_CROP = 130


@dataclass
class PairSet:
    """A verification benchmark.

    Args:
        name: e.g. ``"lfw"``.
        images: (N, 3, S, S) uint8 faces, each stored once.
        first: (P,) index into ``images`` of each pair's first face.
        second: (P,) index of each pair's second face.
        same: (P,) bool, True for a matched pair.
        fold: (P,) fold of each pair (0..9).
    """

    name: str
    images: torch.Tensor
    first: np.ndarray
    second: np.ndarray
    same: np.ndarray
    fold: np.ndarray


@dataclass
class Verification:
    """Result of the 10-fold protocol: ``accuracy`` ± ``std`` over ``fold_accuracy`` (10,)."""

    accuracy: float
    std: float
    fold_accuracy: np.ndarray
    thresholds: np.ndarray
    correct: np.ndarray  # (P,) bool: each pair judged right with its fold's threshold


def load_lfw(size: int = 112, crop: int = LFW_CROP, root: str | Path | None = None) -> PairSet:
    """LFW View 2 as a :class:`PairSet`: a central ``crop`` px square of each 250 px image, resized.

    Args:
        size: side of the returned faces.
        crop: side of the central square cut from each 250 px deep-funneled image.
        root: the LFW folder (default ``<data root>/lfw``).

    The decoded images are cached, keyed by size, crop and the content of the LFW folder (its
    ``MANIFEST.sha256`` when it has one, see :func:`qdgs.cache.fingerprint`) and of ``pairs.txt``:
    a copy elsewhere reuses the cache, a changed file rebuilds it. With a manifest, every image is
    checked against it while the cache is built, so the manifest speaks for what was decoded.
    """
    folder = lfw_dir(root)
    pairs = read_lfw_pairs(folder)
    paths = sorted(set(pairs.path1) | set(pairs.path2))

    def build(tmp: Path) -> None:
        manifest = read_manifest(folder) if (folder / "MANIFEST.sha256").is_file() else None
        faces = [decode(read_checked(folder, Path(p).relative_to(folder).as_posix(), manifest), size, crop)
                 for p in paths]
        np.save(tmp / "images.npy", np.stack(faces))

    key = {"size": size, "crop": crop, "lfw": fingerprint(folder), "pairs": fingerprint(folder / "pairs.txt")}
    images = np.load(artifact("lfw-pairs", key, build) / "images.npy")
    index = {p: i for i, p in enumerate(paths)}
    return PairSet("lfw", torch.from_numpy(images), pairs.path1.map(index).to_numpy(),
                   pairs.path2.map(index).to_numpy(), pairs.same.to_numpy(bool), pairs.fold.to_numpy())


def load_bin(path: str | Path, size: int = 112, folds: int = 10) -> PairSet:
    """An InsightFace verification ``.bin`` (pickle of ``(bins, issame_list)``) as a :class:`PairSet`."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            bins, issame = safe_pickle.load(f, _BIN_GLOBALS, what=f"{path}", encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise RuntimeError(f"{path} is not an InsightFace verification .bin (pickle of (bins, issame_list)): "
                           f"{err}; download it again from the InsightFace dataset zoo") from err
    same = np.asarray(issame, bool)
    if len(bins) != 2 * len(same) or len(same) % folds:
        raise RuntimeError(f"{path}: {len(bins)} images for {len(same)} pairs; expected two images per pair "
                           f"and a multiple of {folds} pairs")
    images = torch.from_numpy(np.stack([decode(bytes(b), size) for b in bins]))
    p = len(same)
    return PairSet(path.stem, images, np.arange(0, 2 * p, 2), np.arange(1, 2 * p, 2), same,
                   np.repeat(np.arange(folds), p // folds))


def available_benchmarks(size: int = 112, root: str | Path | None = None, lfw_crop: int = LFW_CROP) -> list[PairSet]:
    """LFW (required) plus each of :data:`BIN_BENCHMARKS` found under ``<data root>/verification``.

    Warns, naming the expected files, when some are absent: an average over fewer benchmarks than
    the paper's five must not pass for the paper's.
    """
    root = Path(root) if root else data_root()
    sets = [load_lfw(size, lfw_crop, root / "lfw")]
    missing = [name for name in BIN_BENCHMARKS if not (root / "verification" / f"{name}.bin").is_file()]
    if missing:
        warnings.warn(f"verification benchmarks {', '.join(missing)} not found: evaluating without them; place "
                      f"the InsightFace packs as {root / 'verification'}/<name>.bin to include them", stacklevel=2)
    sets += [load_bin(root / "verification" / f"{name}.bin", size) for name in BIN_BENCHMARKS if name not in missing]
    return sets


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold on (P,) ``scores`` that classifies (P,) ``same`` most accurately (score > t ⇒ same).

    Every distinct midpoint between sorted scores is tried (exact, unlike a fixed grid).
    """
    order = np.argsort(scores)
    s, y = scores[order], same[order].astype(int)
    # predicting "same" for everything above position i: correct = negatives up to i + positives after
    correct = np.concatenate([[0], np.cumsum(1 - y)]) + np.concatenate([np.cumsum(y[::-1])[::-1], [0]])
    valid = np.concatenate([[True], s[1:] > s[:-1], [True]])  # cut only between distinct scores
    i = int(np.argmax(np.where(valid, correct, -1)))
    if i == 0:
        return float(s[0] - 1)
    if i == len(s):
        return float(s[-1] + 1)
    return float((s[i - 1] + s[i]) / 2)


def ten_fold(scores: np.ndarray, same: np.ndarray, fold: np.ndarray) -> Verification:
    """The standard protocol on (P,) pair ``scores``: threshold from nine folds, accuracy on the tenth."""
    folds = np.unique(fold)
    accs, thresholds = [], []
    correct = np.zeros(len(scores), bool)
    for k in folds:
        test = fold == k
        t = best_threshold(scores[~test], same[~test])
        correct[test] = (scores[test] > t) == same[test]
        accs.append(correct[test].mean())
        thresholds.append(t)
    accs = np.array(accs)
    return Verification(float(accs.mean()), float(accs.std()), accs, np.array(thresholds), correct)


@torch.no_grad()
def embed(model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, size: int | None = None,
          batch_size: int = 256, flip: bool = True) -> torch.Tensor:
    """Flip-averaged embeddings (N, D) of (N, 3, S, S) uint8 (or [0, 1] float) faces, on the CPU.

    The faces are embedded on the device that holds the model's parameters (the CPU for a model
    without any): move the model to embed on a GPU.

    Args:
        model: maps (B, 3, size, size) images in [0, 1] to (B, D); put in eval mode here if a Module.
        images: the faces.
        size: resize to this side first (default: as they are).
        batch_size: faces per forward pass.
        flip: add the embedding of the mirrored face.
    """
    device = torch.device("cpu")
    if isinstance(model, torch.nn.Module):
        model.eval()
        device = next(model.parameters(), torch.empty(0)).device
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device, non_blocking=True)
        x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
        if size and x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        e = model(x)
        if flip:
            e = e + model(x.flip(-1))
        out.append(e.cpu())
    return torch.cat(out)


def pair_scores(embeddings: torch.Tensor, pairs: PairSet, center: bool = False) -> np.ndarray:
    """(P,) cosine similarity of each pair's embeddings.

    Args:
        embeddings: (N, D) embeddings of ``pairs.images``.
        pairs: the benchmark.
        center: subtract, for each fold, the mean embedding of the images of the other nine folds
            (unsupervised and fold-respecting): removes a common offset that synthetic-only
            training leaves in every embedding, which otherwise compresses all cosines.
    """
    e = embeddings.double()
    scores = np.empty(len(pairs.same))
    for k in np.unique(pairs.fold):
        test = pairs.fold == k
        x = e
        if center:
            train_images = np.unique(np.concatenate([pairs.first[~test], pairs.second[~test]]))
            x = e - e[train_images].mean(0)
        x = F.normalize(x, dim=1)
        scores[test] = (x[pairs.first[test]] * x[pairs.second[test]]).sum(1).numpy()
    return scores


def evaluate(model: Callable[[torch.Tensor], torch.Tensor], pairs: PairSet, size: int | None = None,
             center: bool = False, flip: bool = True) -> tuple[Verification, np.ndarray]:
    """Embed a benchmark and run the 10-fold protocol; returns the result and the (P,) pair scores."""
    scores = pair_scores(embed(model, pairs.images, size, flip=flip), pairs, center)
    return ten_fold(scores, pairs.same, pairs.fold), scores


def skin_split(result: Verification, pairs: PairSet, skin: np.ndarray) -> pd.DataFrame:
    """Accuracy on pairs whose two faces are both dark-skinned, and both light-skinned.

    Thresholds are the protocol's (chosen on all pairs of the other folds); only the scoring is
    restricted, so the numbers are comparable to the overall accuracy.

    Args:
        result: :func:`ten_fold` on all pairs.
        pairs: the benchmark.
        skin: (N,) per-image label for ``pairs.images``: 0 dark, 1 light, −1 unknown.

    Returns:
        One row per group (``dark``, ``light``): ``accuracy``, ``pairs``, ``matched`` (count).
    """
    rows = []
    for label, group in ((0, "dark"), (1, "light")):
        both = (skin[pairs.first] == label) & (skin[pairs.second] == label)
        rows.append({"group": group, "accuracy": float(result.correct[both].mean()) if both.any() else np.nan,
                     "pairs": int(both.sum()), "matched": int(pairs.same[both].sum())})
    return pd.DataFrame(rows)


def ita_skin_labels(images: torch.Tensor) -> np.ndarray:
    """Per-image skin labels by the book's one definition (:func:`qdgs.faces.ita.skin_tone`, normalised ITA).

    Args:
        images: (N, 3, S, S) uint8 faces.

    Returns:
        (N,) 0 dark, 1 light, −1 in between or unmeasurable, so that lighting noise near the
        boundary does not decide a label.
    """
    values = np.concatenate([ita(images[i:i + 512].float() / 255) for i in range(0, len(images), 512)])
    return skin_tone(values)


class PixelEmbedder(torch.nn.Module):
    """The raw-pixel baseline: a face's grayscale pixels at ``size`` px as its embedding."""

    def __init__(self, size: int = 32) -> None:
        super().__init__()
        self.size = size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        gray = images.mean(1, keepdim=True)
        x = F.interpolate(gray, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        x = x.flatten(1)
        return x - x.mean(1, keepdim=True)
