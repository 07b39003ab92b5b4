"""The faces domain: prompts, objective regularisers, the offline scorer's captions, and the dataset writer.

Everything the faces chapter needs that is specific to faces lives here; the search, the scoring
and the plots are shared with the shapes chapter.

* **Prompts** are the paper's (facts file): one objective pair and four measure pairs (skin tone,
  gender presentation, hair length, age).
* **Regularisers** are the paper's two extra objective terms, written as contract regularizers
  for :class:`qdgs.scoring.PromptScoring`: a latent-norm penalty and a uniqueness memory.
* **Captioned training data** for the offline scorer: UTKFace faces captioned in the paper's
  vocabulary, with geometry, blur and lighting augmentation so that neither framing nor lighting
  can stand in for an attribute, and degraded / discoloured copies captioned like the negative
  quality prompt. Hair length has no labels anywhere in UTKFace, so the scorer is never taught
  the hair prompts; the book shows what that measure does and says so.
* **Calibration and checks** of a scorer: zero-shot accuracy of every prompt pair on held-out
  UTKFace, and each measure's centre and spread on random generator samples (the paper's ±0.1
  archive range and ±0.03 bins are OpenAI-CLIP numbers and do not transfer to another scorer).
* **The dataset writer**: elites split into 3 × 3 skin × gender bins, k-means identities inside
  each bin, fixed latent augmentations, MTCNN alignment to 112 × 112, written as an image-folder
  dataset with metadata and a datasheet; the same writer, with matched counts, for the random
  baseline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.stats import spearmanr
from sklearn.cluster import KMeans
from sklearn.metrics import roc_auc_score
from torch import nn

from qdgs.audit import skin_labels, utkface_ita
from qdgs.cache import atomic_write
from qdgs.images import DEGRADATION_KINDS, blur, degrade, reframe, relight
from qdgs.progress import progress
from qdgs.scoring import spherical_distance

OBJECTIVE_PROMPTS = ("A detailed photo of an individual with diverse features.",
                     "An obscure, fake, or discolored photo of a person.")
MEASURE_PROMPTS = (("A person with dark skin.", "A person with light skin."),
                   ("A masculine person.", "A feminine person."),
                   ("A person with long hair.", "A person with short hair."),
                   ("A person in their 20s.", "A person in their 50s."))
#: Short names of the measures, in the order of :data:`MEASURE_PROMPTS`.
MEASURE_NAMES = ("skin", "gender", "hair", "age")
#: The paper's dataset bins (skin × gender, ±0.03) and archive range (±0.1), OpenAI-CLIP units.
PAPER_BIN_THRESHOLD = 0.03
PAPER_MEASURE_RANGE = 0.1


# --------------------------------------------------------------------------------------------
# Objective regularisers (paper: loss += 0.5·(max(‖w‖, q) − q)² + 0.2·(1 − uniqueness))
# --------------------------------------------------------------------------------------------

class LatentNormPenalty:
    """``weight · (max(‖z‖, q) − q)²``: keeps latents near the generator's typical norm ``q``.

    Gradient steps on prompt losses push latents outward, where a generator renders artefacts;
    the penalty is zero inside the typical shell and grows quadratically outside.

    Args:
        q: the typical latent norm (see :func:`typical_latent_norm`).
        weight: the paper's 0.5.
    """

    def __init__(self, q: float, weight: float = 0.5) -> None:
        self.q, self.weight = float(q), weight

    def __call__(self, z: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, D) latents, (B, E) embeddings → (B,) penalty."""
        return self.weight * (z.norm(dim=1).clamp(min=self.q) - self.q) ** 2


class UniquenessMemory:
    """``weight · (1 − uniqueness)``: rewards images unlike those already accepted into the archive.

    Uniqueness is an image embedding's smallest spherical distance to a FIFO memory of up to
    ``size`` embeddings of earlier accepted solutions, times ``100 / len(memory)`` (the paper's
    scaling, which favours novelty strongly while the memory is small). An empty memory gives
    uniqueness 1, i.e. no penalty.

    Args:
        weight: the paper's 0.2.
        size: the paper's 100.
    """

    def __init__(self, weight: float = 0.2, size: int = 100) -> None:
        self.weight, self.size = weight, size
        self.memory = torch.empty(0)

    def __call__(self, z: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, D) latents, (B, E) embeddings → (B,) penalty."""
        if len(self.memory) == 0:
            return torch.zeros(len(embeddings), device=embeddings.device)
        d = spherical_distance(embeddings, self.memory.to(embeddings))
        uniqueness = d.min(dim=1).values * 100 / len(self.memory)
        return self.weight * (1 - uniqueness)

    def update(self, accepted: torch.Tensor) -> None:
        """Remember (n, E) embeddings of solutions that entered the archive (oldest dropped first)."""
        accepted = accepted.detach().float().cpu()
        self.memory = (accepted if len(self.memory) == 0 else torch.cat([self.memory, accepted]))[-self.size:]


def typical_latent_norm(generator: nn.Module, n: int = 4096, seed: int = 0) -> float:
    """Median norm of ``n`` random latents of ``generator`` (the ``q`` of :class:`LatentNormPenalty`)."""
    return float(generator.sample_latents(n, seed=seed).norm(dim=1).median())


def regularizers(generator: nn.Module) -> list:
    """The paper's two face regularisers for ``generator``, with ``q`` from its random latents."""
    return [LatentNormPenalty(typical_latent_norm(generator)), UniquenessMemory()]


# --------------------------------------------------------------------------------------------
# Captions in the paper's vocabulary
# --------------------------------------------------------------------------------------------

DECADES = {0: "A child.", 1: "A teenager.", **{d: f"A person in their {d}0s." for d in range(2, 8)},
           8: "A person over 80."}
_SKIN = {"dark": ("A person with dark skin.", "A dark-skinned person.", "dark"),
         "light": ("A person with light skin.", "A light-skinned person.", "light")}
_GENDER = {"male": ("A masculine person.", "A man.", "masculine"),
           "female": ("A feminine person.", "A woman.", "feminine")}
#: Degradation kinds of the negative-quality copies, and their own captions.
DEGRADATIONS = dict(zip(DEGRADATION_KINDS, ("A discolored photo of a person.", "A discolored photo of a person.",
                                             "A blurry, pixelated photo of a person.",
                                             "A scrambled, fake image of a face.", "A noisy photo of a person.")))
#: Which attributes survive each degradation (their captions stay positive on the copy).
_SURVIVES = {"recolour": (), "cast": ("gender", "decade"), "pixelate": (), "shuffle": (),
             "noise": ("skin", "gender", "decade")}


@dataclass(frozen=True)
class Caption:
    """A caption and the attribute values an image must have for it to be a positive."""

    text: str
    requires: tuple[tuple[str, str], ...]


def vocabulary() -> list[Caption]:
    """Every caption the offline face scorer is trained on (the paper's prompts among them).

    Attributes are ``skin`` (dark / light), ``gender`` (male / female), ``decade`` (0–8, 8 = 80+)
    and ``quality`` (good / one of :data:`DEGRADATIONS`). Hair prompts are absent: no labels.
    """
    caps = [Caption(OBJECTIVE_PROMPTS[0], (("quality", "good"),))]
    caps += [Caption(OBJECTIVE_PROMPTS[1], (("bad", "yes"),))]
    caps += [Caption(t, (("quality", k),)) for k, t in DEGRADATIONS.items() if k != "cast"]
    caps += [Caption(t, (("skin", s),)) for s, v in _SKIN.items() for t in v[:2]]
    caps += [Caption(t, (("gender", g),)) for g, v in _GENDER.items() for t in v[:2]]
    caps += [Caption(t, (("decade", str(d)),)) for d, t in DECADES.items()]
    for g, gv in _GENDER.items():
        for s, sv in _SKIN.items():
            caps.append(Caption(f"A {gv[2]} person with {sv[2]} skin.", (("gender", g), ("skin", s))))
        for d in range(2, 8):
            caps.append(Caption(f"A {gv[2]} person in their {d}0s.", (("gender", g), ("decade", str(d)))))
    for s, sv in _SKIN.items():
        for d in range(2, 8):
            caps.append(Caption(f"A person with {sv[2]} skin in their {d}0s.", (("skin", s), ("decade", str(d)))))
    return caps


def positives(captions: Sequence[Caption], attrs: Sequence[dict[str, str]]) -> np.ndarray:
    """(B, V) bool: caption v is a positive of image b iff b has every attribute v requires."""
    return np.array([[all(a.get(k) == v for k, v in c.requires) for c in captions] for a in attrs])


def image_attributes(row: pd.Series, skin: int, degradation: str | None) -> dict[str, str]:
    """The caption attributes of one UTKFace image (``skin``: 0 dark, 1 light, -1 none)."""
    attrs = {"gender": ("male", "female")[int(row.gender)], "decade": str(min(int(row.age) // 10, 8))}
    if skin >= 0:
        attrs["skin"] = ("dark", "light")[skin]
    if degradation is None:
        return {**attrs, "quality": "good"}
    kept = {k: v for k, v in attrs.items() if k in _SURVIVES[degradation]}
    return {**kept, "quality": degradation, "bad": "yes"}


# --------------------------------------------------------------------------------------------
# Augmentation of the scorer's training faces
# --------------------------------------------------------------------------------------------

def augment(images: torch.Tensor, gen: torch.Generator, blur_p: float = 0.3) -> torch.Tensor:
    """Training augmentation of clean faces: reframing, occasional blur, lighting (see :func:`relight`)."""
    x = reframe(images, gen)
    sigma = torch.where(torch.rand(len(x), generator=gen) < blur_p, 0.4 + 1.1 * torch.rand(len(x), generator=gen),
                        torch.zeros(len(x)))
    return relight(blur(x, sigma), gen)


# --------------------------------------------------------------------------------------------
# The offline scorer's training batches
# --------------------------------------------------------------------------------------------

def utkface_split(n: int, seed: int = 0, held_out: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train, held-out) index split of the deduplicated UTKFace table."""
    held = np.random.default_rng(seed).random(n) < held_out
    return np.flatnonzero(~held), np.flatnonzero(held)


class FaceCaptionSampler:
    """Draws captioned, augmented UTKFace batches for ``train_clip`` (multi-positive InfoNCE).

    A fraction ``degrade_fraction`` of every batch is degraded (one degradation kind per batch
    part) and captioned with the negative quality prompt and the degradation's own caption;
    attribute captions stay positive only where the attribute survives the degradation.

    Args:
        faces: preloaded UTKFace (:func:`qdgs.data.load_utkface`).
        indices: the rows to draw from (the training split).
        skin: (N,) skin labels of every row (0 dark, 1 light, -1 none; :func:`qdgs.audit.skin_labels`).
        degrade_fraction: share of each batch that is degraded.
    """

    def __init__(self, faces, indices: np.ndarray, skin: np.ndarray, degrade_fraction: float = 0.2) -> None:
        self.faces, self.indices, self.skin = faces, np.asarray(indices), np.asarray(skin)
        self.degrade_fraction = degrade_fraction
        self.captions = vocabulary()
        self.vocabulary = [c.text for c in self.captions]
        # dark-skinned faces are rarer; draw each skin group (dark, light, none) a third of the time
        groups = [self.indices[self.skin[self.indices] == k] for k in (0, 1, -1)]
        self.groups = [g for g in groups if len(g)]

    def __call__(self, rng: np.random.Generator, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, 64, 64) images in [0, 1] and (B, V) bool positives over :attr:`vocabulary`."""
        group = rng.integers(len(self.groups), size=batch_size)
        idx = np.array([self.groups[g][rng.integers(len(self.groups[g]))] for g in group])
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        x = torch.as_tensor(np.asarray(self.faces.images[idx])).permute(0, 3, 1, 2).float() / 255
        x = augment(x, gen)
        n_bad = int(round(self.degrade_fraction * batch_size))
        kinds: list[str | None] = [None] * (batch_size - n_bad)
        names = list(DEGRADATIONS)
        for part in np.array_split(np.arange(batch_size - n_bad, batch_size), len(names)):
            if len(part):
                kind = names[int(rng.integers(len(names)))]
                x[part] = degrade(x[part], kind, gen)
                kinds += [kind] * len(part)
        rows = self.faces.table.iloc[idx]
        attrs = [image_attributes(r, int(self.skin[i]), k) for (_, r), i, k in zip(rows.iterrows(), idx, kinds)]
        return x.clamp(0, 1), torch.as_tensor(positives(self.captions, attrs))


# --------------------------------------------------------------------------------------------
# Checking and calibrating a scorer
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def prompt_pair_values(scorer: nn.Module, images: torch.Tensor, pairs: Sequence[tuple[str, str]],
                       batch_size: int = 256) -> np.ndarray:
    """(N, P) ``d(img, first) − d(img, second)`` for each prompt pair (negative = closer to the first)."""
    text = scorer.encode_text([p for pair in pairs for p in pair])
    out = []
    for i in range(0, len(images), batch_size):
        d = spherical_distance(scorer.encode_image(images[i:i + batch_size]), text)
        out.append((d[:, 0::2] - d[:, 1::2]).cpu().numpy())
    return np.concatenate(out)


def zero_shot_accuracy(scorer: nn.Module, faces, indices: np.ndarray, skin: np.ndarray,
                       seed: int = 0) -> pd.DataFrame:
    """Zero-shot accuracy and AUC of every prompt pair on held-out UTKFace (sign of the measure).

    Rows: skin vs the race-and-ITA labels, skin vs race alone (Black vs White + Asian), skin on
    the same faces randomly relit (lighting must not flip it), gender, hair (no labels: n/a),
    age (20s vs 50s) and the objective pair on clean vs degraded copies.

    Args:
        scorer: the text-image model.
        faces: preloaded UTKFace.
        indices: held-out rows.
        skin: (N,) skin labels of every row.
        seed: seeds the relighting and the degradations.
    """
    gen = torch.Generator().manual_seed(seed)
    table = faces.table.iloc[indices]
    x = torch.as_tensor(np.asarray(faces.images[indices])).permute(0, 3, 1, 2).float() / 255
    pairs = list(MEASURE_PROMPTS) + [OBJECTIVE_PROMPTS]
    m = prompt_pair_values(scorer, x, pairs)
    m_relit = prompt_pair_values(scorer, relight(x, gen), pairs[:1])
    kinds = list(DEGRADATIONS)
    bad = torch.cat([degrade(part, kinds[i % len(kinds)], gen)
                     for i, part in enumerate(torch.tensor_split(x, len(kinds)))])
    q_bad = prompt_pair_values(scorer, bad, pairs[-1:])[:, 0]
    s, race, age = skin[indices], table.race.values, table.age.values
    rows = [_accuracy("skin", "race and ITA labels", m[s >= 0, 0], s[s >= 0] == 0),
            _accuracy("skin", "race: Black vs White + Asian", m[np.isin(race, (0, 1, 2)), 0],
                      race[np.isin(race, (0, 1, 2))] == 1),
            _accuracy("skin", "relit faces, race and ITA labels", m_relit[s >= 0, 0], s[s >= 0] == 0),
            _accuracy("gender", "UTKFace gender", m[:, 1], table.gender.values == 0),
            {"measure": "hair", "labels": "none in UTKFace (not trained, not measurable here)",
             "accuracy": np.nan, "auc": np.nan, "n": 0},
            _accuracy("age", "20s vs 50s", m[(age // 10 == 2) | (age // 10 == 5), 3],
                      age[(age // 10 == 2) | (age // 10 == 5)] // 10 == 2),
            _accuracy("objective", "clean vs degraded copies", np.concatenate([m[:, 4], q_bad]),
                      np.r_[np.ones(len(x), bool), np.zeros(len(x), bool)])]
    return pd.DataFrame(rows)


#: The first try's held-out (accuracy, AUC) per label set (``../shared/reference/offline-scorer-notes.md``):
#: a 64 px ViT trained 11.5 CPU minutes without lighting or framing augmentation. Its skin row used
#: ITA labels alone, which is not comparable with ours and is left out.
FIRST_TRY_ZERO_SHOT = {"race: Black vs White + Asian": (0.742, 0.803), "UTKFace gender": (0.772, 0.923),
                       "20s vs 50s": (0.817, 0.847), "clean vs degraded copies": (0.982, 0.997)}


def beside_first_try(table: pd.DataFrame) -> pd.DataFrame:
    """The zero-shot table of :func:`zero_shot_accuracy` with the first try's numbers beside it."""
    first = table.labels.map(FIRST_TRY_ZERO_SHOT)
    return table.assign(**{"first try accuracy": first.map(lambda v: v[0], na_action="ignore"),
                           "first try auc": first.map(lambda v: v[1], na_action="ignore")})


def _accuracy(measure: str, labels: str, values: np.ndarray, first: np.ndarray) -> dict:
    """Accuracy of ``values < 0`` predicting ``first`` and the ranking AUC."""
    return {"measure": measure, "labels": labels, "accuracy": float(((values < 0) == first).mean()),
            "auc": float(roc_auc_score(first, -values)) if 0 < first.mean() < 1 else np.nan, "n": len(values)}


@dataclass
class Calibration:
    """Each measure's centre and spread on random generator samples.

    Attributes:
        centre: (M,) median measure.
        spread: (M,) half the central 95 % interval.
        samples: (n, M) the measures of the random samples.
    """

    centre: np.ndarray
    spread: np.ndarray
    samples: np.ndarray

    def ranges(self, scale: float = 2.0) -> list[tuple[float, float]]:
        """Archive ranges ``centre ± scale · spread`` (the search reaches past random samples)."""
        return [(float(c - scale * s), float(c + scale * s)) for c, s in zip(self.centre, self.spread)]

    def thresholds(self, scale: float = 2.0) -> list[tuple[float, float]]:
        """Bin thresholds at the paper's relative place: ±0.03 of ±0.1 is 30 % of the half-range."""
        frac = PAPER_BIN_THRESHOLD / PAPER_MEASURE_RANGE
        return [(float(c - frac * scale * s), float(c + frac * scale * s)) for c, s in zip(self.centre, self.spread)]


def calibrate(scoring, n: int, seed: int = 0, batch_size: int = 128) -> tuple[Calibration, dict[str, np.ndarray]]:
    """Measures of ``n`` random latents: the calibration, plus their images' statistics.

    Args:
        scoring: a :class:`qdgs.scoring.PromptScoring`.
        n: random samples.
        seed: seeds the latents.
        batch_size: latents per forward.

    Returns:
        The calibration and a dict of per-sample arrays: ``latents``, ``objective``, ``measures``,
        ``brightness`` (mean pixel value), ``images`` (uint8, (n, H, W, 3)).
    """
    z = scoring.generator.sample_latents(n, seed=seed).cpu().numpy()
    evs = [scoring.evaluate(z[i:i + batch_size]) for i in range(0, n, batch_size)]
    measures = np.concatenate([e.measures for e in evs])
    images = torch.cat([e.images for e in evs]).clamp(0, 1)
    lo, mid, hi = np.percentile(measures, [2.5, 50, 97.5], axis=0)
    samples = {"latents": z, "objective": np.concatenate([e.objective for e in evs]), "measures": measures,
               "brightness": images.mean(dim=(1, 2, 3)).cpu().numpy(),
               "images": (images.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)}
    return Calibration(mid, np.maximum((hi - lo) / 2, 1e-6), measures), samples


def entanglement(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Spearman correlation matrix of named per-sample columns (measures, objective, brightness, ITA)."""
    names = list(columns)
    rho = spearmanr(np.column_stack([columns[k] for k in names])).statistic
    return pd.DataFrame(np.atleast_2d(rho), index=names, columns=names)


# --------------------------------------------------------------------------------------------
# The dataset writer
# --------------------------------------------------------------------------------------------

#: ArcFace's 112 × 112 five-point template (eyes, nose tip, mouth corners).
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]])


def skin_gender_bins(measures: np.ndarray, thresholds: Sequence[tuple[float, float]]) -> np.ndarray:
    """(n,) bin 0–8 = 3 · skin bin + gender bin; bin 0 of a measure is "closer to its first prompt".

    Args:
        measures: (n, M) measures; columns 0 (skin) and 1 (gender) are used.
        thresholds: (low, high) for skin and gender: below low → 0, above high → 2, else 1.
    """
    parts = [np.digitize(measures[:, k], thresholds[k], right=False) for k in (0, 1)]
    return 3 * parts[0] + parts[1]


def assign_identities(latents: np.ndarray, bins: np.ndarray, seed: int = 0,
                      n_identities: int | None = None) -> np.ndarray:
    """k-means identities inside each bin; (n,) global identity ids.

    Args:
        latents: (n, D) latents.
        bins: (n,) bin of each latent.
        seed: seeds k-means.
        n_identities: total identities; default ⌈n_b / 2⌉ per bin (the paper). When given (the
            random baseline matched to a QDGS set), they are shared out in proportion to bin sizes.
    """
    labels, counts = np.unique(bins, return_counts=True)
    per_bin = (np.ceil(counts / 2).astype(int) if n_identities is None
               else _allocate(counts, n_identities))
    ids, next_id = np.empty(len(latents), int), 0
    for b, k in zip(labels, per_bin):
        rows = np.flatnonzero(bins == b)
        km = KMeans(k, n_init=4, random_state=seed).fit(latents[rows]) if 1 < k < len(rows) else None
        local = km.labels_ if km is not None else (np.arange(len(rows)) % max(k, 1))
        ids[rows] = next_id + local
        next_id += k
    return ids


def _allocate(counts: np.ndarray, total: int) -> np.ndarray:
    """Largest-remainder shares of ``total`` in proportion to ``counts``, each in [1, count]."""
    total = int(np.clip(total, len(counts), counts.sum()))
    raw = counts / counts.sum() * total
    share = np.clip(np.floor(raw).astype(int), 1, counts)
    for i in np.argsort(-(raw - np.floor(raw))):
        if share.sum() >= total:
            break
        share[i] += share[i] < counts[i]
    while share.sum() > total:
        share[np.argmax(share)] -= 1
    return share


def latent_augmentations(dim: int, n: int = 9, scale: float = 0.3, seed: int = 0) -> np.ndarray:
    """(n, dim) fixed latent offsets; row 0 is zero (the elite itself). Stored with every dataset.

    Small offsets change pose, expression and lighting more than identity, so one elite yields
    several images of one synthetic person.
    """
    offsets = np.random.default_rng(seed).normal(0, scale, (n, dim))
    offsets[0] = 0
    return offsets.astype(np.float32)


class FaceAligner:
    """MTCNN five-point alignment to ArcFace's 112 × 112 template (facenet-pytorch's shipped weights).

    Generated images are upsampled to 256 px before detection (MTCNN expects faces of a few
    dozen pixels and more). A face MTCNN misses is centre-resized instead and marked unaligned.
    """

    def __init__(self, size: int = 112) -> None:
        try:
            from facenet_pytorch import MTCNN
        except ImportError as err:
            raise RuntimeError("face alignment needs facenet-pytorch: run "
                               "`pip install --no-deps facenet-pytorch==2.6.0` (or `make setup`)") from err
        self.size = size
        self.mtcnn = MTCNN(device="cpu", post_process=False, select_largest=True)

    @torch.no_grad()
    def landmarks(self, images: torch.Tensor) -> list[np.ndarray | None]:
        """Five landmarks per image ((5, 2) in the image's own pixel units) or None."""
        h = images.shape[-1]
        big = F.interpolate(images.clamp(0, 1), size=(256, 256), mode="bilinear", align_corners=False)
        _, _, marks = self.mtcnn.detect((big.permute(0, 2, 3, 1) * 255).round(), landmarks=True)
        return [None if m is None else np.asarray(m[0], dtype=np.float64) * h / 256 for m in marks]

    def warp(self, images: torch.Tensor, marks: Sequence[np.ndarray | None]) -> torch.Tensor:
        """(B, 3, size, size) crops: similarity transforms from each image's landmarks to the template."""
        b, _, h, w = images.shape
        template = ARCFACE_TEMPLATE * self.size / 112
        thetas = []
        for m in marks:
            if m is None:  # centre crop: the whole image resized
                thetas.append(np.array([[1.0, 0, 0], [0, 1.0, 0]]))
                continue
            a = _similarity(template, m)  # output pixel → input pixel
            # to normalised coordinates (align_corners=False): x_n = (2x + 1) / W − 1
            to_out = np.array([[self.size / 2, 0, self.size / 2 - 0.5], [0, self.size / 2, self.size / 2 - 0.5], [0, 0, 1]])
            to_in = np.array([[2 / w, 0, 1 / w - 1], [0, 2 / h, 1 / h - 1], [0, 0, 1]])
            thetas.append((to_in @ np.vstack([a, [0, 0, 1]]) @ to_out)[:2])
        theta = torch.as_tensor(np.stack(thetas), dtype=images.dtype)
        grid = F.affine_grid(theta, [b, 3, self.size, self.size], align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(2, 3) least-squares similarity transform (Umeyama) mapping ``src`` points onto ``dst``."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s / len(src))
    sign = np.diag([1, np.sign(np.linalg.det(u @ vt))])
    r = u @ sign @ vt
    scale = (sig * np.diag(sign)).sum() / (s ** 2).sum(1).mean()
    return np.hstack([scale * r, (mu_d - scale * r @ mu_s)[:, None]])


def write_face_dataset(root: str | Path, generator: nn.Module, latents: np.ndarray, measures: np.ndarray,
                       objective: np.ndarray, thresholds: Sequence[tuple[float, float]],
                       augmentations: np.ndarray, identities: np.ndarray | None = None, align: bool = True,
                       seed: int = 0, description: str = "", batch_size: int = 64,
                       progress_bar: bool = True) -> pd.DataFrame:
    """Write an image-folder face dataset: ``images/<identity>/<index>.png``, metadata.csv, datasheet.md.

    Args:
        root: the (empty or new) dataset directory, e.g. a ``qdgs.cache.artifact`` build dir.
        generator: renders latents.
        latents: (n, D) elites (or random latents for the baseline).
        measures: (n, M) their measures; skin and gender (columns 0, 1) choose the bins.
        objective: (n,) their objective.
        thresholds: skin and gender (low, high) bin thresholds (:func:`skin_gender_bins`).
        augmentations: (A, D) latent offsets (:func:`latent_augmentations`); A images per latent.
        identities: (n,) identity of each latent; default k-means, ⌈n_b / 2⌉ per bin.
        align: MTCNN-align to 112 × 112 (else the generator's images as they are).
        seed: seeds k-means.
        description: one paragraph for the datasheet (what produced the latents).
        batch_size: latents rendered per batch.
        progress_bar: show progress.

    Returns:
        The metadata table (one row per image), also written as ``metadata.csv``.
    """
    root = Path(root)
    bins = skin_gender_bins(measures, thresholds)
    ids = assign_identities(latents, bins, seed) if identities is None else np.asarray(identities)
    aligner = FaceAligner() if align else None
    counters: dict[int, int] = {}
    rows = []
    device = next(generator.parameters()).device
    for start in progress(range(0, len(latents), batch_size), enabled=progress_bar, desc="writing faces"):
        z = torch.as_tensor(latents[start:start + batch_size], dtype=torch.float32, device=device)
        with torch.no_grad():
            base = generator(z).clamp(0, 1).cpu()
            marks = aligner.landmarks(base) if aligner else [None] * len(base)
            for a, offset in enumerate(augmentations):
                imgs = generator(z + torch.as_tensor(offset, device=device)).clamp(0, 1).cpu()
                if aligner:  # the offsets are small: the elite's own landmarks align all its images
                    imgs = aligner.warp(imgs, marks)
                for j, img in enumerate(imgs):
                    i = start + j
                    ident = int(ids[i])
                    k = counters[ident] = counters.get(ident, -1) + 1
                    rel = f"images/{ident:05d}/{k:03d}.png"
                    (root / rel).parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(root / rel)
                    rows.append({"path": rel, "identity": ident, "label": ident, "source_index": i,
                                 "augmentation": a, "aligned": marks[j] is not None, "bin": int(bins[i]),
                                 "objective": float(objective[i]),
                                 **{f"m{m}": float(measures[i, m]) for m in range(measures.shape[1])},
                                 "latent": json.dumps(np.round(latents[i], 5).tolist())})
    meta = pd.DataFrame(rows)
    np.save(root / "augmentations.npy", augmentations)
    with atomic_write(root / "metadata.csv", "w") as f:
        meta.to_csv(f, index=False)
    with atomic_write(root / "datasheet.md", "w") as f:
        f.write(datasheet(meta, thresholds, description))
    return meta


def datasheet(meta: pd.DataFrame, thresholds: Sequence[tuple[float, float]], description: str) -> str:
    """A short datasheet (Gebru et al. style) for a written face dataset."""
    per_bin = meta.drop_duplicates("source_index").groupby("bin").size().reindex(range(9), fill_value=0)
    table = "\n".join(f"| {b // 3} ({MEASURE_PROMPTS[0][0] if b // 3 == 0 else 'mid' if b // 3 == 1 else MEASURE_PROMPTS[0][1]})"
                      f" | {b % 3} | {n} |" for b, n in per_bin.items())
    return f"""# Datasheet: synthetic face dataset

**What.** {description or 'Synthetic faces rendered from generator latents.'}
{meta.identity.nunique()} identities, {len(meta)} images ({meta.source_index.nunique()} latents ×
{meta.augmentation.nunique()} latent augmentations), PNG, {'MTCNN-aligned to 112 × 112' if meta.aligned.any() else 'unaligned'}
({meta.aligned.mean():.1%} of images aligned from detected landmarks, the rest centre-resized).

**How.** Latents are binned 3 × 3 by the scorer's skin and gender measures (thresholds skin
{thresholds[0]}, gender {thresholds[1]}; bin 0 = closer to the first prompt), grouped into
identities by k-means inside each bin, and each latent is rendered with fixed small latent offsets
(`augmentations.npy`, row 0 = none). `metadata.csv` lists every image with its identity, bin,
objective, measures (`m0`–`m{len([c for c in meta if c.startswith('m') and c[1:].isdigit()]) - 1}`) and source latent.

| skin bin | gender bin | latents |
|---|---|---|
{table}

**Caveats.** Nobody in this dataset exists. Bins come from a text-image scorer's reading of the
images, not from any person's identity; skin-tone and gender bins are coarse, contestable
proxies. Identities are clusters of nearby latents, not verified to look like one person. Use it
for research on synthetic pre-training and bias, not to make decisions about people.
"""


def matched_random_latents(generator: nn.Module, n: int, seed: int) -> np.ndarray:
    """(n, D) random latents for the baseline, from a seed disjoint from the search's."""
    return generator.sample_latents(n, seed=10_000_019 + seed).cpu().numpy()


# --------------------------------------------------------------------------------------------
# What the chapter calls: backends, a cached search, archive slices, figures
# --------------------------------------------------------------------------------------------

GENERATORS = ("dcgan", "stylegan2")
SCORERS = ("offline-clip", "openai-clip")


def load_generator(name: str, stylegan2_path: str | None = None) -> nn.Module:
    """The face generator backend: ``dcgan`` (gan-face-generate) or ``stylegan2`` (NVIDIA's FFHQ-256)."""
    if name == "dcgan":
        from qdgs.generators.dcgan import DCGANFaces

        return DCGANFaces()
    if name == "stylegan2":
        from qdgs.generators.stylegan2 import StyleGAN2Faces

        return StyleGAN2Faces.load(stylegan2_path or None)
    from qdgs.params import ParameterError

    raise ParameterError(f"parameter 'generator' got {name!r}; allowed values: {', '.join(map(repr, GENERATORS))}")


def render(generator: nn.Module, latents: np.ndarray, batch_size: int = 64) -> torch.Tensor:
    """(n, 3, H, W) images in [0, 1] of (n, D) latents, without gradients."""
    device = next(generator.parameters()).device
    with torch.no_grad():
        return torch.cat([generator(torch.as_tensor(latents[i:i + batch_size], dtype=torch.float32, device=device)).cpu()
                          for i in range(0, len(latents), batch_size)])


def project_archive(archive, dims: tuple[int, int], bins: tuple[int, int] | None = None):
    """A 2-D elitist archive of the best elite per cell over two of an archive's measures.

    pyribs draws heatmaps of 1-D and 2-D archives only; a 4-D faces archive is shown as slices:
    for each cell of two measures, the best objective over the other measures.

    Args:
        archive: a pyribs GridArchive.
        dims: the two measure indices kept.
        bins: cells along each kept measure (default: the archive's own).
    """
    from ribs.archives import GridArchive

    data = archive.data()
    flat = GridArchive(solution_dim=archive.solution_dim,
                       dims=bins or tuple(archive.dims[d] for d in dims),
                       ranges=[(archive.lower_bounds[d], archive.upper_bounds[d]) for d in dims])
    if len(data["solution"]):
        flat.add(data["solution"], data["objective"], data["measures"][:, list(dims)])
    return flat


def measure_strips(images: np.ndarray, measures: np.ndarray, names: Sequence[str], per_row: int = 12):
    """A figure with one row per measure: ``per_row`` faces at evenly spaced ranks of that measure.

    Left is the lowest value (closest to the pair's first prompt). If a measure ranks faces as a
    person would, each row should read as a gradient from the first prompt to the second.

    Args:
        images: (N, H, W, 3) uint8 generator samples.
        measures: (N, M) their measures.
        names: label of each row, e.g. "dark ← skin → light".

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    rows = len(names)
    fig, axes = plt.subplots(rows, 1, figsize=(per_row * 0.8, rows * 0.95))
    for ax, k, name in zip(np.atleast_1d(axes), range(rows), names):
        order = np.argsort(measures[:, k])
        picks = order[np.linspace(0, len(order) - 1, per_row).round().astype(int)]
        ax.imshow(np.concatenate(list(images[picks]), axis=1))
        ax.set_yticks([])
        ax.set_xticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def plot_measure_distributions(samples: dict[str, np.ndarray], k: int, ranges: tuple[float, float] | None = None,
                               ax=None, bins: int = 30) -> None:
    """Overlaid histograms (densities) of measure ``k`` for several named (n, M) measure arrays."""
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    edges = np.linspace(*(ranges or (min(v[:, k].min() for v in samples.values()),
                                     max(v[:, k].max() for v in samples.values()))), bins + 1)
    for label, values in samples.items():
        ax.hist(np.clip(values[:, k], edges[0], edges[-1]), bins=edges, density=True, alpha=0.5, label=label)
    ax.legend(fontsize=8)


def cached_search(scoring, config, key: dict, progress_bar: bool = True):
    """Run a faces search with its checkpoint in the artifact cache (reruns resume or return at once).

    Args:
        scoring: the :class:`qdgs.scoring.PromptScoring` (its backends must be named in ``key``).
        config: the :class:`qdgs.search.SearchConfig`.
        key: what else determines the search: generator, scorer and its training parameters.
        progress_bar: show progress.
    """
    from dataclasses import asdict

    from qdgs.cache import cache_root, params_key
    from qdgs.search import run_search

    name = params_key("faces-search", {**key, "config": asdict(config), "prompts": [OBJECTIVE_PROMPTS, MEASURE_PROMPTS]})
    return run_search(scoring, config, checkpoint_path=cache_root() / "faces-search" / f"{name}.ckpt",
                      progress_bar=progress_bar)




def scorer_key(p) -> dict:
    """What determines the scorer of a resolved parameter namespace (for cache keys)."""
    if p.scorer == "openai-clip":
        return {"name": p.scorer, "weights": p.clip_weights}
    return {"name": p.scorer, **scorer_artifact_params(p.scorer_steps, p.seed)}


#: The offline face scorer's architecture: ``lib/qdgs/configs/faces_clip.json``.
SCORER_CONFIG = "faces_clip"
SCORER_LR = 1e-3
SCORER_BATCH = 128
#: Weight of the per-pair loss (see :func:`qdgs.scorers.offline_clip.train_clip`): without it an image
#: may match its skin caption and ignore its gender and age captions (held-out UTKFace at 600 steps:
#: gender 0.661 → 0.728, age 0.677 → 0.842; 1,200 steps then reach 0.829 and 0.856).
SCORER_PAIR_WEIGHT = 1.0


def load_scorer(name: str, steps: int, seed: int = 0, clip_weights: str = "openai",
                progress_bar: bool = True) -> tuple[nn.Module, pd.DataFrame]:
    """The prompt scorer backend and its zero-shot accuracy table on held-out UTKFace.

    ``offline-clip`` is trained here on captioned UTKFace (cached, with its table); ``openai-clip``
    loads OpenAI's weights (the table is computed on the fly).
    """
    from qdgs.data import load_utkface

    if name not in SCORERS:
        from qdgs.params import ParameterError

        raise ParameterError(f"parameter 'scorer' got {name!r}; allowed values: {', '.join(map(repr, SCORERS))}")
    if name == "openai-clip":  # weights first: without them, nothing else is worth loading
        from qdgs.scorers.openai_clip import load_openai_clip

        scorer = load_openai_clip(clip_weights)
    faces_ = load_utkface(64)
    skin = skin_labels(faces_.table.race.values, utkface_ita(64))
    train, held = utkface_split(len(faces_.table), seed)
    if name == "openai-clip":
        return scorer, zero_shot_accuracy(scorer, faces_, held, skin, seed)
    from qdgs.cache import artifact
    from qdgs.scorers.offline_clip import OfflineClipScorer, make_clip, train_clip

    def build(tmp: Path) -> None:
        model = make_clip(SCORER_CONFIG, seed)
        sampler = FaceCaptionSampler(faces_, train, skin)
        train_clip(model, sampler, sampler.vocabulary, steps=steps, lr=SCORER_LR, seed=seed, progress=progress_bar,
                   batch_size=SCORER_BATCH, pair_weight=SCORER_PAIR_WEIGHT)
        torch.save(model.state_dict(), tmp / "model.pt")
        zero_shot_accuracy(OfflineClipScorer(model), faces_, held, skin, seed).to_csv(tmp / "zero_shot.csv", index=False)

    path = artifact("faces-offline-clip", scorer_artifact_params(steps, seed), build)
    model = make_clip(SCORER_CONFIG)
    model.load_state_dict(torch.load(path / "model.pt", weights_only=True))
    return OfflineClipScorer(model), pd.read_csv(path / "zero_shot.csv")


def scorer_artifact_params(steps: int, seed: int) -> dict:
    """Everything that determines a trained offline face scorer (its cache key)."""
    from qdgs.scorers.offline_clip import load_config

    return {"config": load_config(SCORER_CONFIG), "steps": steps, "seed": seed, "lr": SCORER_LR,
            "batch_size": SCORER_BATCH, "pair_weight": SCORER_PAIR_WEIGHT, "vocabulary": [c.text for c in vocabulary()],
            "init": "seeded"}  # scorers cached before make_clip seeded its initialisation are not reused


@dataclass
class WrittenDataset:
    """A written face dataset: its directory, metadata and the (n, D) latents it was rendered from."""

    path: Path
    meta: pd.DataFrame
    latents: np.ndarray


def write_datasets(generator: nn.Module, scoring, elites: dict[str, np.ndarray],
                   thresholds: Sequence[tuple[float, float]], p, key: dict) -> tuple[WrittenDataset, WrittenDataset]:
    """Write (or reuse from the cache) the QD dataset of ``elites`` and its matched Rand dataset.

    Rand takes as many fresh random latents as QD has (``p.dataset_latents`` caps both, keeping a
    seeded random subset of the elites), scored with the same scoring, and is given exactly as many
    identities as QD has.

    Args:
        generator: renders latents.
        scoring: scores the random latents (measures for their bins, objective for the metadata).
        elites: ``solution``, ``measures``, ``objective`` of the QD archive.
        thresholds: skin and gender bin thresholds.
        p: the chapter's resolved parameters (``dataset_latents``, ``augmentations``,
            ``augmentation_scale``, ``align``, ``seed``).
        key: what else determines the datasets (backends, search).
    """
    from qdgs.cache import artifact

    rng = np.random.default_rng(p.seed)
    n = len(elites["solution"])
    keep = np.sort(rng.choice(n, p.dataset_latents, replace=False)) if 0 < p.dataset_latents < n else np.arange(n)
    qd_z, qd_m, qd_f = (elites[k][keep] for k in ("solution", "measures", "objective"))
    aug = latent_augmentations(qd_z.shape[1], p.augmentations, p.augmentation_scale, p.seed)
    common = {**key, "thresholds": [list(t) for t in thresholds], "n": len(qd_z), "augmentations": p.augmentations,
              "augmentation_scale": p.augmentation_scale, "align": p.align, "seed": p.seed}

    def write(name: str, z, m, f, identities=None, description="") -> WrittenDataset:
        def build(tmp: Path) -> None:
            write_face_dataset(tmp, generator, z, m, f, thresholds, aug, identities, p.align, p.seed, description)

        path = artifact("faces-dataset", {**common, "name": name}, build)
        return WrittenDataset(path, pd.read_csv(path / "metadata.csv"), z)

    qd = write("QD", qd_z, qd_m, qd_f, description=f"QDGS elites ({key.get('generator')} generator, "
                                                   f"{key.get('scorer', {}).get('name')} scorer, paper prompts).")
    rand_z = matched_random_latents(generator, len(qd_z), p.seed)
    evs = [scoring.evaluate(rand_z[i:i + 64]) for i in range(0, len(rand_z), 64)]
    rand_m = np.concatenate([e.measures for e in evs])
    rand_f = np.concatenate([e.objective for e in evs])
    ids = assign_identities(rand_z, skin_gender_bins(rand_m, thresholds), p.seed, qd.meta.identity.nunique())
    rand = write("Rand", rand_z, rand_m, rand_f, ids, description=f"Random latents of the {key.get('generator')} "
                 f"generator, matched to the QD dataset in latents, identities and images.")
    return qd, rand
