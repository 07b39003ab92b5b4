"""Archives the reader can hover: one heatmap per archive, each cell showing its elite.

``archive_explorer({"QDGS": qd, "random": rand}, images=..., names=...)`` returns an object whose
``_repr_html_`` is a self-contained HTML snippet: the book renders it as it is, with no server,
kernel, CDN or plotting library. Hovering (or tapping) a cell shows the elite's thumbnail, its
objective, every measure and any audit attributes. With more than two measures, two ``<select>``
choose the pair shown and one slider per other measure picks its slice (a cell index, or "all":
the best over that measure, as :func:`qdgs.search.project_archive` draws it).

Page weight, measured (32 px WebP q70, two archives side by side): shapes, a 50 × 50 grid with
1,500 QDGS and 900 random elites (VAE decodes): 268 kB of HTML, 174 kB gzipped; faces, a
10 × 10 × 3 × 10 grid with 453 + 313 elites (real face photos), six audit columns: 333 kB, 225 kB
gzipped. Thumbnails are three quarters of it, the JSON values most of the rest; script and CSS: 9 kB.

Why this shape:

* **No plotting library.** plotly.js alone is about 3.5 MB per page; a canvas per heatmap, ~100
  lines of vanilla JS and the data as inline JSON cost a few kB. A canvas rather than one SVG rect
  per cell keeps the DOM at one element per map however large the grid (50 × 50 × 2 maps would be
  5,000 nodes) and makes redrawing a slice a loop of ``fillRect``.
* **One sprite sheet.** All thumbnails of all archives are tiled into one image, embedded once as a
  base64 data URI in a CSS rule and cropped by ``background-position``: one decode, no request,
  nothing to serve. WebP (all browsers since Safari 14, 2020) was measured 45 % lighter than JPEG
  at the same quality setting (2,400 shapes-VAE decodes at 32 px: 201 kB WebP q70 against 373 kB
  JPEG q70, as base64; PNG is 2.5 times JPEG); JPEG is used when Pillow lacks WebP.
  :attr:`Explorer.weight` reports the bytes, and the page states them under the maps.
* **Arrays at the core.** :func:`explorer_data` takes plain arrays, so the cell rule and the shown
  elite per cell are testable without pyribs; :func:`from_archive` adapts a ``GridArchive`` (or a
  :class:`~qdgs.search.SearchResult`). The cell rule is pyribs' ``GridArchive.index_of``: uniform
  bins over each range, values outside clipped into the edge cells.
* **One elite per cell.** Two elites in the same cell of the full grid pass or fail every slice
  together, so only the better can ever be shown: keeping one per cell loses nothing and bounds the
  page by the number of cells. A coarser ``dims`` than the archive's is the knob for huge archives.
* **Isolation.** Each explorer has its own element id (a counter and a content hash, so reruns
  give the same HTML), its CSS is scoped under that id and its script is one closure: several on a
  page do not clash. The tooltip is ``position: fixed`` because the book theme's output boxes
  clip what overflows them. ``#qdgs-selftest`` in the URL makes the script hover its first
  occupied cell and record what it saw in ``data-qdgs-selftest``, which the browser test reads.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import io
import itertools
import json
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, features

#: pyribs' GridArchive default epsilon, added before flooring so values on a boundary land alike.
EPSILON = 1e-6
#: Thumbnails are enlarged this many times in the tooltip.
TIP_SCALE = 3
#: Above this many bytes an explorer warns that it makes its page heavy.
WARN_BYTES = 1_000_000
_COUNTER = itertools.count()


@dataclass
class ExplorerData:
    """One archive, ready to draw: one elite per grid cell, with its thumbnail, best first.

    Best first (objective descending, then input order) makes "the best in the slice" the first
    elite that matches it, a rule the script applies without comparing rounded objectives.

    Attributes:
        names: (M,) measure names.
        dims: (M,) cells per measure.
        ranges: (M,) (low, high) of each measure.
        cells: (k, M) grid index of each kept elite.
        objective: (k,) objectives.
        measures: (k, M) measure values.
        attributes: name → (k,) extra values shown in the tooltip (e.g. audit probabilities).
        source: (k,) index of each kept elite in the arrays given to :func:`explorer_data`.
        thumbs: (k, t, t, 3) uint8 thumbnails.
    """

    names: tuple[str, ...]
    dims: tuple[int, ...]
    ranges: tuple[tuple[float, float], ...]
    cells: np.ndarray
    objective: np.ndarray
    measures: np.ndarray
    attributes: dict[str, np.ndarray] = field(default_factory=dict)
    source: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    thumbs: np.ndarray = field(default_factory=lambda: np.zeros((0, 1, 1, 3), np.uint8))

    def shown(self, pair: tuple[int, int] = (0, 1), slices: Mapping[int, int | None] | None = None) -> np.ndarray:
        """Which kept elite each cell of a 2-D view shows (the script applies the same rule).

        Args:
            pair: the measures on the x and y axes.
            slices: measure → cell index it is sliced at; a measure absent or None is "all".

        Returns:
            (dims[x], dims[y]) int array of indices into the kept elites, -1 where empty: among
            the elites in the slice, the best objective, the first on ties.
        """
        a, b = pair
        keep = np.ones(len(self.objective), bool)
        for k, at in (slices or {}).items():
            if at is not None and k not in pair:
                keep &= self.cells[:, k] == at
        grid = np.full((self.dims[a], self.dims[b]), -1)
        for i in np.flatnonzero(keep)[::-1]:  # kept elites are best first: the last write wins
            grid[self.cells[i, a], self.cells[i, b]] = i
        return grid


def grid_cells(measures: np.ndarray, dims: Sequence[int], ranges: Sequence[tuple[float, float]]) -> np.ndarray:
    """(n, M) measures → (n, M) grid indices, exactly as pyribs' ``GridArchive.index_of``."""
    m = np.asarray(measures, dtype=np.float64)
    if not np.isfinite(m).all():
        raise ValueError("measures must be finite (pyribs rejects NaN and inf too)")
    dims_a, lo = np.asarray(dims), np.array([r[0] for r in ranges], float)
    width = np.array([r[1] for r in ranges], float) - lo
    return np.clip(((dims_a * (m - lo) + EPSILON) / width).astype(np.int32), 0, dims_a - 1)


def _best_per_cell(cells: np.ndarray, objective: np.ndarray) -> np.ndarray:
    """Indices of the best elite of each distinct cell (first on ties), best first."""
    order = np.lexsort((np.arange(len(objective)), -objective))
    _, first = np.unique(cells[order], axis=0, return_index=True)
    return order[np.sort(first)]


def _to_hwc_uint8(images: Any) -> np.ndarray:
    """(n, 3|1, H, W) floats in [0, 1] (tensor or array) or (n, H, W, 3) uint8 → (n, H, W, 3) uint8."""
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    x = np.asarray(images)
    if x.ndim != 4:
        raise ValueError(f"images must be (n, 3, H, W) or (n, H, W, 3), got shape {x.shape}")
    if x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3):
        x = x.transpose(0, 2, 3, 1)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    if x.dtype != np.uint8:
        x = np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
    return x


def _thumbnails(images: np.ndarray, thumb: int) -> np.ndarray:
    """(n, H, W, 3) uint8 → (n, thumb, thumb, 3), antialiased (a box filter would alias edges)."""
    return np.stack([np.asarray(Image.fromarray(im).resize((thumb, thumb), Image.LANCZOS)) for im in images]) \
        if len(images) else np.zeros((0, thumb, thumb, 3), np.uint8)


def _attribute_columns(values: Any) -> dict[str, np.ndarray]:
    if values is None:
        return {}
    items = values.items() if isinstance(values, Mapping) else ((c, values[c]) for c in values.columns)
    return {str(k): np.asarray(v, dtype=float).ravel() for k, v in items}


def explorer_data(measures: np.ndarray, objective: np.ndarray, images: Any, dims: Sequence[int],
                  ranges: Sequence[tuple[float, float]], names: Sequence[str],
                  attributes: Mapping[str, np.ndarray] | Any | Callable[[Any], Any] | None = None,
                  thumb: int = 32, batch_size: int = 256, cells: np.ndarray | None = None) -> ExplorerData:
    """Assign elites to grid cells, keep the best per cell and make its thumbnail.

    Args:
        measures: (n, M) measure values, M >= 2.
        objective: (n,) objectives (colour of the heatmap; the best wins a cell).
        images: (n, 3, H, W) in [0, 1] or (n, H, W, 3) uint8, tensor or array; or a callable
            taking an (m,) index array and returning those elites' images, called in batches of
            ``batch_size`` on the kept elites only, so full-size images are never all in memory.
        dims: cells per measure.
        ranges: (low, high) per measure.
        names: a name per measure.
        attributes: name → (n,) values, or a DataFrame; or a callable on an image batch returning
            one of those (e.g. ``lambda x: audit.predict(net, x)``), applied to the kept elites.
        thumb: thumbnail side in pixels.
        batch_size: images rendered and thumbnailed at a time when ``images`` is a callable.
        cells: (n, M) grid indices when already known (pyribs' own), else computed by
            :func:`grid_cells`.
    """
    measures, objective = np.asarray(measures, float), np.asarray(objective, float).ravel()
    dims, names = tuple(int(d) for d in dims), tuple(map(str, names))
    if measures.ndim != 2 or measures.shape[1] < 2 or not len(dims) == len(names) == len(ranges) == measures.shape[1]:
        raise ValueError(f"measures {measures.shape}, dims {dims}, ranges and names {names} must agree on M >= 2")
    cells = grid_cells(measures, dims, ranges) if cells is None else np.asarray(cells, np.int32)
    keep = _best_per_cell(cells, objective) if len(objective) else np.zeros(0, int)
    get = images if callable(images) else (lambda idx: np.asarray(images)[idx] if not hasattr(images, "detach")
                                           else images[idx])
    thumbs, attrs = [], {}
    if not callable(attributes):
        attrs = {k: v[keep] for k, v in _attribute_columns(attributes).items()}
    for start in range(0, len(keep), batch_size):
        batch = get(keep[start:start + batch_size])
        thumbs.append(_thumbnails(_to_hwc_uint8(batch), thumb))
        if callable(attributes):
            for k, v in _attribute_columns(attributes(batch)).items():
                attrs.setdefault(k, []).append(v)
    attrs = {k: np.concatenate(v) if isinstance(v, list) else v for k, v in attrs.items()}
    return ExplorerData(names, dims, tuple((float(lo), float(hi)) for lo, hi in ranges), cells[keep], objective[keep],
                        measures[keep], attrs, keep,
                        np.concatenate(thumbs) if thumbs else np.zeros((0, thumb, thumb, 3), np.uint8))


def from_archive(archive: Any, images: Callable[[np.ndarray], Any] | Any, names: Sequence[str] | None = None,
                 attributes: Any = None, dims: Sequence[int] | None = None, thumb: int = 32) -> ExplorerData:
    """:func:`explorer_data` of a pyribs ``GridArchive`` (or anything with an ``.archive``).

    Args:
        archive: a GridArchive, or a :class:`~qdgs.search.SearchResult`.
        images: the generator (a torch module, given float32 latents on its device), a callable
            from (m, D) solution arrays to their images, or an array of images in the order of
            ``archive.data()``. Only the kept elites are rendered, in batches, without gradients.
        names: measure names (default ``measure 1``, …).
        attributes: as in :func:`explorer_data`.
        dims: a grid coarser than the archive's to bound the page (default: the archive's).
        thumb: thumbnail side in pixels.
    """
    archive = getattr(archive, "archive", archive)
    data = archive.data()
    solution, measures = np.asarray(data["solution"]), np.asarray(data["measures"])
    own = dims is None or tuple(dims) == tuple(archive.dims)
    dims = tuple(archive.dims) if dims is None else tuple(dims)
    ranges = list(zip(np.asarray(archive.lower_bounds, float), np.asarray(archive.upper_bounds, float)))
    names = names or [f"measure {k + 1}" for k in range(len(dims))]
    cells = archive.int_to_grid_index(data["index"]) if own and len(solution) else None

    def render(idx: np.ndarray) -> Any:
        import torch  # the generators are torch modules; rendering needs no graph

        with torch.no_grad():
            if isinstance(images, torch.nn.Module):
                device = next(images.parameters(), torch.zeros(0)).device
                out = images(torch.as_tensor(solution[idx], dtype=torch.float32, device=device))
            else:
                out = images(solution[idx])
        return out.cpu() if isinstance(out, torch.Tensor) else out  # the audit gets CPU images
    return explorer_data(measures, data["objective"], render if callable(images) else images, dims, ranges, names,
                         attributes, thumb, cells=cells)


def sprite_sheet(thumbs: np.ndarray, fmt: str = "webp", quality: int = 70) -> tuple[bytes, str, int]:
    """Tile (n, t, t, 3) thumbnails row-major into one image; return (bytes, MIME type, columns)."""
    n, t = len(thumbs), thumbs.shape[1]
    cols = max(1, int(np.ceil(np.sqrt(n))))
    rows = max(1, int(np.ceil(n / cols)))
    sheet = np.full((rows * t, cols * t, 3), 255, np.uint8)
    for i, im in enumerate(thumbs):
        r, c = divmod(i, cols)
        sheet[r * t:(r + 1) * t, c * t:(c + 1) * t] = im
    fmt = fmt.lower() if fmt.lower() != "webp" or features.check("webp") else "jpeg"
    buf = io.BytesIO()
    options = {"png": {"optimize": True}, "webp": {"quality": quality, "method": 6}}.get(fmt, {"quality": quality})
    Image.fromarray(sheet).save(buf, format=fmt.upper(), **options)  # WebP method 6: ~3 % smaller, still < 1 s
    return buf.getvalue(), f"image/{fmt}", cols


def _sig(values: np.ndarray, digits: int = 4) -> list[float]:
    return [float(f"{v:.{digits}g}") for v in np.asarray(values, float).ravel()]


class Explorer:
    """The HTML of one explorer (``_repr_html_`` for notebooks) and what it weighs.

    Attributes:
        html: the self-contained snippet.
        data: the JSON embedded in it (what the script draws).
        weight: bytes of ``html``, ``sprite`` (base64, in the page), ``data`` (JSON) and ``gzip``
            (the page snippet as a server like GitHub Pages would send it).
        sprite_size: (width, height) of the sprite sheet in pixels.
        element_id: the root element's id.
    """

    def __init__(self, archives: Mapping[str, ExplorerData], pair: tuple[int, int] = (0, 1),
                 fmt: str = "webp", quality: int = 70, title: str = "") -> None:
        items = list(archives.items())
        if not items:
            raise ValueError("archive_explorer needs at least one archive")
        first = items[0][1]
        for name, d in items:
            if (d.names, d.dims) != (first.names, first.dims) or not np.allclose(d.ranges, first.ranges):
                raise ValueError(f"archive {name!r} has another grid than {items[0][0]!r}: "
                                 "the shared controls need the same names, dims and ranges")
        thumbs = np.concatenate([d.thumbs for _, d in items])
        sprite, mime, cols = sprite_sheet(thumbs, fmt, quality)
        t = first.thumbs.shape[1]
        self.sprite_size = (cols * t, max(1, -(-len(thumbs) // cols)) * t)
        obj = np.concatenate([d.objective for _, d in items])
        vmin, vmax = (float(obj.min()), float(obj.max())) if len(obj) else (0.0, 1.0)
        offsets = np.cumsum([0] + [len(d.objective) for _, d in items])
        self.data = {
            "names": list(first.names), "dims": list(first.dims), "ranges": [list(r) for r in first.ranges],
            "vmin": vmin, "vmax": vmax if vmax > vmin else vmin + 1, "thumb": t, "cols": cols, "scale": TIP_SCALE,
            "pair": list(pair), "archives": [
                {"name": name, "offset": int(off), "cells": d.cells.astype(int).ravel().tolist(),
                 "objective": _sig(d.objective), "measures": _sig(d.measures),
                 "attributes": {k: _sig(v) for k, v in d.attributes.items()}}
                for (name, d), off in zip(items, offsets)]}
        text = json.dumps(self.data, separators=(",", ":")).replace("</", "<\\/")
        digest = hashlib.sha1(text.encode() + sprite).hexdigest()[:8]
        self.element_id = f"qdgs-x{next(_COUNTER)}-{digest}"
        uri = f"data:{mime};base64,{base64.b64encode(sprite).decode()}"
        n_thumbs = f"{len(thumbs):,} thumbnails of {t} px in one {mime.split('/')[1].upper()} sheet"

        def page(note: str) -> str:
            values = {"ID": self.element_id, "SPRITE": uri, "DATA": text, "TITLE": html.escape(title),
                      "NOTE": html.escape(note)}
            return re.sub(r"@(ID|SPRITE|DATA|TITLE|NOTE)@", lambda hit: values[hit.group(1)], _HTML)  # one pass

        draft = page(f"{n_thumbs}; page weight ≈ 000.0 kB")
        kb = len(draft.encode()) / 1000
        self.html = page(f"{n_thumbs}; page weight ≈ {kb:.1f} kB "
                         f"(images {len(uri) / 1000:.1f} kB, data {len(text) / 1000:.1f} kB)")
        self.weight = {"html": len(self.html.encode()), "sprite": len(uri), "data": len(text),
                       "gzip": len(gzip.compress(self.html.encode(), 9))}
        if self.weight["html"] > WARN_BYTES:
            warnings.warn(f"the archive explorer weighs {kb:.0f} kB: pass a coarser dims= (one elite per "
                          "cell is kept) or a smaller thumb= to keep the page light", stacklevel=3)

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        counts = ", ".join(f"{a['name']} {len(a['objective']):,} cells" for a in self.data["archives"])
        return f"<archive explorer: {counts}; {self.weight['html'] / 1000:.1f} kB>"

    def page(self, title: str = "QDGS archive explorer") -> str:
        """A standalone HTML page holding only this explorer (for a browser check or a share)."""
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
                f"<body style='font-family:sans-serif'>{self.html}</body></html>")


def archive_explorer(archives: Mapping[str, ExplorerData | Any], images: Any = None, names: Sequence[str] | None = None,
                     attributes: Any = None, dims: Sequence[int] | None = None, thumb: int = 32,
                     pair: tuple[int, int] = (0, 1), fmt: str = "webp", quality: int = 70, title: str = "") -> Explorer:
    """Heatmaps of named archives side by side, colour = objective, hover for each cell's elite.

    Args:
        archives: name → :class:`ExplorerData`, pyribs GridArchive or SearchResult (the last two
            through :func:`from_archive` with ``images``, ``names``, ``attributes``, ``dims``).
        images: for archives: the generator, or a callable from (m, D) solutions to (m, 3, H, W)
            images in [0, 1] (see :func:`from_archive`).
        names: measure names.
        attributes: extra tooltip values, as in :func:`explorer_data`.
        dims: cells per measure of the explorer's grid (default: each archive's own).
        thumb: thumbnail side in pixels (32 keeps 1,500 thumbnails near 200 kB).
        pair: the measures shown first (x, y).
        fmt: "webp" (lightest), "jpeg" or "png" for the sprite sheet.
        quality: WebP/JPEG quality.
        title: a heading above the maps.
    """
    ready = {name: a if isinstance(a, ExplorerData) else from_archive(a, images, names, attributes, dims, thumb)
             for name, a in archives.items()}
    return Explorer(ready, pair, fmt, quality, title)


#: The explorer's HTML, CSS and script (``explorer.html`` beside this module; ``@NAME@`` marks a value).
_HTML = Path(__file__).with_name("explorer.html").read_text().removesuffix("\n")
