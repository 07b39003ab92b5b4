"""The archive explorer: its data on a hand-made archive, and what a reader sees in chromium."""

import base64
import io
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from bs4 import BeautifulSoup
from PIL import Image
from qdgs import explorer
from qdgs.explorer import (
    ExplorerData,
    archive_explorer,
    explorer_data,
    from_archive,
    grid_cells,
)
from qdgs.publish import chromium
from ribs.archives import GridArchive

# Six elites over three measures in [0, 1]^3, a 4 × 4 × 2 grid. Elites 0 and 1 share a cell
# (1 is better); elite 4 lies outside the ranges and is clipped into the corner (0, 3, 1).
MEASURES = np.array([[0.05, 0.05, 0.5], [0.05, 0.10, 0.9], [0.95, 0.95, 0.1],
                     [0.55, 0.55, 0.5], [-1.0, 2.00, 0.5], [0.55, 0.60, 0.1]])
OBJECTIVE = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
DIMS, RANGES, NAMES = (4, 4, 2), [(0.0, 1.0)] * 3, ["colour", "shape", "size"]
ATTRS = {"p_dark": np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])}


def _images(n: int = 6, size: int = 16) -> np.ndarray:
    """(n, 3, size, size) images in [0, 1]: elite i is a flat colour, its own."""
    colours = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], float)[:n]
    return np.broadcast_to(colours[:, :, None, None], (n, 3, size, size)).copy()


@pytest.fixture
def tiny() -> ExplorerData:
    return explorer_data(MEASURES, OBJECTIVE, _images(), DIMS, RANGES, NAMES, attributes=ATTRS, thumb=8)


def _embedded(html: str) -> tuple[dict, Image.Image]:
    """The JSON and the decoded sprite sheet an explorer's HTML carries."""
    soup = BeautifulSoup(html, "html.parser")
    data = json.loads(soup.select_one("script.qx-data").string)
    uri = re.search(r"url\(data:image/(\w+);base64,([A-Za-z0-9+/=]+)\)", html)
    return data, Image.open(io.BytesIO(base64.b64decode(uri.group(2))))


def test_cells_follow_pyribs_grid_archive():
    rng = np.random.default_rng(0)
    ranges = [(-0.1, 0.1), (0.0, 3.0)]
    points = np.concatenate([rng.uniform(-0.3, 3.3, (500, 2)), [[-0.1, 0.0], [0.1, 3.0], [0.0, 1.5], [0.06, 0.6]]])
    archive = GridArchive(solution_dim=1, dims=(10, 7), ranges=ranges)
    expected = np.stack(archive.int_to_grid_index(archive.index_of(points)))
    np.testing.assert_array_equal(grid_cells(points, (10, 7), ranges), expected.reshape(-1, 2))


def test_each_elite_lands_in_its_cell_and_the_best_keeps_it(tiny):
    np.testing.assert_array_equal(tiny.source, [5, 4, 3, 2, 1])  # best first; elite 0 lost its cell to 1
    np.testing.assert_array_equal(tiny.cells, [[2, 2, 0], [0, 3, 1], [2, 2, 1], [3, 3, 0], [0, 0, 1]])
    np.testing.assert_array_equal(tiny.objective, [6, 5, 4, 3, 2])
    np.testing.assert_array_equal(tiny.attributes["p_dark"], [0.6, 0.5, 0.4, 0.3, 0.2])
    assert tiny.thumbs.shape == (5, 8, 8, 3)
    np.testing.assert_allclose(tiny.thumbs[4].reshape(-1, 3).mean(0), [0, 255, 0], atol=1)  # elite 1 is green


def test_the_shown_elite_per_cell_over_a_pair_and_a_slice(tiny):
    # kept elites 0..4 are inputs 5, 4, 3, 2, 1
    everything = tiny.shown((0, 1))  # "all" over size: (2, 2) holds inputs 3 (size 1) and 5 (size 0); 5 is better
    expected = np.full((4, 4), -1)
    expected[0, 0], expected[3, 3], expected[2, 2], expected[0, 3] = 4, 3, 0, 1
    np.testing.assert_array_equal(everything, expected)
    small = tiny.shown((0, 1), {2: 1})  # size sliced at cell 1: inputs 5 and 2 drop out, 3 shows in (2, 2)
    expected[2, 2], expected[3, 3] = 2, -1
    np.testing.assert_array_equal(small, expected)
    swapped = tiny.shown((2, 0), {1: 3})  # size on x, colour on y, shape sliced at its top cell
    assert swapped.shape == (2, 4)
    assert {(x, y): swapped[x, y] for x, y in zip(*np.nonzero(swapped >= 0))} == {(0, 3): 3, (1, 0): 1}


def test_the_page_embeds_values_one_sprite_and_its_weight(tiny):
    ex = archive_explorer({"QDGS": tiny, "random": tiny}, title="tiny")
    data, sheet = _embedded(ex.html)
    assert data["names"] == NAMES and data["dims"] == list(DIMS) and data["ranges"] == [[0, 1]] * 3
    first, second = data["archives"]
    assert (first["name"], first["offset"], second["offset"]) == ("QDGS", 0, 5)
    assert first["cells"] == tiny.cells.ravel().tolist()
    assert first["objective"] == [6, 5, 4, 3, 2] and first["attributes"] == {"p_dark": [0.6, 0.5, 0.4, 0.3, 0.2]}
    assert first["measures"][:3] == [0.55, 0.6, 0.1]
    assert (data["vmin"], data["vmax"]) == (2, 6)
    # 10 thumbnails of 8 px, 4 to a row (ceil √10): a 32 × 24 sheet
    assert sheet.size == ex.sprite_size == (4 * 8, 3 * 8) and data["cols"] == 4 and sheet.format == "WEBP"
    assert ex.weight["html"] == len(ex.html.encode()) and 0 < ex.weight["gzip"] < ex.weight["html"]
    assert ex.weight["sprite"] < ex.weight["html"] and "page weight ≈" in ex.html
    assert ex._repr_html_() == ex.html and "QDGS 5 cells" in repr(ex)


def test_a_heavy_explorer_says_so(tiny, monkeypatch):
    monkeypatch.setattr(explorer, "WARN_BYTES", 1000)
    with pytest.warns(UserWarning, match="coarser dims="):
        archive_explorer({"x": tiny})


def test_an_empty_archive_still_draws():
    empty = explorer_data(np.zeros((0, 2)), np.zeros(0), np.zeros((0, 3, 8, 8)), (3, 3), RANGES[:2], NAMES[:2])
    data, sheet = _embedded(archive_explorer({"none yet": empty}).html)
    assert data["archives"][0]["objective"] == [] and (data["vmin"], data["vmax"]) == (0, 1)
    assert empty.shown().tolist() == [[-1] * 3] * 3


def test_explorers_do_not_clash_and_escape_their_text(tiny):
    a, b = archive_explorer({"x": tiny}), archive_explorer({"x": tiny}, title="<b>&")
    assert a.element_id != b.element_id
    css = BeautifulSoup(a.html, "html.parser").style.string
    rules = [r.split("{")[0] for r in css.split("}") if "{" in r]
    assert rules and all(sel.strip().startswith(f"#{a.element_id}") for rule in rules for sel in rule.split(","))
    script = BeautifulSoup(a.html, "html.parser").find_all("script")[-1].string
    assert script.startswith("(function(){") and script.rstrip().endswith("})();")  # no globals
    assert "&lt;b&gt;&amp;" in b.html and "<b>&" not in b.html
    nasty = explorer_data(MEASURES, OBJECTIVE, _images(), DIMS, RANGES, ["</script>", "b", "c"], thumb=4)
    assert _embedded(archive_explorer({"x": nasty}).html)[0]["names"][0] == "</script>"  # the JSON stays whole


def test_images_as_uint8_tensors_or_a_callable_give_the_same_thumbnails(tiny):
    hwc = (_images().transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    seen = []

    def render(idx):
        seen.append(len(idx))
        return torch.as_tensor(_images()[idx])

    for images in (hwc, torch.as_tensor(_images()), render):
        d = explorer_data(MEASURES, OBJECTIVE, images, DIMS, RANGES, NAMES, thumb=8, batch_size=2)
        np.testing.assert_array_equal(d.thumbs, tiny.thumbs)
    assert seen == [2, 2, 1]  # only the kept elites, in batches


def test_from_a_grid_archive_with_a_generator_and_an_audit():
    archive = GridArchive(solution_dim=6, dims=DIMS, ranges=RANGES)
    solutions = np.eye(6)
    archive.add(solutions, OBJECTIVE, MEASURES)

    class Generator(torch.nn.Module):  # solution k -> elite k's colour
        def forward(self, z):
            assert not torch.is_grad_enabled() and z.dtype == torch.float32
            return torch.as_tensor(_images(), dtype=torch.float32)[z.argmax(1)]

    generator = Generator()

    def audit(images):
        return {"p_red": images[:, 0].mean((1, 2)).numpy()}

    d = from_archive(archive, generator, NAMES, attributes=audit, thumb=8)
    as_arrays = from_archive(archive, lambda z: _images()[z.argmax(1)], NAMES, thumb=8)  # a plain callable
    np.testing.assert_array_equal(as_arrays.thumbs, d.thumbs)
    np.testing.assert_array_equal(d.objective, [6, 5, 4, 3, 2])
    np.testing.assert_array_equal(d.attributes["p_red"], [0, 1, 1, 0, 0])  # elites 5..1: c, m, y, b, g
    assert len(from_archive(archive, generator, NAMES, dims=(1, 1, 1), thumb=8).objective) == 1  # coarser grid
    with pytest.raises(ValueError, match="another grid"):
        archive_explorer({"a": d, "b": from_archive(archive, generator, NAMES, dims=(2, 2, 2), thumb=8)})


def _chromium(url: str, *args: str) -> subprocess.CompletedProcess:
    """The book's headless chromium (``qdgs.publish.chromium``), with the page's console on stderr."""
    if not os.access(chromium.CHROMIUM, os.X_OK):
        pytest.skip(f"no chromium at {chromium.CHROMIUM} (make browser installs it)")
    return chromium.chromium_run(url, "--enable-logging=stderr", "--v=0", *args)


def _views() -> dict[str, tuple[explorer.Explorer, ExplorerData]]:
    """A faces-like explorer (3 measures, two archives, an attribute) and a shapes-like one (2)."""
    from qdgs import shapes

    renders = shapes.balanced_set(6, 0, 64).floats()
    sliced = explorer_data(MEASURES, OBJECTIVE, renders, DIMS, RANGES, NAMES, attributes=ATTRS, thumb=32)
    flat = explorer_data(MEASURES[:, :2], OBJECTIVE, renders, (5, 5), RANGES[:2], NAMES[:2], thumb=32)
    return {"3 measures": (archive_explorer({"QDGS": sliced, "random": sliced}), sliced),
            "2 measures": (archive_explorer({"QDGS": flat}), flat)}


def _console(stderr: str, page: str) -> list[str]:
    """The page's console messages, without chromium's pid and time stamp or the page's name."""
    return [re.sub(r"^.*?:CONSOLE:\d+\] ", "", line).replace(page, "PAGE")
            for line in stderr.splitlines() if ":CONSOLE" in line]


def _check_in_chromium(url: str, views: dict, shot: Path, baseline: str | None = None) -> None:
    """Open ``url`` with the self-test fragment; fail on console output or a tooltip not shown.

    ``baseline``: a page of the same site without explorers; its console messages (the book
    theme's own) are allowed, any other fails.
    """
    done = _chromium(url + "#qdgs-selftest", "--dump-dom", "--virtual-time-budget=3000",
                     f"--screenshot={shot}", "--window-size=1000,900")
    console = _console(done.stderr, url.rsplit("/", 1)[1])
    if baseline:
        allowed = _console(_chromium(baseline, "--dump-dom", "--virtual-time-budget=3000").stderr,
                           baseline.rsplit("/", 1)[1])
        console = [line for line in console if line not in allowed]
    assert not console, "the page wrote to the console:\n" + "\n".join(console)
    soup = BeautifulSoup(done.stdout, "html.parser")
    for name, (ex, data) in views.items():
        root = soup.find(id=ex.element_id)
        assert root is not None and root.get("data-qdgs-selftest"), f"{name}: the self-test did not finish"
        seen = json.loads(root["data-qdgs-selftest"])
        assert seen["visible"] and seen["image"].startswith('url("data:image/webp'), (name, seen)
        assert seen["rows"] == 2 + len(data.names) + len(data.attributes)  # name, objective, measures, attributes
        assert seen["sprite"] == list(ex.sprite_size) and seen["contrast"] > 100  # a real image, not a blank
        thumb = data.thumbs[seen["elite"]].reshape(-1, 3).mean(0)
        np.testing.assert_allclose(seen["mean"], thumb, atol=12)  # the hovered elite's own thumbnail
        for grid in seen["shown"]:  # the script picks the same elite per cell as ExplorerData.shown
            assert grid == data.shown((0, 1)).ravel().tolist()
        # pair (0, 1) alone, then sliced at each cell of the others; with 3 measures (2, 0) too
        assert len(seen["views"]) == (1 if len(data.names) == 2 else (1 + 2) + (1 + 4))
        for view in seen["views"]:  # every pair and slice the self-test tried
            slices = {k: c for k, c in enumerate(view["slices"]) if c >= 0}
            expected = data.shown(tuple(view["pair"]), slices).ravel().tolist()
            assert all(grid == expected for grid in view["grids"]), view
        if len(data.names) > 2:  # the first slider, moved to cell 0, redrew the maps
            assert seen["slider"] == data.shown((0, 1), {2: 0}).ravel().tolist() != seen["shown"][0]
            # x set to the third measure: the pair is (2, 1), and the slider is now colour's
            assert seen["select"] == {"pair": [2, 1], "grid": data.shown((2, 1)).ravel().tolist(), "sliders": 1}
        assert "needs JavaScript" not in root.get_text()
    with Image.open(shot) as image:
        assert image.size == (1000, 900)


def _shots() -> Path:
    """Where the browser checks leave their screenshots: ``$QDGS_SCREENSHOTS``, else the build tree."""
    shots = Path(os.environ.get("QDGS_SCREENSHOTS") or Path(__file__).resolve().parents[1] / "_build" / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    return shots


@pytest.mark.slow
def test_in_chromium_a_hover_shows_the_elite(tmp_path):
    views = _views()
    page = tmp_path / "explorer.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
                    + "".join(f"<h2>{k}</h2>{ex.html}" for k, (ex, _) in views.items()) + "</body></html>")
    _check_in_chromium(page.as_uri(), views, _shots() / "explorer.png")  # file://: no server at all


@pytest.mark.slow
def test_in_a_built_jupyter_book_too(tmp_path):
    """The notebook output as myst-nb renders it, under the book theme's CSS and scripts."""
    import sys

    import nbformat

    views = _views()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# Explorer")]
    for k, (ex, _) in views.items():
        cell = nbformat.v4.new_code_cell(f"archive_explorer(...)  # {k}", execution_count=1)
        cell.outputs = [nbformat.v4.new_output("execute_result", {"text/html": ex._repr_html_(), "text/plain": repr(ex)},
                                               execution_count=1)]
        nb.cells.append(cell)
    nbformat.write(nb, tmp_path / "explorer.ipynb")
    plain = nbformat.v4.new_notebook(metadata=nb.metadata, cells=[nbformat.v4.new_markdown_cell("# Plain")])
    nbformat.write(plain, tmp_path / "plain.ipynb")
    (tmp_path / "_config.yml").write_text('title: t\nexecute:\n  execute_notebooks: "off"\n')
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: explorer\nchapters:\n  - file: plain\n")
    subprocess.run([str(Path(sys.executable).with_name("jupyter-book")), "build", str(tmp_path)],
                   check=True, capture_output=True)
    html = tmp_path / "_build" / "html"
    _check_in_chromium((html / "explorer.html").as_uri(), views, _shots() / "explorer-in-book.png",
                       baseline=(html / "plain.html").as_uri())
