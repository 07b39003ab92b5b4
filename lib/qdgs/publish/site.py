"""A built book as a set of pages: which exist, in which order, and where a link points.

Everything here reads the HTML files of a build; nothing renders them (see ``browser``).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from bs4 import BeautifulSoup

_BASE = "http://book.invalid/"


def require_html(html_dir: Path) -> Path:
    """``html_dir`` as a Path, or an error saying how to build the book when it holds none."""
    html_dir = Path(html_dir)
    if not (html_dir / "index.html").is_file():
        raise FileNotFoundError(f"no built book at {html_dir} (index.html missing): "
                                "run `make book` (or `make book PROFILE=smoke`) first")
    return html_dir


def soup(path: Path) -> BeautifulSoup:
    """One HTML file, parsed."""
    return BeautifulSoup(path.read_text(encoding="utf-8", errors="replace"), "html.parser")


def local_path(url: str, page: str) -> str | None:
    """The build-relative path that ``url`` on ``page`` points at, or None when it leaves the book."""
    parts = urlsplit(urljoin(_BASE + page, url))
    if parts.scheme != "http" or parts.netloc != "book.invalid":
        return None
    path = unquote(parts.path).lstrip("/")
    return path + "index.html" if path == "" or path.endswith("/") else path


def redirect_target(html_dir: Path, page: str) -> str | None:
    """Where a redirect stub (a ``<meta http-equiv="refresh">`` page) sends the reader, or None."""
    refresh = soup(html_dir / page).find("meta", attrs={"http-equiv": re.compile("refresh", re.I)})
    match = re.search(r"url=(.+)", refresh.get("content", ""), re.I) if refresh else None
    return local_path(match.group(1).strip().strip("'\""), page) if match else None


def root_page(html_dir: Path) -> str:
    """The book's first page: Jupyter Book's ``index.html`` only redirects to it."""
    return redirect_target(html_dir, "index.html") or "index.html"


def reading_order(html_dir: Path) -> list[str]:
    """The book's pages in ``_toc.yml`` order, as paths relative to ``html_dir``.

    Sphinx links every page to the next one in the table of contents (the theme's "next"
    button), so following those links from the root page gives exactly the reader's order.
    """
    html_dir = require_html(html_dir)
    pages = [root_page(html_dir)]
    while True:
        nxt = soup(html_dir / pages[-1]).select_one("a.right-next[href]")
        target = local_path(nxt["href"], pages[-1]) if nxt else None
        if target is None or target in pages or not (html_dir / target).is_file():
            return pages
        pages.append(target)


def all_pages(html_dir: Path) -> list[str]:
    """Every HTML page a reader can reach: the reading order first, then index, search and
    the like; Sphinx's own folders (``_static``, ``_sources``...) are assets, not pages."""
    ordered = reading_order(html_dir)
    others = sorted(p.relative_to(html_dir).as_posix() for p in Path(html_dir).rglob("*.html")
                    if not any(part.startswith("_") for part in p.relative_to(html_dir).parts))
    return ordered + [p for p in others if p not in ordered]
