"""The recognition chapter's experiment: pretrain on each synthetic set over seeds, verify everywhere.

One trained backbone per (set, seed) goes through :func:`qdgs.cache.artifact`, with its per-epoch
checkpoints in a persistent directory, so a rerun reuses finished models and a killed run resumes.
A model is keyed by the content of what it is trained on (the identity set's files, the starting
weights), never by their paths: the same set elsewhere reuses it, a changed set retrains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from qdgs import results
from qdgs.cache import artifact, cache_root, params_key, weights_hash
from qdgs.recognition.identities import FaceSet, identity_set_fingerprint, load_identity_set
from qdgs.recognition.distributed import broadcast_object, rank
from qdgs.recognition.iresnet import BackboneConfig, IResNet
from qdgs.recognition.train import TrainConfig, Trained, load_backbone, save_backbone, train
from qdgs.recognition.verification import PairSet, evaluate, skin_split


def resized(data: FaceSet, size: int) -> FaceSet:
    """The set at ``size`` px (antialiased), e.g. 112 px aligned faces for a 64 px CPU backbone."""
    if data.images.shape[-1] == size:
        return data
    out = torch.cat([torch.nn.functional.interpolate(data.images[i:i + 1024].float(), size=(size, size),
                                                     mode="bilinear", antialias=True, align_corners=False)
                     .round().clamp(0, 255).to(torch.uint8) for i in range(0, len(data.images), 1024)])
    return FaceSet(out, data.labels)


def trained_backbone(data_dir: str | Path, backbone_config: BackboneConfig, config: TrainConfig,
                     init: str | Path | None = None, on_epoch: Callable[[int, IResNet], dict] | None = None,
                     progress_bar: bool = True, device: str | torch.device = "cpu",
                     workers: int = 0) -> tuple[IResNet, pd.DataFrame, Path]:
    """Train (or reuse) a backbone on the identity set at ``data_dir``.

    Neither ``device`` nor ``workers`` enters the key: they change how fast the model is made, not
    what it is. Called on every rank of a ``torchrun`` job, rank 0 looks the model up and, when it
    has to be built, all ranks train it together (:func:`qdgs.recognition.train`); rank 0 stores it.

    Args:
        data_dir: an image-folder or InsightFace record identity set.
        backbone_config: the architecture.
        config: the optimisation (its seed included).
        init: a ``backbone.pt`` to start from (the real stage after pretraining).
        on_epoch: per-epoch evaluation for the training curves (see :func:`qdgs.recognition.train`).
        progress_bar: show progress.
        device: where to train, and where the returned backbone lies.
        workers: DataLoader processes preparing the batches.

    Returns:
        The backbone (eval mode, on ``device``), its per-epoch history and the artifact directory
        (``backbone.pt``, ``history.csv``).
    """
    start = load_backbone(init) if init else None
    key = {"data": identity_set_fingerprint(data_dir), "backbone": backbone_config.as_dict(),
           "train": asdict(config), "init": weights_hash(start) if start else None}
    checkpoints = cache_root() / "recognition-checkpoints" / params_key("recognition-model", key, code=(__name__,))

    def fit() -> tuple[FaceSet, Trained]:
        data = resized(load_identity_set(data_dir, backbone_config.input_size), backbone_config.input_size)
        return data, train(data, backbone_config, config, checkpoint_dir=checkpoints,
                           init=start.state_dict() if start else None, on_epoch=on_epoch,
                           progress_bar=progress_bar, device=device, workers=workers)

    built = []

    def build(tmp: Path) -> None:
        broadcast_object(True)  # the other ranks train alongside
        built.append(True)
        data, result = fit()
        save_backbone(result.backbone, tmp / "backbone.pt")
        result.history.assign(identities=data.num_classes, images=len(data.labels)).to_csv(
            tmp / "history.csv", index=False)

    if rank() == 0:
        path = artifact("recognition-model", key, build)
        if not built:
            broadcast_object(False)
    elif broadcast_object():
        fit()
    path = Path(broadcast_object(str(path) if rank() == 0 else None))
    return load_backbone(path / "backbone.pt", device), pd.read_csv(path / "history.csv"), path


def verify_all(model: Callable[[torch.Tensor], torch.Tensor], benchmarks: list[PairSet],
               skin: dict[str, np.ndarray] | None = None, center: bool = False) -> pd.DataFrame:
    """One row per benchmark (``benchmark``, ``accuracy``, ``std``), plus ``<name>/dark`` and ``<name>/light``
    rows for each benchmark with per-image skin labels in ``skin`` (see :func:`skin_split`)."""
    rows = []
    for pairs in benchmarks:
        result, _ = evaluate(model, pairs, center=center)
        rows.append({"benchmark": pairs.name, "accuracy": result.accuracy, "std": result.std,
                     "pairs": len(pairs.same)})
        if skin and pairs.name in skin:
            for _, r in skin_split(result, pairs, skin[pairs.name]).iterrows():
                rows.append({"benchmark": f"{pairs.name}/{r.group}", "accuracy": r.accuracy,
                             "std": np.nan, "pairs": r.pairs})
    return pd.DataFrame(rows)


def seed_resolution(per_seed: pd.DataFrame, value: str = "accuracy", by: tuple[str, ...] = ("model", "benchmark"),
                    z: float = 2.0) -> pd.DataFrame:
    """Smallest difference between two models' seed means that the seeds resolve, per benchmark.

    With k seeds per model and a seed-to-seed standard deviation σ (pooled over the models), the
    difference of two means has standard error σ·√(2/k); ``z`` of those (≈ 95 %) is resolved.

    Args:
        per_seed: one row per (model, seed, benchmark) with a ``value`` column.
        value: the column compared.
        by: model and benchmark columns.
        z: how many standard errors count as resolved.

    Returns:
        One row per benchmark: ``seed_std`` (pooled σ), ``seeds`` (k) and ``resolves`` (z·σ·√(2/k)).
    """
    model, bench = by
    groups = per_seed.groupby([model, bench])[value]
    stats = pd.DataFrame({"var": groups.var(ddof=1), "k": groups.size()}).reset_index()
    out = stats.groupby(bench).agg(seed_std=("var", lambda v: float(np.sqrt(v.mean()))), seeds=("k", "min"))
    out["resolves"] = z * out.seed_std * np.sqrt(2 / out.seeds)
    return out.reset_index()


def synthetic_sets(qd_dir: str = "", rand_dir: str = "") -> dict[str, Path]:
    """The QD and Rand dataset directories: as given, else from ``qdgs.results.load("faces").meta["datasets"]``."""
    given = {"QD": qd_dir, "Rand": rand_dir}
    if not all(given.values()):
        recorded = results.load("faces").meta.get("datasets", {})
        given = {k: v or recorded.get(k, "") for k, v in given.items()}
    missing = [k for k, v in given.items() if not v or not Path(v).is_dir()]
    if missing:
        raise FileNotFoundError(f"no {' or '.join(missing)} dataset directory: run notebook 02 (it records "
                                f"datasets={{'QD': path, 'Rand': path}}) or pass qd_dir / rand_dir")
    return {k: Path(v) for k, v in given.items()}


def configs(p) -> tuple[BackboneConfig, TrainConfig, TrainConfig]:
    """Backbone, pretraining and real-stage configs of a resolved parameter namespace."""
    backbone = BackboneConfig(p.depth, p.width, p.input_size, p.stem_stride)
    common = dict(head=p.head, scale=p.scale, margin=p.margin, batch_size=p.batch_size, lr=p.lr,
                  schedule=p.schedule, warmup_epochs=p.warmup_epochs, margin_warmup_epochs=p.margin_warmup_epochs,
                  augment_p=p.augment_p)
    return backbone, TrainConfig(epochs=p.epochs, **common), TrainConfig(epochs=p.real_epochs, **common)


def summary(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean ± seed std of accuracy, one row per model and one column per benchmark (as ``"0.671 ± 0.004"``)."""
    g = per_seed.groupby(["model", "benchmark"], sort=False).accuracy
    cell = (g.mean().map("{:.3f}".format) + " ± " + g.std(ddof=1).fillna(0).map("{:.3f}".format))
    return cell.unstack("benchmark")


def compare(per_seed: pd.DataFrame, a: str, b: str, benchmark: str, resolution: pd.DataFrame) -> dict:
    """Difference of seed means a − b on a benchmark, with the resolution and a verdict (True/False/None)."""
    means = per_seed[per_seed.benchmark == benchmark].groupby("model").accuracy.mean()
    diff = float(means[a] - means[b])
    res = resolution.set_index("benchmark").resolves.get(benchmark, np.nan)
    verdict = None if not np.isfinite(res) or abs(diff) <= res else diff > 0
    return {"a": a, "b": b, "benchmark": benchmark, "difference": diff, "resolves": float(res), "a_better": verdict}
