"""The shapes debiasing experiment: does fine-tuning on a synthetic set repair a colour-biased classifier?

Protocol (facts file): the paper's classifier (:mod:`qdgs.shapes.classifier`) learns shape from
1,000 rendered images in which colour predicts shape with bias ``b``; it is then fine-tuned on a
synthetic set and evaluated on a balanced test set by the mean and the worst of the four
colour × shape group accuracies.

Conditions per bias: the biased model alone; fine-tuned on the QDGS set; on random VAE samples of
the same size, labelled by the same rule; on balanced *real* renders of the same size (an upper
reference). Every run's data, initialisation and batch order are named streams of its seed
(``"shapes-debias"``), and one test set serves every run, so conditions are compared on equal terms.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from qdgs.cache import artifact, fingerprint
from qdgs.datasets import ImageFolderDataset
from qdgs.progress import progress
from qdgs.seeds import derive, seeded_init, torch_generator
from qdgs.shapes.classifier import ShapeClassifier, group_accuracies, predict, train_classifier
from qdgs.shapes.render import balanced_set, biased_set

#: The seed of the one balanced test set every run is evaluated on.
TEST_SEED = derive(0, "shapes-debias", "test")


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
    test = balanced_set(protocol.n_test, TEST_SEED, protocol.size)
    test_images = test.floats()
    n_syn = len(next(iter(synthetic.values()))[1])
    rows = []

    def row(bias: float, seed: int, condition: str, model: ShapeClassifier, n: int, t0: float) -> dict:
        return {"bias": bias, "seed": seed, "condition": condition, "n_finetune": n,
                **group_accuracies(predict(model, test_images), test.shape, test.colour),
                "seconds": time.perf_counter() - t0}

    for bias, seed in progress([(b, s) for b in biases for s in seeds], enabled=progress_bar, desc="debiasing runs"):
        real = balanced_set(n_syn, derive(seed, "shapes-debias", "balanced-real"), protocol.size)
        sets = {**synthetic, "+ balanced real": (real.floats(), real.shape)}
        biased = biased_set(protocol.n_biased, bias, derive(seed, "shapes-debias", "biased"), protocol.size)
        t0 = time.perf_counter()
        with seeded_init(seed, "shapes-debias", "init"):
            base = ShapeClassifier(protocol.size)
        train_classifier(base, biased.floats(), biased.shape, protocol.pretrain_epochs,
                         torch_generator(seed, "shapes-debias", "pretrain"), protocol.batch_size, protocol.lr)
        rows.append(row(bias, seed, "biased only", base, 0, t0))
        for name, (images, labels) in sets.items():
            t0 = time.perf_counter()
            model = train_classifier(copy.deepcopy(base), images, labels, protocol.finetune_epochs,
                                     torch_generator(seed, "shapes-debias", "finetune"), protocol.batch_size,
                                     protocol.lr)
            rows.append(row(bias, seed, name, model, len(labels), t0))
    return pd.DataFrame(rows)


def cached_debiasing(sets: Mapping[str, Path], biases: Sequence[float], seeds: Sequence[int], protocol: Protocol,
                     progress_bar: bool = True) -> pd.DataFrame:
    """:func:`run_debiasing` on written synthetic sets, through the artifact cache.

    Args:
        sets: image-folder dataset directories by condition name (see
            :func:`qdgs.shapes.synthetic.write_synthetic`). They are keyed by content
            (:func:`qdgs.cache.fingerprint`), and what is fine-tuned on is what was written.
    """
    def build(tmp: Path) -> None:
        data = {name: ImageFolderDataset(path).tensors() for name, path in sets.items()}
        synthetic = {name: (images, labels.numpy()) for name, (images, labels) in data.items()}
        run_debiasing(synthetic, biases, seeds, protocol, progress_bar).to_csv(tmp / "runs.csv", index=False)

    settings = {"sets": {name: fingerprint(path) for name, path in sets.items()}, "biases": list(biases),
                "seeds": list(seeds), "protocol": asdict(protocol)}
    # the classifier and the renders decide the runs as much as this module does
    code = ("qdgs.shapes.classifier", "qdgs.shapes.render")
    return pd.read_csv(artifact("shapes-debiasing", settings, build, code=code) / "runs.csv")


def transfer_ceiling(generator: torch.nn.Module, n: int, seeds: Sequence[int], protocol: Protocol,
                     image_size: int, sets: Mapping[str, tuple[torch.Tensor, np.ndarray]] | None = None
                     ) -> pd.DataFrame:
    """How much of what a classifier learns from the generator's drawings holds on real renders?

    Fine-tuning on a synthetic set repairs the biased classifier only as far as what it learns from
    the generator's images carries over to renders, whichever sampler chose them. Here a fresh
    classifier learns shape from ``n`` balanced renders, another from the generator's
    reconstructions of the same renders (same poses, true labels), each for the protocol's
    fine-tuning epochs, and both are tested on the experiment's test set: the second's shortfall is
    the generator's drawing style, not the sampler or its labels. Each of ``sets`` (the synthetic
    sets with their own labels) is learnt from the same way, so their rows say what each set alone
    teaches about renders.

    Args:
        generator: has ``reconstruct(images)``, as both shapes generators do.
        image_size: side of the generator's images (the renders are drawn at it).
        sets: further training sets by name: (images (N, 3, H, W) in [0, 1], labels (N,)).

    Returns:
        One row per (seed, images) with the group accuracies.
    """
    test = balanced_set(protocol.n_test, TEST_SEED, protocol.size)
    test_images = test.floats()
    device = next(generator.parameters(), torch.empty(0)).device  # a search may have moved it to its device
    rows = []
    for seed in seeds:
        renders = balanced_set(n, derive(seed, "shapes-transfer", "renders"), image_size)
        images = renders.floats()
        with torch.no_grad():
            drawn = generator.reconstruct(images.to(device)).cpu()
        sources = {"renders": (images, renders.shape), "generator reconstructions": (drawn, renders.shape),
                   **(sets or {})}
        for name, (x, labels) in sources.items():
            with seeded_init(seed, "shapes-transfer", "init"):
                model = ShapeClassifier(protocol.size)
            train_classifier(model, x, labels, protocol.finetune_epochs,
                             torch_generator(seed, "shapes-transfer", "train"), protocol.batch_size, protocol.lr)
            rows.append({"seed": seed, "learnt from": name,
                         **group_accuracies(predict(model, test_images), test.shape, test.colour)})
    return pd.DataFrame(rows)


def summarise(results: pd.DataFrame, by: Sequence[str] = ("bias", "condition")) -> pd.DataFrame:
    """Mean ± standard deviation over seeds of the mean and worst-group accuracy, per ``by`` (bias and condition)."""
    g = results.groupby(list(by), sort=False)[["mean", "worst"]]
    out = g.mean().add_suffix("_acc").join(g.std().add_suffix("_std")).join(g.size().rename("seeds"))
    return out.reset_index()
