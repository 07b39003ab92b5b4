"""The reader's-eye check: render every page of a built book in chromium and list what a reader would meet.

``jupyter-book build -W`` catches what Sphinx sees; it does not see what a reader sees. A cell that
raised, an image the page points at but the build lacks, a link to a renamed section: all build
cleanly. The check therefore inspects the DOM chromium produced, page by page.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bs4 import BeautifulSoup

from qdgs.publish.chromium import run_chromium, serve
from qdgs.publish.site import all_pages, local_path, reading_order, redirect_target, require_html, soup


@dataclass(frozen=True)
class Problem:
    """One fault a reader would meet on a page."""

    page: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.page}: {self.kind}: {self.detail}"


class BookCheckError(RuntimeError):
    """The rendered book has faults; the message lists every one and what to do."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = "\n  ".join(map(str, problems))
        super().__init__(f"{len(problems)} problem(s) in the rendered book:\n  {lines}\n"
                         "Fix the notebook or page named on each line, rebuild (make book), "
                         "and run the check again.")


# --- what counts as a fault ------------------------------------------------------------------


def _normalise(url: str, base_url: str) -> str:
    """Rendered pages may hold absolute URLs of the local server; make them build-relative."""
    return "/" + url[len(base_url):] if url.startswith(base_url) else url


def broken_redirects(html_dir: Path, pages: list[str]) -> list[Problem]:
    """Redirect stubs whose target is not in the build (chromium would follow them elsewhere)."""
    return [Problem(page, "broken link", f"redirects to {target}, which does not exist")
            for page in pages if (target := redirect_target(html_dir, page)) and not (html_dir / target).is_file()]


def error_outputs(dom: BeautifulSoup, page: str) -> list[Problem]:
    """Cells that raised: myst-nb renders them with the ``output traceback`` classes."""
    found = [Problem(page, "error output", el.get_text(" ", strip=True)[:200])
             for el in dom.select(".output.traceback")]
    if not found and "Traceback (most recent call last)" in dom.get_text():
        found.append(Problem(page, "error output", "the page shows a Python traceback"))
    return found


def missing_images(dom: BeautifulSoup, page: str, html_dir: Path, base_url: str) -> list[Problem]:
    """Images the reader would see as broken: not in the build, outside it, or empty data URIs."""
    problems = []
    for img in dom.find_all("img"):
        src = _normalise(img.get("src", "").strip(), base_url)
        if src.startswith("data:"):
            if not src.partition(",")[2].strip():
                problems.append(Problem(page, "missing image", "an empty data: URI"))
            continue
        target = local_path(src, page) if src else None
        if target is None or not (html_dir / target).is_file():
            problems.append(Problem(page, "missing image", f"{src or '(no src)'} is not a file in the build"))
    return problems


def broken_links(dom: BeautifulSoup, page: str, html_dir: Path, base_url: str,
                 ids_of: Callable[[str], set[str]]) -> list[Problem]:
    """Links inside the book to a page that does not exist, or to an anchor the page lacks."""
    problems = []
    for a in dom.find_all("a", href=True):
        href = _normalise(a["href"].strip(), base_url)
        target = local_path(href, page)
        if target is None:
            continue  # mailto:, javascript:, and other sites: not ours to check offline
        fragment = unquote(urlsplit(href).fragment)
        if not (html_dir / target).is_file():
            problems.append(Problem(page, "broken link", f"{href} -> {target} does not exist"))
        elif fragment and target.endswith(".html") and fragment not in ids_of(target):
            problems.append(Problem(page, "broken link", f"{href}: no #{fragment} on {target}"))
    return problems


def _ids(dom: BeautifulSoup) -> set[str]:
    return {el["id"] for el in dom.find_all(id=True)} | {el["name"] for el in dom.find_all("a", attrs={"name": True})}


def page_problems(dom: str, page: str, html_dir: Path, base_url: str,
                  ids_of: Callable[[str], set[str]]) -> list[Problem]:
    """Every fault on one rendered page."""
    parsed = BeautifulSoup(dom, "html.parser")
    return (error_outputs(parsed, page) + missing_images(parsed, page, html_dir, base_url)
            + broken_links(parsed, page, html_dir, base_url, ids_of))


# --- the check -------------------------------------------------------------------------------


def _screenshot_name(page: str) -> str:
    return page.removesuffix(".html").replace("/", "__") + ".png"


def render_pages(base_url: str, pages: list[str], screenshots_dir: Path | None,
                 screenshot_pages: set[str]) -> dict[str, str]:
    """Each page's DOM after chromium ran its scripts (and a 1280-wide screenshot of some)."""
    doms = {}
    for page in pages:
        args = ["--dump-dom", "--virtual-time-budget=3000"]
        if screenshots_dir is not None and page in screenshot_pages:
            args += [f"--screenshot={screenshots_dir / _screenshot_name(page)}", "--window-size=1280,2000"]
        doms[page] = run_chromium(base_url + page, *args)
    return doms


def check_pages(html_dir: Path, screenshots_dir: Path | None = None) -> list[Path]:
    """Render every page of a built book in headless chromium and fail on what a reader would see.

    Faults: a notebook cell that raised (myst-nb's traceback output, or a traceback in the text),
    an image whose ``src`` is not a file in the build (or an empty data URI), and a link inside
    the book to a page or an anchor that does not exist.

    Args:
        html_dir: the built HTML (``_build/book/_build/html``).
        screenshots_dir: where to keep a 1280×2000 PNG of each page in reading order (the
            artifacts CI uploads); None takes none.

    Returns:
        The screenshots written, in reading order.

    Raises:
        BookCheckError: listing every fault, page by page.
    """
    html_dir = require_html(Path(html_dir)).resolve()
    main_pages = reading_order(html_dir)
    if screenshots_dir is not None:
        Path(screenshots_dir).mkdir(parents=True, exist_ok=True)
    pages = all_pages(html_dir)
    stubs = [page for page in pages if redirect_target(html_dir, page)]
    with serve(html_dir) as base_url:
        doms = render_pages(base_url, [p for p in pages if p not in stubs], screenshots_dir, set(main_pages))

    @functools.cache
    def ids_of(page: str) -> set[str]:
        return _ids(BeautifulSoup(doms[page], "html.parser") if page in doms else soup(html_dir / page))

    problems = broken_redirects(html_dir, stubs) + [
        p for page, dom in doms.items() for p in page_problems(dom, page, html_dir, base_url, ids_of)]
    if problems:
        raise BookCheckError(problems)
    return [] if screenshots_dir is None else [Path(screenshots_dir) / _screenshot_name(p) for p in main_pages]
