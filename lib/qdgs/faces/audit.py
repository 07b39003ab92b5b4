"""Independent attribute evaluation of face images: skin tone by ITA and a UTKFace attribute classifier.

The paper reports that QDGS raises the share of generated faces recognised as dark-skinned from
9.4 % to 25.2 %. Judging that with the very scorer that guided the search would be circular, so
the audit uses two evaluators that never saw the prompts:

* **ITA** on skin pixels, raw and white-patch normalised (:mod:`qdgs.faces.ita`); a face with too
  few skin pixels has no ITA and is counted as such.
* **An attribute classifier** (skin / gender / age) trained on UTKFace with strong lighting
  augmentation (exposure, gamma, white balance), so that brightness alone cannot predict its skin
  output. Its skin labels are "dark" (UTKFace race Black and normalised ITA < 25) or "light"
  (White or Asian and normalised ITA > 30); other faces give no skin label.

Both say "dark" by one definition each, the same in every chapter (:data:`qdgs.faces.ita.DARK_ITA`
for ITA). Neither is taken on trust: :func:`race_accuracy` measures each on held-out UTKFace race
labels, :func:`cohen_kappa` says how often they agree on generated faces beyond chance, and
:func:`validated` names the evaluators a claim may use.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from qdgs import data
from qdgs.cache import artifact
from qdgs.faces.ita import DARK_ITA, ita
from qdgs.faces.prompts import PAPER_DARK_SHARE
from qdgs.faces.utkface import (
    LABEL_KEY,
    to_tensor,
    utkface_fingerprint,
    utkface_skin,
    utkface_split,
)
from qdgs.images import reframe, relight
from qdgs.progress import progress
from qdgs.seeds import numpy_rng, seeded_init, torch_generator

__all__ = ["AGE_GROUPS", "PAPER_DARK_SHARE", "EVALUATORS", "ITA_DARK_ROW", "MIN_BALANCED_ACCURACY", "age_group",
           "AttributeNet", "train_attribute_net", "predict", "classify", "proportions", "intersectional_counts",
           "compare", "race_accuracy", "cohen_kappa", "validated", "skew_ratios"]

#: Age groups of the audit (years: [low, high)).
AGE_GROUPS = (("under 40", 0, 40), ("40 and over", 40, 200))
#: The audit classifier's training recipe (AdamW, one-cycle schedule) and width: part of its cache key.
#: The two evaluators of dark skin: name → column of :func:`classify`.
EVALUATORS = {"audit classifier": "dark_clf", "ITA": "dark_ita"}
#: The :func:`proportions` row of the ITA evaluator's dark-skinned share.
ITA_DARK_ROW = f"dark skin (ITA < {DARK_ITA:g}°)"
#: Balanced accuracy on held-out race labels an evaluator needs for a claim to rest on it: halfway
#: from chance (0.5) to perfect, a bar a skin-tone evaluator of photographs should clear.
MIN_BALANCED_ACCURACY = 0.75
AUDIT_RECIPE = {"lr": 2e-3, "weight_decay": 1e-4, "width": 16,
                "geometry": {"max_angle": 20.0, "scale": (0.8, 1.15), "shift": 0.08}}


def age_group(age: np.ndarray) -> np.ndarray:
    """Index into :data:`AGE_GROUPS` for ages in years."""
    age = np.asarray(age)
    return sum((age >= low).astype(int) for _, low, _ in AGE_GROUPS[1:])


class AttributeNet(nn.Module):
    """A small CNN with three logits heads: skin (dark/light), gender (male/female), age group.

    Args:
        width: channels of the first conv block (doubles per block).
    """

    def __init__(self, width: int = AUDIT_RECIPE["width"]) -> None:
        super().__init__()
        layers, c = [], 3
        for k in range(4):
            layers += [nn.Conv2d(c, width * 2**k, 3, padding=1), nn.BatchNorm2d(width * 2**k), nn.ReLU(),
                       nn.MaxPool2d(2)]
            c = width * 2**k
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.heads = nn.Linear(c, 2 + 2 + len(AGE_GROUPS))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] → (B, 4 + age groups) logits (resized to 64 px)."""
        images = F.interpolate(images, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
        return self.heads(self.features((images - 0.5) / 0.25))


def train_attribute_net(steps: int, seed: int = 0, batch_size: int = 128, size: int = 64,
                        progress_bar: bool = True, device: str | torch.device = "cpu") -> tuple[AttributeNet, pd.DataFrame]:
    """Train the audit classifier on UTKFace's training split (cached in the artifact cache).

    The held-out split is the offline scorer's (:func:`qdgs.faces.utkface.utkface_split`); the
    returned table holds the held-out accuracy of each head, so the book can say how far to trust
    the audit. Every random draw comes from the seed's own named streams: the global RNG is
    neither read nor changed.

    Args:
        steps: optimiser steps (each ``batch_size`` images, lighting + geometry augmented).
        seed: seeds the split, the initialisation and the augmentation.
        batch_size: images per step.
        size: the UTKFace preload size.
        progress_bar: show progress.
        device: where it trains and runs; batches are drawn and augmented on the CPU (the same
            draws whatever the device), the weights are stored on the CPU, and the device is not
            part of the cache key.

    Returns:
        The trained network (eval mode, on ``device``) and a held-out accuracy table (head, accuracy, n).
    """
    def build(tmp) -> None:
        faces = data.load_utkface(size)
        labels = _utk_labels(faces)
        train_idx, held_idx = utkface_split(len(labels), seed)
        gen = torch_generator(seed, "audit-net", "augmentation")
        rng = numpy_rng(seed, "audit-net", "batches")
        with seeded_init(seed, "audit-net", "init"):
            net = AttributeNet().to(device)
        opt = torch.optim.AdamW(net.parameters(), lr=AUDIT_RECIPE["lr"], weight_decay=AUDIT_RECIPE["weight_decay"])
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=AUDIT_RECIPE["lr"], total_steps=steps)
        net.train()
        for _ in progress(range(steps), enabled=progress_bar, desc="audit classifier"):
            idx = np.sort(rng.choice(train_idx, batch_size, replace=False))
            x = relight(reframe(to_tensor(faces.images[idx]), gen, **AUDIT_RECIPE["geometry"]), gen)
            loss = _attribute_loss(net(x.to(device)), labels.iloc[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        torch.save({k: v.cpu() for k, v in net.state_dict().items()}, tmp / "attribute_net.pt")
        relit = torch_generator(seed, "audit-net", "held-out relighting")
        _held_out_accuracy(net, faces, labels, held_idx, relit).to_csv(tmp / "held_out.csv", index=False)

    key = {"steps": steps, "seed": seed, "batch_size": batch_size, "size": size, "recipe": AUDIT_RECIPE,
           "age_groups": AGE_GROUPS, "labels": LABEL_KEY, "data": utkface_fingerprint()}
    path = artifact("audit-attribute-net", key, build)
    with seeded_init(seed, "audit-net", "init"):  # overwritten by the weights; keeps the global RNG untouched
        net = AttributeNet()
    net.load_state_dict(torch.load(path / "attribute_net.pt", map_location="cpu", weights_only=True))
    return net.eval().to(device), pd.read_csv(path / "held_out.csv")


def _utk_labels(faces: data.FaceArrays) -> pd.DataFrame:
    """Per-image targets: skin (-1 none), gender, age group."""
    table = faces.table
    return pd.DataFrame({"skin": utkface_skin(faces), "gender": table.gender.values, "age": age_group(table.age.values)})


def _attribute_loss(logits: torch.Tensor, labels: pd.DataFrame) -> torch.Tensor:
    """Cross-entropy of the gender and age heads, plus the skin head where a skin label exists."""
    skin = torch.tensor(labels.skin.values, device=logits.device)
    loss = F.cross_entropy(logits[:, 2:4], torch.tensor(labels.gender.values, device=logits.device))
    loss = loss + F.cross_entropy(logits[:, 4:], torch.tensor(labels.age.values, device=logits.device))
    if (skin >= 0).any():
        loss = loss + F.cross_entropy(logits[skin >= 0, :2], skin[skin >= 0])
    return loss


@torch.no_grad()
def predict(net: AttributeNet, images: torch.Tensor | np.ndarray, batch_size: int = 256) -> pd.DataFrame:
    """Attribute probabilities and both ITAs of each image.

    Args:
        net: a trained :class:`AttributeNet` (runs on its own device).
        images: (N, 3, H, W) tensor in [0, 1] or (N, H, W, 3) uint8 array (the ITAs are computed on the CPU).
        batch_size: images per forward.

    Returns:
        N rows: ``p_dark``, ``p_female``, ``p_<age group>``, ``ita_raw``, ``ita_norm`` (NaN where
        a face has too few skin pixels).
    """
    if not isinstance(images, torch.Tensor):
        images = to_tensor(images)
    probs = []
    for i in range(0, len(images), batch_size):
        logits = net(images[i:i + batch_size].float().to(next(net.parameters()).device))
        probs.append(torch.cat([logits[:, :2].softmax(1)[:, :1], logits[:, 2:4].softmax(1)[:, 1:],
                                logits[:, 4:].softmax(1)], 1))
    p = torch.cat(probs).cpu().numpy()
    out = pd.DataFrame(p, columns=["p_dark", "p_female"] + [f"p_{name}" for name, _, _ in AGE_GROUPS])
    out["ita_raw"] = ita(images, normalise=False)
    out["ita_norm"] = ita(images, normalise=True)
    return out


def _held_out_accuracy(net: AttributeNet, faces: data.FaceArrays, labels: pd.DataFrame, idx: np.ndarray,
                       gen: torch.Generator) -> pd.DataFrame:
    """Accuracy of each head on held-out rows ``idx``, and of the skin head on the same faces relit."""
    images = to_tensor(faces.images[idx])
    pred = predict(net, images)
    relit = predict(net, relight(images, gen))
    lab = labels.iloc[idx]
    skin = lab.skin.values >= 0
    age_pred = pred[[f"p_{n}" for n, _, _ in AGE_GROUPS]].values.argmax(1)
    rows = [("skin (dark vs light)", ((pred.p_dark.values < 0.5).astype(int) == lab.skin.values)[skin].mean(),
             int(skin.sum())),
            ("skin, randomly relit", ((relit.p_dark.values < 0.5).astype(int) == lab.skin.values)[skin].mean(),
             int(skin.sum())),
            ("gender", ((pred.p_female.values > 0.5).astype(int) == lab.gender.values).mean(), len(idx)),
            ("age group", (age_pred == lab.age.values).mean(), len(idx))]
    return pd.DataFrame(rows, columns=["head", "accuracy", "n"])


def classify(pred: pd.DataFrame) -> pd.DataFrame:
    """Hard attributes from :func:`predict`: ``dark_clf``, ``dark_ita`` (NA without an ITA), ``gender``, ``age``."""
    ages = [name for name, _, _ in AGE_GROUPS]
    ita_norm = pred.ita_norm.values.astype(float)
    return pd.DataFrame({
        "dark_clf": pred.p_dark.values > 0.5,
        "dark_ita": pd.array(np.where(np.isnan(ita_norm), None, ita_norm < DARK_ITA), dtype="boolean"),
        "gender": np.where(pred.p_female.values > 0.5, "female", "male"),
        "age": np.array(ages)[pred[[f"p_{a}" for a in ages]].values.argmax(1)],
    })


def proportions(attrs: pd.DataFrame) -> pd.Series:
    """Share of images per attribute: dark (classifier), dark (ITA, of the faces that have one), no ITA, female, ages."""
    out = {"dark skin (classifier)": attrs.dark_clf.mean(), ITA_DARK_ROW: attrs.dark_ita.mean(),
           "no ITA (too few skin pixels)": attrs.dark_ita.isna().mean(), "female": (attrs.gender == "female").mean()}
    out.update({f"age {a}": (attrs.age == a).mean() for a, _, _ in AGE_GROUPS})
    return pd.Series(out, dtype=float)


def skew_ratios(attrs: pd.DataFrame) -> pd.Series:
    """How skewed a set is: light : dark by each evaluator (:data:`EVALUATORS`) and under 40 : 40 and over.

    The ratios are of :func:`classify` attributes; ITA's is of the faces that have an ITA. An
    evaluator that calls no face dark gives an infinite ratio.
    """
    out = {}
    for name, column in EVALUATORS.items():
        dark = attrs[column].mean()
        out[f"light : dark ({name})"] = (1 - dark) / dark if dark > 0 else np.inf
    young = (attrs.age == AGE_GROUPS[0][0]).mean()
    out["under 40 : 40 and over (audit classifier)"] = young / (1 - young) if young < 1 else np.inf
    return pd.Series(out, dtype=float)


def intersectional_counts(attrs: pd.DataFrame) -> pd.DataFrame:
    """Counts of images per skin (classifier) × gender × age group, zero-filled."""
    skin = np.where(attrs.dark_clf, "dark", "light")
    counts = pd.crosstab([skin, attrs.gender.values], attrs.age.values, rownames=["skin", "gender"],
                         colnames=["age"])
    full = pd.MultiIndex.from_product([["dark", "light"], ["male", "female"]], names=["skin", "gender"])
    return counts.reindex(index=full, columns=[a for a, _, _ in AGE_GROUPS], fill_value=0)


def compare(net: AttributeNet, sets: dict[str, torch.Tensor | np.ndarray]) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Audit several image sets side by side.

    Args:
        net: the trained audit classifier.
        sets: name → (N, 3, H, W) images in [0, 1] (or uint8 HWC arrays).

    Returns:
        A table of :func:`proportions` (rows) per set (columns), with the paper's dark-skin
        shares in a ``paper (Rand → QD)`` column, and each set's per-image hard attributes.
    """
    attrs = {name: classify(predict(net, images)) for name, images in sets.items()}
    table = pd.DataFrame({name: proportions(a) for name, a in attrs.items()})
    table["paper (Rand → QD)"] = ""
    table.loc["dark skin (classifier)", "paper (Rand → QD)"] = (
        f"{PAPER_DARK_SHARE['Rand']:.1%} → {PAPER_DARK_SHARE['QD']:.1%}")
    return table, attrs


def race_accuracy(net: AttributeNet, seed: int = 0, size: int = 64) -> pd.DataFrame:
    """Each evaluator's accuracy on held-out UTKFace race labels: Black as dark, White and Asian as light.

    The held-out split is the one no model here trained on (:func:`qdgs.faces.utkface.utkface_split`);
    Indian and Others faces have no agreed tone and are left out. Race is a category, not a skin
    tone, so this measures agreement with a coarse label, which is what the claim needs: that an
    evaluator's "dark" means what a reader would call dark.

    Returns:
        One row per evaluator (:data:`EVALUATORS`): ``accuracy``, ``balanced accuracy`` (the mean
        of the two recalls: the held-out set is mostly light), ``dark recall``, ``light recall``,
        ``measured`` (share of faces it gave an answer for; ITA needs skin pixels) and ``n``.
    """
    faces = data.load_utkface(size)
    _, held = utkface_split(len(faces.table), seed)
    race = faces.table.race.values[held]
    keep = np.isin(race, (0, 1, 2))
    attrs = classify(predict(net, to_tensor(faces.images[held[keep]])))
    truth = race[keep] == 1
    rows = []
    for name, column in EVALUATORS.items():
        said = attrs[column]
        measured = ~said.isna().to_numpy()
        pred, true = said.to_numpy(dtype=bool, na_value=False)[measured], truth[measured]
        recall_dark, recall_light = pred[true].mean(), (~pred[~true]).mean()
        rows.append({"evaluator": name, "accuracy": (pred == true).mean(),
                     "balanced accuracy": (recall_dark + recall_light) / 2, "dark recall": recall_dark,
                     "light recall": recall_light, "measured": measured.mean(), "n": int(measured.sum())})
    return pd.DataFrame(rows)


def cohen_kappa(a: np.ndarray | pd.Series, b: np.ndarray | pd.Series) -> float:
    """Cohen's κ of two binary raters: agreement beyond what their base rates give by chance.

    Pairs where either rater has no answer (NA) are dropped. κ is 1 for full agreement, 0 for
    agreement at chance, negative below it; NaN when both raters give one answer throughout
    (chance agreement is then 1 and κ is undefined).
    """
    a, b = pd.array(a, dtype="boolean"), pd.array(b, dtype="boolean")
    both = ~(a.isna() | b.isna())
    x, y = np.asarray(a[both], dtype=bool), np.asarray(b[both], dtype=bool)
    observed = (x == y).mean()
    chance = x.mean() * y.mean() + (1 - x.mean()) * (1 - y.mean())
    return float("nan") if chance == 1 else float((observed - chance) / (1 - chance))


def validated(accuracy: pd.DataFrame, minimum: float = MIN_BALANCED_ACCURACY) -> list[str]:
    """The evaluators of a :func:`race_accuracy` table whose balanced accuracy reaches ``minimum``."""
    return accuracy.loc[accuracy["balanced accuracy"] >= minimum, "evaluator"].tolist()
