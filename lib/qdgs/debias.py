"""The shapes debiasing experiment: does fine-tuning on a synthetic set repair a colour-biased classifier?

Protocol (facts file): a small CNN (3 conv layers of 16/32/64 channels, 3 × 3, max-pool; FC 128;
sigmoid; BCE; Adam 1e-3; batch 128) learns *shape* (triangle 0, square 1) from 1,000 rendered
images in which colour predicts shape with bias ``b``; it is then fine-tuned on a synthetic set
and evaluated on a balanced test set by the mean and the worst of the four colour × shape group
accuracies. A classifier that learned colour instead of shape scores ≈ 50 % mean and ≈ 0 % worst.

Conditions per bias: the biased model alone; fine-tuned on the QDGS set; on random VAE samples of
the same size, labelled by the same rule; on balanced *real* renders of the same size (an upper
reference). The synthetic sets' group balance is audited independently of the scorer that labelled
them: colour from pixel statistics (:func:`pixel_colour`) and shape from an oracle CNN trained on
balanced renders with random recolouring (:func:`train_oracle`), so it judges outline only.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from qdgs import shapes
from qdgs.images import recolour



class ShapeClassifier(nn.Module):
    """The paper's classifier: 3 × (conv 3 × 3 → ReLU → max-pool 2) with 16/32/64 channels, FC 128, 1 logit.

    Args:
        size: input side in pixels (a multiple of 8).
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        layers, c_in = [], 3
        for c in (16, 32, 64):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c
        self.size = size
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(64 * (size // 8) ** 2, 128), nn.ReLU(),
                                 nn.Linear(128, 1))

    def fit_size(self, images: torch.Tensor) -> torch.Tensor:
        """Resize (B, 3, H, W) images to the classifier's input side (antialiased)."""
        if images.shape[-1] == self.size:
            return images
        return F.interpolate(images, size=self.size, mode="bilinear", antialias=True, align_corners=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] → (B,) logits of "square" (the sigmoid lives in the BCE loss)."""
        return self.net(self.fit_size(images)).squeeze(1)


def train_classifier(model: ShapeClassifier, images: torch.Tensor, labels: np.ndarray | torch.Tensor, epochs: int,
                     seed: int, batch_size: int = 128, lr: float = 1e-3) -> ShapeClassifier:
    """Train in place with BCE and a fresh Adam; return the model.

    Args:
        images: (N, 3, H, W) float images in [0, 1].
        labels: (N,) 0 triangle, 1 square.
    """
    gen = torch.Generator().manual_seed(seed)
    images = model.fit_size(images)  # once, not per batch
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=gen)
        for start in range(0, len(images), batch_size):
            idx = order[start:start + batch_size]
            loss = F.binary_cross_entropy_with_logits(model(images[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """(N,) predicted labels (logit > 0) of (N, 3, H, W) images."""
    model.eval()
    return np.concatenate([(model(images[i:i + batch_size]) > 0).long().numpy()
                           for i in range(0, len(images), batch_size)])


def group_accuracies(pred: np.ndarray, shape: np.ndarray, colour: np.ndarray) -> dict[str, float]:
    """Accuracy of each colour × shape group, their mean and the worst group.

    Args:
        pred: (N,) predicted shape labels.
        shape: (N,) true shape labels (0 triangle, 1 square).
        colour: (N,) colours (0 red, 1 blue).

    Returns:
        ``{"red triangle": …, "red square": …, "blue triangle": …, "blue square": …, "mean": …,
        "worst": …}``; a group absent from the data is NaN and left out of mean and worst.
    """
    pred, shape, colour = map(np.asarray, (pred, shape, colour))
    out = {}
    for c, cn in enumerate(shapes.COLOUR_NAMES):
        for s, sn in enumerate(shapes.SHAPE_NAMES):
            k = (colour == c) & (shape == s)
            out[f"{cn} {sn}"] = float(np.mean(pred[k] == s)) if k.any() else float("nan")
    groups = np.array(list(out.values()))
    out["mean"] = float(np.nanmean(groups))
    out["worst"] = float(np.nanmin(groups))
    return out


# ---------------------------------------------------------------------------------------------
# Labelling synthetic sets by the shape measure
# ---------------------------------------------------------------------------------------------

def label_by_measure(m2: np.ndarray, zero: float = 0.0, gap: float = 0.01) -> np.ndarray:
    """The paper's rule: ``m2 < zero − gap`` → triangle (0), ``m2 ≥ zero`` → square (1), else −1 (dropped)."""
    m2 = np.asarray(m2)
    return np.where(m2 < zero - gap, 0, np.where(m2 >= zero, 1, -1))


def calibrate_zero(m2: np.ndarray, shape: np.ndarray) -> float:
    """The threshold on ``m2`` that best separates known triangles from squares (held-out renders).

    The paper's zero is OpenAI CLIP's; a scorer trained here may be shifted, and then the sign of
    ``m2`` mislabels one shape. The best split point on labelled renders (midpoint between sorted
    neighbours) restores the rule's meaning.
    """
    m2, shape = np.asarray(m2, dtype=float), np.asarray(shape)
    order = np.argsort(m2)
    sorted_m, sorted_s = m2[order], shape[order]
    # accuracy when everything up to position i is called a triangle
    correct = np.cumsum(sorted_s == 0) + (sorted_s == 1).sum() - np.cumsum(sorted_s == 1)
    i = int(np.argmax(correct))
    return float((sorted_m[i] + sorted_m[min(i + 1, len(m2) - 1)]) / 2)


# ---------------------------------------------------------------------------------------------
# Independent audit of a synthetic set's colour × shape balance
# ---------------------------------------------------------------------------------------------

def pixel_colour(images: torch.Tensor, margin: float = 0.25) -> np.ndarray:
    """(N,) colour by pixel statistics: 0 red, 1 blue, −1 neither (e.g. purple) or no shape.

    The mean colour of the pixels that are not near-white is named by :func:`qdgs.shapes.nearest_colour`.
    """
    x = images.float().permute(0, 2, 3, 1).reshape(len(images), -1, 3).numpy()
    if images.dtype == torch.uint8:
        x = x / 255
    ink = (1 - x).sum(axis=2) > 0.3
    means = np.full((len(images), 3), np.nan)
    for i in range(len(images)):
        if ink[i].sum() >= 4:
            means[i] = x[i][ink[i]].mean(axis=0)
    named = shapes.nearest_colour(np.nan_to_num(means, nan=1.0), margin)
    return np.where(np.isnan(means[:, 0]), -1, named)


def train_oracle(n: int, size: int, epochs: int, seed: int) -> ShapeClassifier:
    """A shape classifier that ignores colour: balanced renders, every one randomly recoloured."""
    data = shapes.balanced_set(n, seed, size)
    torch.manual_seed(seed)  # the initialisation: same seed, same oracle, same audit table
    return train_classifier(ShapeClassifier(size), recolour(data.masks, torch.Generator().manual_seed(seed)), data.shape, epochs, seed)


def audit(images: torch.Tensor, oracle: ShapeClassifier) -> pd.DataFrame:
    """Colour × shape counts of a set, by pixel colour and the oracle's shape (not the scorer's)."""
    colour = pixel_colour(images)
    shape = predict(oracle, images.float() / 255 if images.dtype == torch.uint8 else images)
    names = {0: "red", 1: "blue", -1: "neither"}
    table = pd.crosstab(pd.Series([names[c] for c in colour], name="colour (pixels)"),
                        pd.Series([shapes.SHAPE_NAMES[s] for s in shape], name="shape (oracle)"))
    return table.reindex(index=["red", "blue", "neither"], columns=list(shapes.SHAPE_NAMES), fill_value=0)


# ---------------------------------------------------------------------------------------------
# The experiment
# ---------------------------------------------------------------------------------------------

@dataclass
class Protocol:
    """Sizes of one debiasing run (the paper's: 1,000 biased images, 20 + 30 epochs, 5,000 test images)."""

    size: int = 32
    n_biased: int = 1000
    pretrain_epochs: int = 20
    finetune_epochs: int = 30
    n_test: int = 5000
    batch_size: int = 128
    lr: float = 1e-3


def run_debiasing(synthetic: Mapping[str, tuple[torch.Tensor, np.ndarray]], biases: Sequence[float],
                  seeds: Sequence[int], protocol: Protocol, progress_bar: bool = True) -> pd.DataFrame:
    """Every (bias, seed, condition) of the experiment; one row each with group accuracies and seconds.

    Args:
        synthetic: fine-tuning sets by condition name: (images (N, 3, H, W) in [0, 1], labels (N,)).
            "+ balanced real" is added here with the size of the first set.
        biases: colour biases of the pretraining sets.
        seeds: one run per seed (pretraining set, initialisation, batches).
        protocol: sizes and optimiser settings.
    """
    from qdgs.progress import progress

    test = shapes.balanced_set(protocol.n_test, 10_000, protocol.size)
    test_images = test.floats()
    n_syn = len(next(iter(synthetic.values()))[1])
    rows = []
    runs = [(b, s) for b in biases for s in seeds]
    for bias, seed in progress(runs, enabled=progress_bar, desc="debiasing runs"):
        real = shapes.balanced_set(n_syn, 20_000 + seed, protocol.size)
        sets = {**synthetic, "+ balanced real": (real.floats(), real.shape)}
        biased = shapes.biased_set(protocol.n_biased, bias, seed, protocol.size)
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        base = train_classifier(ShapeClassifier(protocol.size), biased.floats(), biased.shape,
                                protocol.pretrain_epochs, seed, protocol.batch_size, protocol.lr)
        rows.append({"bias": bias, "seed": seed, "condition": "biased only", "n_finetune": 0,
                     **group_accuracies(predict(base, test_images), test.shape, test.colour),
                     "seconds": time.perf_counter() - t0})
        for name, (images, labels) in sets.items():
            t0 = time.perf_counter()
            model = train_classifier(copy.deepcopy(base), images, labels, protocol.finetune_epochs, seed,
                                     protocol.batch_size, protocol.lr)
            rows.append({"bias": bias, "seed": seed, "condition": name, "n_finetune": len(labels),
                         **group_accuracies(predict(model, test_images), test.shape, test.colour),
                         "seconds": time.perf_counter() - t0})
    return pd.DataFrame(rows)


def cached_debiasing(synthetic: Mapping[str, tuple[torch.Tensor, np.ndarray]], biases: Sequence[float],
                     seeds: Sequence[int], protocol: Protocol, key: Mapping, progress_bar: bool = True) -> pd.DataFrame:
    """:func:`run_debiasing` through the artifact cache, so a rebuild with unchanged inputs reuses its rows.

    Args:
        key: what determines the synthetic sets (e.g. their dataset directories, which are
            themselves keyed by every parameter and model that made them).
    """
    from dataclasses import asdict

    from qdgs.cache import artifact

    def build(tmp) -> None:
        run_debiasing(synthetic, biases, seeds, protocol, progress_bar).to_csv(tmp / "runs.csv", index=False)

    settings = {**key, "biases": list(biases), "seeds": list(seeds), "protocol": asdict(protocol),
                "sets": {name: len(labels) for name, (_, labels) in synthetic.items()}}
    return pd.read_csv(artifact("shapes-debiasing", settings, build) / "runs.csv")


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean ± standard deviation over seeds of the mean and worst-group accuracy, per bias and condition."""
    g = results.groupby(["bias", "condition"], sort=False)[["mean", "worst"]]
    out = g.mean().add_suffix("_acc").join(g.std().add_suffix("_std")).join(g.size().rename("seeds"))
    return out.reset_index()


@torch.no_grad()
def synthetic_set(generator: nn.Module, latents: np.ndarray, m2: np.ndarray, zero: float, gap: float,
                  batch_size: int = 256) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Decode latents and label them by the shape measure (the paper's rule, gap dropped).

    Args:
        generator: the shapes VAE.
        latents: (N, D) latents (archive elites or random samples).
        m2: (N,) their shape measure.
        zero: the rule's zero point (0 in the paper; calibrated for an in-repo scorer).
        gap: width of the dropped band below ``zero``.

    Returns:
        images (n, 3, H, W) in [0, 1], labels (n,) and the (N,) bool mask of the kept latents.
    """
    labels = label_by_measure(m2, zero, gap)
    keep = labels >= 0
    z = torch.as_tensor(np.asarray(latents)[keep], dtype=torch.float32)
    images = torch.cat([generator(z[i:i + batch_size]) for i in range(0, len(z), batch_size)]) if len(z) \
        else torch.zeros(0, 3, generator.output_size, generator.output_size)
    return images, labels[keep], keep


def write_synthetic(name: str, images: torch.Tensor, labels: np.ndarray, latents: np.ndarray, objective: np.ndarray,
                    measures: np.ndarray, key: Mapping, note: str = ""):
    """Write a labelled synthetic shapes set in the image-folder layout, through the artifact cache.

    Args:
        name: the set's name ("qdgs", "random").
        images: (n, 3, H, W) images in [0, 1].
        labels: (n,) shape labels.
        latents: (n, D) their latents; objective (n,) and measures (n, M) their scores.
        key: everything that determines the set (profile parameters, model hashes).
        note: how the set was made, for the datasheet.

    Returns:
        The dataset directory (read it with :class:`qdgs.datasets.ImageFolderDataset`).
    """
    from qdgs.cache import artifact
    from qdgs.datasets import write_image_folder

    def build(tmp) -> None:
        columns = {"latent": list(latents), "objective": objective,
                   **{f"m{k}": measures[:, k] for k in range(measures.shape[1])}}
        counts = np.bincount(labels, minlength=2)
        sheet = (f"# Synthetic shapes: {name}\n\n{len(labels)} images ({counts[0]} labelled triangle, "
                 f"{counts[1]} square) decoded by the shapes VAE. {note}\n\nColumns: latent (JSON), objective, "
                 "m0 (colour measure, negative = red), m1 (shape measure, negative = triangle).\n")
        write_image_folder(tmp, images, labels, class_names=shapes.SHAPE_NAMES, columns=columns, datasheet=sheet)

    return artifact(f"shapes-synthetic-{name}", {**key, "n": len(labels)}, build)
