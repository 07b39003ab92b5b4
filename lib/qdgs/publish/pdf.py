"""The whole book, chapters in reading order, printed by chromium to one PDF."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from qdgs.publish.chromium import run_chromium, serve
from qdgs.publish.site import local_path, reading_order, require_html, soup

_PRINT_PAGE = "_qdgs_print.html"
_PRINT_CSS = """
.qdgs-chapter { break-before: page; }
.qdgs-chapter:first-child { break-before: auto; }
/* the theme hides each page's first h1 in print, expecting its own title block; we have none */
.bd-main .bd-content .bd-article .qdgs-chapter h1:first-of-type { display: block !important; }
.headerlink, .toggle-button, .copybtn, .prev-next-area { display: none !important; }
img { max-width: 100%; break-inside: avoid; }
pre { white-space: pre-wrap; }
"""


def _slug(page: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", page.removesuffix(".html"))


def _chapter_section(html_dir: Path, page: str, chapters: set[str]) -> str:
    """One page's article, with ids made unique per chapter and URLs made relative to the root.

    Links to another chapter become links inside the PDF; everything else keeps pointing at the
    same file, now seen from the combined page at the root of the build.
    """
    parsed = soup(html_dir / page)
    article = parsed.select_one("article.bd-article") or parsed.select_one("[role=main]") or parsed.body
    slug = _slug(page)
    for script in article.find_all("script"):
        script.decompose()
    for el in article.find_all(id=True):
        el["id"] = f"{slug}--{el['id']}"
    for el in article.find_all(["a", "img"]):
        attr = "href" if el.name == "a" else "src"
        target = local_path(el[attr], page) if el.get(attr) else None
        if target is None:
            continue
        fragment = urlsplit(el[attr]).fragment
        if target in chapters:
            el[attr] = f"#{_slug(target)}--{fragment}" if fragment else f"#{_slug(target)}"
        else:
            el[attr] = target + (f"#{fragment}" if fragment else "")
    return f'<section class="qdgs-chapter" id="{slug}">{article.decode_contents()}</section>'


def print_page(html_dir: Path, pages: list[str]) -> str:
    """A single HTML page holding every chapter's body in order, styled by the book's CSS.

    Of the scripts only MathJax's are kept: the PDF shows the static outputs papermill recorded,
    and the theme's scripts would rearrange the page. MathJax typesets only where it loads
    (chromium runs loopback-only, so a CDN copy does not; a copy under ``_static`` does).
    """
    head = soup(html_dir / pages[0]).head
    head_items = []
    for link in head.find_all("link", rel="stylesheet"):
        href = local_path(link.get("href", ""), pages[0])
        if href:
            head_items.append(f'<link rel="stylesheet" href="{href}">')
    head_items += [str(style) for style in head.find_all("style")]
    for script in head.find_all("script"):
        if "mathjax" in (script.get("src", "") + script.get_text()).lower():
            if script.get("src"):
                script["src"] = local_path(script["src"], pages[0]) or script["src"]
            head_items.append(str(script))
    body = "\n".join(_chapter_section(html_dir, page, set(pages)) for page in pages)
    title = head.title.get_text() if head.title else "book"
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"{''.join(head_items)}<style>{_PRINT_CSS}</style></head><body>"
            f"<main class='bd-main'><div class='bd-content'><article class='bd-article'>{body}"
            "</article></div></main></body></html>")


def make_pdf(html_dir: Path, pdf_path: Path) -> Path:
    """Print the whole book, chapters in reading order, to one PDF with chromium.

    The chapters are joined into one page (each starting on a new sheet) and printed once, so
    page numbers run through the book, links between chapters work inside the PDF, and no PDF
    library is needed to stitch files together.

    Args:
        html_dir: the built HTML (``_build/book/_build/html``).
        pdf_path: the PDF to write (its folder is created).

    Returns:
        ``pdf_path``.
    """
    html_dir = require_html(Path(html_dir)).resolve()
    pdf_path = Path(pdf_path).resolve()
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    combined = html_dir / _PRINT_PAGE
    combined.write_text(print_page(html_dir, reading_order(html_dir)), encoding="utf-8")
    partial = pdf_path.with_name(f".{pdf_path.name}.partial")
    try:
        with serve(html_dir) as base_url:
            run_chromium(base_url + _PRINT_PAGE, f"--print-to-pdf={partial}", "--no-pdf-header-footer",
                         "--virtual-time-budget=3000")
        if not partial.is_file() or partial.stat().st_size == 0:
            raise RuntimeError(f"chromium wrote no PDF for {html_dir}: run `make pdf` again and read "
                               "chromium's messages; reinstall it with `make browser` if it crashed")
        os.replace(partial, pdf_path)
    finally:
        combined.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    return pdf_path
