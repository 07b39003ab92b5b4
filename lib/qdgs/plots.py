"""Figures shared by the chapters. Each function draws on ``ax`` (a new one if None) and returns nothing."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
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
