"""Figures shared by the chapters. Each function draws on ``ax`` (a new one if None) and returns nothing."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from ribs.archives import GridArchive
from ribs.visualize import grid_archive_heatmap


def _axes(ax: Axes | None) -> Axes:
    return ax if ax is not None else plt.gca()


def _to_hwc(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """(N, 3, H, W) in [0, 1] → (N, H, W, 3) float array."""
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    return np.clip(arr.transpose(0, 2, 3, 1), 0, 1)


def archive_heatmap(archive: GridArchive, ax: Axes | None = None, *, labels: tuple[str, str] = ("measure 1", "measure 2"),
                    vmin: float | None = None, vmax: float | None = None, cmap: str = "viridis") -> None:
    """Objective of each occupied cell of a 2-D archive (pyribs' heatmap with labelled axes)."""
    ax = _axes(ax)
    grid_archive_heatmap(archive, ax=ax, vmin=vmin, vmax=vmax, cmap=cmap)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])


def image_grid(images: torch.Tensor | np.ndarray, nrow: int, ax: Axes | None = None, pad: int = 2) -> None:
    """Tile (N, 3, H, W) images into rows of ``nrow`` on one axes, white between tiles."""
    ax = _axes(ax)
    hwc = _to_hwc(images)
    n, h, w, _ = hwc.shape
    rows = int(np.ceil(n / nrow))
    canvas = np.ones((rows * (h + pad) + pad, nrow * (w + pad) + pad, 3))
    for i, img in enumerate(hwc):
        r, c = divmod(i, nrow)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = img
    ax.imshow(canvas)
    ax.set_axis_off()


def contact_sheet(images: np.ndarray, values: np.ndarray, dark: np.ndarray, nrow: int = 16,
                  rows: int = 3, ax: Axes | None = None, label: str = "") -> None:
    """Faces at evenly spaced ranks of one evaluator's value, darkest first; a red frame marks "dark".

    A reader judges an evaluator by eye: if its order and its "dark" calls look right, the
    numbers that rest on it can be trusted. Faces the evaluator cannot measure (NaN) are left out.

    Args:
        images: (N, H, W, 3) uint8 faces (as :func:`measure_strips`).
        values: (N,) the evaluator's value, low = dark (e.g. ITA, or 1 − p(dark)).
        dark: (N,) bool, the evaluator's "dark" call.
        nrow: faces per row.
        rows: rows of the sheet.
        ax: where to draw.
        label: the axes title.
    """
    ax = _axes(ax)
    hwc = np.asarray(images, dtype=np.float64) / 255
    order = np.flatnonzero(np.isfinite(values))
    order = order[np.argsort(values[order], kind="stable")]
    picks = order[np.linspace(0, len(order) - 1, min(nrow * rows, len(order))).round().astype(int)]
    framed = hwc[picks].copy()
    framed[np.asarray(dark)[picks]] = _frame(framed[np.asarray(dark)[picks]])
    image_grid(torch.as_tensor(framed.transpose(0, 3, 1, 2)), nrow, ax=ax)
    ax.set_title(label, fontsize=9)


def _frame(images: np.ndarray, width: int = 2) -> np.ndarray:
    """(N, H, W, 3) images with a red border ``width`` pixels wide."""
    out = images.copy()
    for edge in (np.s_[:, :width], np.s_[:, -width:], np.s_[:, :, :width], np.s_[:, :, -width:]):
        out[edge] = (0.85, 0.1, 0.1)
    return out


def images_by_measures(images: torch.Tensor | np.ndarray, measures: np.ndarray, ranges: list[tuple[float, float]],
                       bins: tuple[int, int] = (8, 8), scores: np.ndarray | None = None, ax: Axes | None = None,
                       labels: tuple[str, str] = ("measure 1", "measure 2")) -> None:
    """Lay out one image per cell of a coarse 2-D grid over two measures (best score wins the cell).

    Args:
        images: (N, 3, H, W) images in [0, 1].
        measures: (N, 2) the two measures that place each image.
        ranges: (low, high) of each measure; the grid spans them.
        bins: grid cells along each measure.
        scores: (N,) which image represents a cell (highest wins); default: the first one.
        ax: where to draw.
        labels: axis labels.
    """
    ax = _axes(ax)
    hwc = _to_hwc(images)
    n, h, w, _ = hwc.shape
    scores = np.zeros(n) if scores is None else np.asarray(scores)
    canvas = np.full((bins[1] * h, bins[0] * w, 3), 0.92)
    best = np.full(bins, -np.inf)
    for img, m, s in zip(hwc, np.asarray(measures), scores):
        idx = [int(np.clip((m[k] - ranges[k][0]) / (ranges[k][1] - ranges[k][0]) * bins[k], 0, bins[k] - 1))
               for k in range(2)]
        if s > best[idx[0], idx[1]]:
            best[idx[0], idx[1]] = s
            row = bins[1] - 1 - idx[1]  # measure 2 grows upwards
            canvas[row * h:(row + 1) * h, idx[0] * w:(idx[0] + 1) * w] = img
    ax.imshow(canvas, extent=(ranges[0][0], ranges[0][1], ranges[1][0], ranges[1][1]), aspect="auto")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])


def measure_strips(images: np.ndarray, measures: np.ndarray, names: Sequence[str], per_row: int = 12,
                   ax: Axes | None = None) -> None:
    """One strip per measure: ``per_row`` faces at evenly spaced ranks of that measure, labelled on the left.

    Left is the lowest value (closest to the pair's first prompt). If a measure ranks faces as a
    person would, each strip reads as a gradient from the first prompt to the second.

    Args:
        images: (N, H, W, 3) uint8 generator samples.
        measures: (N, M) their measures; strip k uses column k.
        names: label of each strip, e.g. "dark ← skin → light".
        per_row: faces per strip.
        ax: where to draw.
    """
    ax = _axes(ax)
    strips = []
    for k in range(len(names)):
        order = np.argsort(measures[:, k])
        picks = order[np.linspace(0, len(order) - 1, per_row).round().astype(int)]
        strips.append(np.concatenate(list(images[picks]), axis=1))
    h = images.shape[1]
    ax.imshow(np.concatenate(strips, axis=0))
    ax.set_xticks([])
    ax.set_yticks([h * (k + 0.5) for k in range(len(names))], names, fontsize=9)
    ax.tick_params(axis="y", length=0)


def plot_measure_distributions(samples: dict[str, np.ndarray], k: int, ranges: tuple[float, float] | None = None,
                               ax: Axes | None = None, bins: int = 30) -> None:
    """Overlaid histograms (densities) of measure ``k`` for several named (n, M) measure arrays.

    Values outside ``ranges`` (default: the range of all of them) are drawn in the edge bins, as
    the archive clips them.
    """
    ax = _axes(ax)
    lo, hi = ranges or (min(v[:, k].min() for v in samples.values()), max(v[:, k].max() for v in samples.values()))
    edges = np.linspace(lo, hi, bins + 1)
    for label, values in samples.items():
        ax.hist(np.clip(values[:, k], edges[0], edges[-1]), bins=edges, density=True, alpha=0.5, label=label)
    ax.legend(fontsize=8)


def correlation_heatmap(table: pd.DataFrame, ax: Axes | None = None) -> None:
    """A square correlation table (e.g. :func:`qdgs.faces.entanglement`) as a −1…1 heatmap with its values."""
    ax = _axes(ax)
    im = ax.imshow(table.values, vmin=-1, vmax=1, cmap="coolwarm")
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=60, ha="right")
    ax.set_yticks(range(len(table.index)), table.index)
    for (i, j), v in np.ndenumerate(table.values):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
    ax.figure.colorbar(im, ax=ax, shrink=0.8)


# --- the paper's claims beside ours (the Results chapter) -------------------------------------

_VERDICTS = {True: "holds", False: "does not hold", None: "not resolved"}
_VERDICT_COLOURS = {True: "#2a7f3f", False: "#b03030", None: "#7a6a20"}


def _paper_number(text: str) -> float | None:
    """The first number in a paper's claim text ("up to ≈27 points" → 27.0), None when it has none."""
    found = re.search(r"(\d+(?:\.\d+)?)", text or "")
    return float(found.group(1)) if found else None


def _verdict_box(ax: Axes, claim: object, meta: dict) -> None:
    """The verdict, profile and backends as the panel's title (they differ between builds)."""
    holds = getattr(claim, "holds", None)
    backends = ", ".join(str(v) for v in meta.get("backends", {}).values())
    ax.set_title(f"{_VERDICTS[holds]} · {meta.get('profile', '?')} profile\n{backends}", loc="left",
                 fontsize=8, color=_VERDICT_COLOURS[holds])


def _shapes_claim(table: pd.DataFrame, meta: dict, claim: object, ax: Axes) -> None:
    pivot = table.pivot(index="bias", columns="condition", values="mean_acc").sort_index(ascending=False)
    sd = (table.pivot(index="bias", columns="condition", values="mean_std").sort_index(ascending=False)
          if "mean_std" in table else None)
    x = np.arange(len(pivot))
    for k, condition in enumerate(c for c in pivot.columns if c != "biased only"):
        gain = (pivot[condition] - pivot["biased only"]).to_numpy() * 100
        ax.plot(x, gain, marker="o", color=f"C{k}", label=f"ours: {condition}")
        if sd is not None and sd[condition].notna().any():
            band = sd[condition].fillna(0).to_numpy() * 100
            ax.fill_between(x, gain - band, gain + band, color=f"C{k}", alpha=0.2, lw=0)
    paper = _paper_number(getattr(claim, "paper", ""))
    if paper is not None:
        ax.axhline(paper, color="grey", ls="--", label=f"paper: {claim.paper}")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(x, [f"{b:g}" for b in pivot.index])
    ax.set(xlabel="colour bias of the pretraining set", ylabel="gain over biased only (points)")
    ax.legend(fontsize=7, loc="lower right")


def _faces_claim(table: pd.DataFrame, meta: dict, claim: object, ax: Axes) -> None:
    rows = table.set_index("quantity")
    dark = [q for q in rows.index if str(q).startswith("dark-skinned share")]
    series = []
    if dark and {"paper Rand", "paper QD"} <= set(rows.columns) and rows.loc[dark[0], ["paper Rand", "paper QD"]].notna().all():
        series.append(("paper", rows.loc[dark[0], "paper Rand"], rows.loc[dark[0], "paper QD"], "grey", "--"))
    for k, q in enumerate(dark):
        label = q.replace("dark-skinned share ", "ours ").replace("(", "").replace(")", "")
        series.append((label, rows.loc[q, "Rand"], rows.loc[q, "QD"], f"C{k}", "-"))
    for label, rand, qd, colour, ls in series:
        ax.plot([0, 1], [100 * float(rand), 100 * float(qd)], marker="o", color=colour, ls=ls, label=label)
    ax.set_xticks([0, 1], ["Rand", "QD"])
    ax.set_xlim(-0.3, 1.3)
    ax.set(ylabel="dark-skinned share (%)")
    ax.legend(fontsize=7, loc="lower right")


def _recognition_claim(table: pd.DataFrame, meta: dict, claim: object, ax: Axes, index: int) -> None:
    learned = table[table.model.isin(["QD", "Rand", "scratch"])]
    if index == 0:
        shown = learned[learned.benchmark == "lfw/dark"]
    else:
        shown = learned[~learned.benchmark.str.contains("/")]
    benchmarks = list(dict.fromkeys(shown.benchmark))
    models = list(dict.fromkeys(shown.model))
    width = min(0.3, 0.8 / max(1, len(models)))
    for k, model in enumerate(models):
        m = shown[shown.model == model].set_index("benchmark").reindex(benchmarks)
        pos = np.arange(len(benchmarks)) + (k - (len(models) - 1) / 2) * width
        ax.bar(pos, m["mean"], width, yerr=m["std"].fillna(0) if "std" in m else None, capsize=3,
               color=f"C{k}", label=f"ours: {model}")
    ax.set_xticks(np.arange(len(benchmarks)), benchmarks)
    means = shown["mean"].to_numpy(dtype=float)
    if len(means):
        spread = max(0.02, float(np.nanmax(means) - np.nanmin(means)))
        ax.set_ylim(max(0.0, float(np.nanmin(means)) - 2 * spread), min(1.0, float(np.nanmax(means)) + 3 * spread))
    ax.set(ylabel="verification accuracy (mean ± sd over seeds)")
    if getattr(claim, "ours", ""):  # the difference and the smallest one the seeds resolve, as recorded
        ax.set_xlabel(textwrap.fill(claim.ours, 70), fontsize=8)
    ax.legend(fontsize=7, loc="lower right", title=f"paper: {getattr(claim, 'paper', '')}", title_fontsize=7)


def claim_chart(chapter: str, table: pd.DataFrame, meta: dict, claim: int = 0, ax: Axes | None = None) -> None:
    """One of the paper's claims beside ours, drawn from a chapter's recorded results, with the verdict.

    Draws only what the chapter recorded (:func:`qdgs.results.load`); a band over seeds appears where
    the chapter recorded a seed spread, and the panel's title gives the verdict, the profile and the backends.

    * ``shapes``: the gain of each fine-tuning condition over the biased-only classifier per colour
      bias (points of mean group accuracy; band ±1 sd over seeds of the fine-tuned condition's
      accuracy, ``mean_std``), against the paper's number as a dashed line.
    * ``faces``: the dark-skinned share of Rand and QD faces by each evaluator, against the paper's
      Rand → QD (one search: no band).
    * ``recognition``: claim 0, QD and Rand on LFW dark–dark pairs; claim 1, every overall benchmark;
      bars are seed means, error bars ±1 sd over seeds (``std``); the paper reports only a direction,
      and the x label is our recorded difference with the smallest one the seeds resolve.

    Args:
        chapter: ``shapes``, ``faces`` or ``recognition``.
        table: the chapter's recorded table (``load(chapter).table``).
        meta: its metadata (``load(chapter).meta``), with ``claims``, ``profile`` and ``backends``.
        claim: which of the chapter's claims.
        ax: where to draw.
    """
    ax = _axes(ax)
    claims = meta.get("claims", [])
    the_claim = claims[claim] if claim < len(claims) else None
    if chapter == "shapes":
        _shapes_claim(table, meta, the_claim, ax)
    elif chapter == "faces":
        _faces_claim(table, meta, the_claim, ax)
    elif chapter == "recognition":
        _recognition_claim(table, meta, the_claim, ax, claim)
    else:
        raise ValueError(f"no claim chart for chapter '{chapter}'; charts: shapes, faces, recognition")
    _verdict_box(ax, the_claim, meta)
