"""Independent attribute evaluation of face images: skin tone by ITA and a UTKFace attribute classifier.

The paper reports that QDGS raises the share of generated faces recognised as dark-skinned from
9.4 % to 25.2 %. Judging that with the very scorer that guided the search would be circular, so
the audit uses two evaluators that never saw the prompts:

* **ITA** (individual typology angle, ``arctan((L* − 50) / b*)`` in degrees, from colorimetry):
  computed on skin pixels (a YCrCb skin rule inside a central face ellipse). ITA falls when a
  photo is dim, so dark *lighting* reads as dark *skin*: a confound the offline-scorer notes ran
  into. We report ITA twice: raw, and after a white-patch illumination normalisation that scales
  each channel so the image's bright end (98th percentile) is white. Normalisation removes global
  exposure and colour cast, not shading across the face; neither number is a measurement of a
  person, and the book says so.
* **An attribute classifier** (skin / gender / age) trained on UTKFace with strong lighting
  augmentation (exposure, gamma, white balance), so that brightness alone cannot predict its skin
  output. Its skin labels are "dark" (UTKFace race Black and normalised ITA < 25) or "light"
  (White or Asian and normalised ITA > 30); other faces give no skin label.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from qdgs.cache import artifact
from qdgs.images import relight
from qdgs.progress import progress

#: ITA below this (degrees) counts as dark skin ("brown" and "dark" of the Chardon scale).
DARK_ITA = 10.0
#: Age groups of the audit (years: [low, high)).
AGE_GROUPS = (("under 40", 0, 40), ("40 and over", 40, 200))
#: Thresholds on normalised ITA that, with the race label, define skin labels on UTKFace.
SKIN_LABEL_ITA = (25.0, 30.0)


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB in [0, 1] → CIE L*a*b* (D65)."""
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def white_patch(images: np.ndarray, percentile: float = 98.0) -> np.ndarray:
    """Illumination normalisation: scale each channel so its ``percentile`` becomes 1 (clipped).

    Args:
        images: (N, H, W, 3) RGB in [0, 1].
        percentile: the per-channel brightness treated as white.
    """
    top = np.percentile(images.reshape(len(images), -1, 3), percentile, axis=1)
    return np.clip(images / np.maximum(top, 0.05)[:, None, None, :], 0, 1)


def skin_mask(images: np.ndarray) -> np.ndarray:
    """(N, H, W) bool: YCrCb skin-coloured pixels inside a central ellipse (the face).

    Falls back to the whole ellipse for an image with fewer than 5 % skin-coloured pixels (very
    dark or strongly tinted images fail colour rules), so every image gets an ITA.
    """
    n, h, w, _ = images.shape
    y, x = np.mgrid[0:h, 0:w]
    ellipse = ((x - w / 2) / (0.3 * w)) ** 2 + ((y - 0.55 * h) / (0.38 * h)) ** 2 <= 1
    rgb = images * 255
    yy = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    cr = (rgb[..., 0] - yy) * 0.713 + 128
    cb = (rgb[..., 2] - yy) * 0.564 + 128
    rule = (cr >= 133) & (cr <= 180) & (cb >= 70) & (cb <= 130) & (yy > 15) & ellipse
    enough = rule.reshape(n, -1).mean(1) >= 0.05 * ellipse.mean()
    return np.where(enough[:, None, None], rule, ellipse[None])


def ita(images: np.ndarray | torch.Tensor, normalise: bool = True) -> np.ndarray:
    """Individual typology angle of each face's skin pixels (median L*, median b*).

    Args:
        images: (N, H, W, 3) RGB in [0, 1] or uint8, or a (N, 3, H, W) tensor in [0, 1].
        normalise: apply :func:`white_patch` first (removes global exposure and colour cast).

    Returns:
        (N,) ITA in degrees (higher = lighter; < 10 brown/dark, > 41 light on the Chardon scale).
    """
    arr = _hwc(images)
    if normalise:
        arr = white_patch(arr)
    lab = _srgb_to_lab(arr)
    mask = skin_mask(arr)
    out = np.empty(len(arr))
    for i in range(len(arr)):
        L, b = np.median(lab[i, ..., 0][mask[i]]), np.median(lab[i, ..., 2][mask[i]])
        out[i] = math.degrees(math.atan2(L - 50, max(b, 1e-3)))
    return out


def _hwc(images: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(images, torch.Tensor):
        return images.detach().cpu().permute(0, 2, 3, 1).clamp(0, 1).numpy().astype(np.float64)
    arr = np.asarray(images)
    return arr.astype(np.float64) / 255 if arr.dtype == np.uint8 else arr.astype(np.float64)


def skin_labels(race: np.ndarray, ita_norm: np.ndarray) -> np.ndarray:
    """UTKFace skin labels from race AND normalised ITA: 0 dark, 1 light, -1 none.

    Race alone is a category, not a skin tone; ITA alone tracks lighting. Requiring both to agree
    keeps only faces whose tone is unambiguous, so lighting cannot define the label.
    """
    race, ita_norm = np.asarray(race), np.asarray(ita_norm)
    dark = (race == 1) & (ita_norm < SKIN_LABEL_ITA[0])
    light = np.isin(race, (0, 2)) & (ita_norm > SKIN_LABEL_ITA[1])
    return np.where(dark, 0, np.where(light, 1, -1))


def age_group(age: np.ndarray) -> np.ndarray:
    """Index into :data:`AGE_GROUPS` for ages in years."""
    age = np.asarray(age)
    return sum((age >= low).astype(int) for _, low, _ in AGE_GROUPS[1:])


class AttributeNet(nn.Module):
    """A small CNN with three logits heads: skin (dark/light), gender (male/female), age group.

    Args:
        width: channels of the first conv block (doubles per block).
    """

    def __init__(self, width: int = 16) -> None:
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


def _geometry(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random flip, rotation (±20°) and scale (0.8–1.15): framing of generated faces varies."""
    b = len(images)
    angle = (torch.rand(b, generator=gen) - 0.5) * math.radians(40)
    scale = 0.8 + 0.35 * torch.rand(b, generator=gen)
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    shift = (torch.rand(b, 2, generator=gen) - 0.5) * 0.16
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                         torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode="reflection", align_corners=False)


def train_attribute_net(steps: int, seed: int = 0, batch_size: int = 128, size: int = 64,
                        progress_bar: bool = True) -> tuple[AttributeNet, pd.DataFrame]:
    """Train the audit classifier on UTKFace (cached in the artifact cache).

    A deterministic 10 % of the deduplicated images is held out; the returned table holds the
    held-out accuracy of each head, so the book can say how far to trust the audit.

    Args:
        steps: optimiser steps (each ``batch_size`` images, lighting + geometry augmented).
        seed: seeds the split, the initialisation and the augmentation.
        batch_size: images per step.
        size: the UTKFace preload size.
        progress_bar: show progress.

    Returns:
        The trained network (eval mode) and a held-out accuracy table (head, accuracy, n).
    """
    from qdgs.data import load_utkface

    def build(tmp) -> None:
        faces = load_utkface(size)
        labels = _utk_labels(faces)
        held = np.random.default_rng(seed).random(len(labels)) < 0.1
        train_idx = np.flatnonzero(~held)
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        rng = np.random.default_rng(seed + 1)
        net = AttributeNet()
        opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
        net.train()
        for _ in progress(range(steps), enabled=progress_bar, desc="audit classifier"):
            idx = np.sort(rng.choice(train_idx, batch_size, replace=False))
            x = torch.as_tensor(np.asarray(faces.images[idx])).permute(0, 3, 1, 2).float() / 255
            x = relight(_geometry(x, gen), gen)
            loss = _attribute_loss(net(x), labels.iloc[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        torch.save(net.state_dict(), tmp / "attribute_net.pt")
        _held_out_accuracy(net, faces, labels, np.flatnonzero(held)).to_csv(tmp / "held_out.csv", index=False)

    path = artifact("audit-attribute-net", {"steps": steps, "seed": seed, "batch_size": batch_size,
                                            "size": size, "skin_label_ita": SKIN_LABEL_ITA,
                                            "age_groups": AGE_GROUPS, "held_out_rows": 4}, build)
    net = AttributeNet()
    net.load_state_dict(torch.load(path / "attribute_net.pt", weights_only=True))
    return net.eval(), pd.read_csv(path / "held_out.csv")


def _utk_labels(faces) -> pd.DataFrame:
    """Per-image targets: skin (-1 none), gender, age group."""
    table = faces.table
    ita_norm = utkface_ita(faces.images.shape[1])
    return pd.DataFrame({"skin": skin_labels(table.race.values, ita_norm), "gender": table.gender.values,
                         "age": age_group(table.age.values), "ita_norm": ita_norm})


def utkface_ita(size: int = 64, chunk: int = 2048) -> np.ndarray:
    """Normalised ITA of every preloaded UTKFace image, in :func:`qdgs.data.load_utkface` order (cached)."""
    from qdgs.data import load_utkface

    faces = load_utkface(size)

    def build(tmp) -> None:
        values = [ita(np.asarray(faces.images[i:i + chunk])) for i in range(0, len(faces.images), chunk)]
        np.save(tmp / "ita.npy", np.concatenate(values))

    key = {"size": size, "files": list(faces.table.file[:: max(1, len(faces.table) // 50)]), "n": len(faces.table)}
    return np.load(artifact("utkface-ita", key, build) / "ita.npy")


def _attribute_loss(logits: torch.Tensor, labels: pd.DataFrame) -> torch.Tensor:
    skin = torch.tensor(labels.skin.values)
    loss = F.cross_entropy(logits[:, 2:4], torch.tensor(labels.gender.values))
    loss = loss + F.cross_entropy(logits[:, 4:], torch.tensor(labels.age.values))
    if (skin >= 0).any():
        loss = loss + F.cross_entropy(logits[skin >= 0, :2], skin[skin >= 0])
    return loss


@torch.no_grad()
def predict(net: AttributeNet, images: torch.Tensor | np.ndarray, batch_size: int = 256) -> pd.DataFrame:
    """Attribute probabilities and both ITAs of each image.

    Args:
        net: a trained :class:`AttributeNet`.
        images: (N, 3, H, W) tensor in [0, 1] or (N, H, W, 3) uint8 array.
        batch_size: images per forward.

    Returns:
        N rows: ``p_dark``, ``p_female``, ``p_<age group>``, ``ita_raw``, ``ita_norm``.
    """
    if not isinstance(images, torch.Tensor):
        images = torch.as_tensor(np.asarray(images)).permute(0, 3, 1, 2).float() / 255
    probs = []
    for i in range(0, len(images), batch_size):
        logits = net(images[i:i + batch_size].float())
        probs.append(torch.cat([logits[:, :2].softmax(1)[:, :1], logits[:, 2:4].softmax(1)[:, 1:],
                                logits[:, 4:].softmax(1)], 1))
    p = torch.cat(probs).numpy()
    out = pd.DataFrame(p, columns=["p_dark", "p_female"] + [f"p_{name}" for name, _, _ in AGE_GROUPS])
    out["ita_raw"] = ita(images, normalise=False)
    out["ita_norm"] = ita(images, normalise=True)
    return out


def _held_out_accuracy(net: AttributeNet, faces, labels: pd.DataFrame, idx: np.ndarray, seed: int = 0) -> pd.DataFrame:
    images = torch.as_tensor(np.asarray(faces.images[idx])).permute(0, 3, 1, 2).float() / 255
    pred = predict(net, images)
    relit = predict(net, relight(images, torch.Generator().manual_seed(seed)))
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
    """Hard attributes from :func:`predict`: ``dark_clf``, ``dark_ita``, ``gender``, ``age``."""
    ages = [name for name, _, _ in AGE_GROUPS]
    return pd.DataFrame({
        "dark_clf": pred.p_dark.values > 0.5,
        "dark_ita": pred.ita_norm.values < DARK_ITA,
        "gender": np.where(pred.p_female.values > 0.5, "female", "male"),
        "age": np.array(ages)[pred[[f"p_{a}" for a in ages]].values.argmax(1)],
    })


def proportions(attrs: pd.DataFrame) -> pd.Series:
    """Share of images per attribute: dark (classifier), dark (ITA), female, each age group."""
    out = {"dark skin (classifier)": attrs.dark_clf.mean(), "dark skin (ITA < 10°)": attrs.dark_ita.mean(),
           "female": (attrs.gender == "female").mean()}
    out.update({f"age {a}": (attrs.age == a).mean() for a, _, _ in AGE_GROUPS})
    return pd.Series(out)


def intersectional_counts(attrs: pd.DataFrame) -> pd.DataFrame:
    """Counts of images per skin (classifier) × gender × age group, zero-filled."""
    skin = np.where(attrs.dark_clf, "dark", "light")
    counts = pd.crosstab([skin, attrs.gender.values], attrs.age.values, rownames=["skin", "gender"],
                         colnames=["age"])
    full = pd.MultiIndex.from_product([["dark", "light"], ["male", "female"]], names=["skin", "gender"])
    return counts.reindex(index=full, columns=[a for a, _, _ in AGE_GROUPS], fill_value=0)


#: The paper's share of generated faces recognised as dark-skinned (random sampling → QDGS).
PAPER_DARK_SHARE = {"Rand": 0.094, "QD": 0.252}


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
