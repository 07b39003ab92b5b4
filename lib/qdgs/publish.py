"""Publishing the built book: check it in a real browser, print it to PDF, push it to GitHub Pages,
and refresh the README's results table.

    python -m qdgs.publish check    # every page rendered by headless chromium; screenshots kept
    python -m qdgs.publish pdf      # the whole book, in reading order, as one PDF
    python -m qdgs.publish push     # check, then ghp-import the HTML to the gh-pages branch
    python -m qdgs.publish readme   # rewrite README's "Results at a glance" from recorded results

``jupyter-book build -W`` catches what Sphinx sees; it does not see what a reader sees. A cell that
raised, an image the page points at but the build lacks, a link to a renamed section: all build
cleanly. The check therefore renders each page in Debian's headless chromium, served from
127.0.0.1 only, and inspects the DOM the reader actually gets. External hosts are made unresolvable,
so a check never waits on a network that CI does not have.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[2]
HTML_DIR = ROOT / "_build" / "book" / "_build" / "html"
#: Debian's chromium; ``QDGS_CHROMIUM`` points elsewhere (``make browser`` installs it).
CHROMIUM = os.environ.get("QDGS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--mute-audio",
    # Loopback only: a page asking for a CDN (MathJax, fonts) fails at once instead of hanging.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
#: Seconds one chromium run may take before the check calls it hung.
CHROMIUM_TIMEOUT = 90
#: The chapters whose results the README summarises, in reading order, with their notebooks.
CHAPTERS = {"shapes": ("Shapes: debiasing a classifier", "01_shapes_debiasing"),
            "faces": ("Faces: synthesis", "02_face_synthesis"),
            "recognition": ("Faces: recognition", "03_face_recognition")}
README_MARKERS = ("<!-- results:start -->", "<!-- results:end -->")
_PRINT_PAGE = "_qdgs_print.html"


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


# --- chromium and a loopback server ----------------------------------------------------------


def chromium_path() -> str:
    """The chromium binary, or an error saying how to install it."""
    if not os.access(CHROMIUM, os.X_OK):
        raise FileNotFoundError(
            f"chromium not found at {CHROMIUM}: run `make browser` as root (apt-get install "
            "--no-install-recommends chromium), or set QDGS_CHROMIUM to a chromium binary")
    return CHROMIUM


def run_chromium(url: str, *args: str) -> str:
    """Run one headless chromium on ``url`` with a fresh profile; return its stdout.

    A fresh ``--user-data-dir`` per run keeps runs independent of each other and of any
    desktop profile, so results do not depend on cached pages or a locked profile.
    """
    with tempfile.TemporaryDirectory(prefix="qdgs-chromium-") as profile:
        command = [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT)
        except subprocess.TimeoutExpired as err:
            raise RuntimeError(f"chromium took over {CHROMIUM_TIMEOUT} s on {url}: check that the "
                               "page loads in a browser and that no other chromium hogs the CPU") from err
    if done.returncode != 0:
        raise RuntimeError(f"chromium failed on {url} (exit {done.returncode}); its last output:\n"
                           f"{done.stderr[-2000:]}\nCheck `{CHROMIUM} --version` runs; reinstall "
                           "with `make browser` if it does not")
    return done.stdout


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the build folder without logging every request to the test output."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        pass


@contextlib.contextmanager
def serve(html_dir: Path) -> Iterator[str]:
    """Serve ``html_dir`` on 127.0.0.1 (a free port) for the duration; yield its base URL.

    Pages are served over HTTP rather than opened as ``file://`` so that scripts, fetches and
    relative URLs behave as they will on GitHub Pages.
    """
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- which pages, in which order -------------------------------------------------------------


def _require_html(html_dir: Path) -> Path:
    html_dir = Path(html_dir)
    if not (html_dir / "index.html").is_file():
        raise FileNotFoundError(f"no built book at {html_dir} (index.html missing): "
                                "run `make book` (or `make book PROFILE=smoke`) first")
    return html_dir


def _soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8", errors="replace"), "html.parser")


def redirect_target(html_dir: Path, page: str) -> str | None:
    """Where a redirect stub (a ``<meta http-equiv="refresh">`` page) sends the reader, or None."""
    refresh = _soup(html_dir / page).find("meta", attrs={"http-equiv": re.compile("refresh", re.I)})
    match = re.search(r"url=(.+)", refresh.get("content", ""), re.I) if refresh else None
    return _local_path(match.group(1).strip().strip("'\""), page) if match else None


def root_page(html_dir: Path) -> str:
    """The book's first page: Jupyter Book's ``index.html`` only redirects to it."""
    return redirect_target(html_dir, "index.html") or "index.html"


def reading_order(html_dir: Path) -> list[str]:
    """The book's pages in ``_toc.yml`` order, as paths relative to ``html_dir``.

    Sphinx links every page to the next one in the table of contents (the theme's "next"
    button), so following those links from the root page gives exactly the reader's order.
    """
    html_dir = _require_html(html_dir)
    pages = [root_page(html_dir)]
    while True:
        nxt = _soup(html_dir / pages[-1]).select_one("a.right-next[href]")
        target = _local_path(nxt["href"], pages[-1]) if nxt else None
        if target is None or target in pages or not (html_dir / target).is_file():
            return pages
        pages.append(target)


def all_pages(html_dir: Path) -> list[str]:
    """Every HTML page a reader can reach: the reading order first, then index, search and
    the like; Sphinx's own folders (``_static``, ``_sources``...) are assets, not pages."""
    ordered = reading_order(html_dir)
    others = sorted(p.relative_to(html_dir).as_posix() for p in html_dir.rglob("*.html")
                    if not any(part.startswith("_") for part in p.relative_to(html_dir).parts))
    return ordered + [p for p in others if p not in ordered]


def broken_redirects(html_dir: Path, pages: list[str]) -> list[Problem]:
    """Redirect stubs whose target is not in the build (chromium would follow them elsewhere)."""
    return [Problem(page, "broken link", f"redirects to {target}, which does not exist")
            for page in pages if (target := redirect_target(html_dir, page)) and not (html_dir / target).is_file()]


# --- what counts as a fault ------------------------------------------------------------------

_BASE = "http://book.invalid/"


def _local_path(url: str, page: str) -> str | None:
    """The build-relative path that ``url`` on ``page`` points at, or None when it leaves the book."""
    parts = urlsplit(urljoin(_BASE + page, url))
    if parts.scheme != "http" or parts.netloc != "book.invalid":
        return None
    path = unquote(parts.path).lstrip("/")
    return path + "index.html" if path == "" or path.endswith("/") else path


def _normalise(url: str, base_url: str) -> str:
    """Rendered pages may hold absolute URLs of the local server; make them build-relative."""
    return "/" + url[len(base_url):] if url.startswith(base_url) else url


def error_outputs(soup: BeautifulSoup, page: str) -> list[Problem]:
    """Cells that raised: myst-nb renders them with the ``output traceback`` classes."""
    found = [Problem(page, "error output", el.get_text(" ", strip=True)[:200])
             for el in soup.select(".output.traceback")]
    if not found and "Traceback (most recent call last)" in soup.get_text():
        found.append(Problem(page, "error output", "the page shows a Python traceback"))
    return found


def missing_images(soup: BeautifulSoup, page: str, html_dir: Path, base_url: str) -> list[Problem]:
    """Images the reader would see as broken: not in the build, outside it, or empty data URIs."""
    problems = []
    for img in soup.find_all("img"):
        src = _normalise(img.get("src", "").strip(), base_url)
        if src.startswith("data:"):
            if not src.partition(",")[2].strip():
                problems.append(Problem(page, "missing image", "an empty data: URI"))
            continue
        target = _local_path(src, page) if src else None
        if target is None or not (html_dir / target).is_file():
            problems.append(Problem(page, "missing image", f"{src or '(no src)'} is not a file in the build"))
    return problems


def broken_links(soup: BeautifulSoup, page: str, html_dir: Path, base_url: str,
                 ids_of: Callable[[str], set[str]]) -> list[Problem]:
    """Links inside the book to a page that does not exist, or to an anchor the page lacks."""
    problems = []
    for a in soup.find_all("a", href=True):
        href = _normalise(a["href"].strip(), base_url)
        target = _local_path(href, page)
        if target is None:
            continue  # mailto:, javascript:, and other sites: not ours to check offline
        fragment = unquote(urlsplit(href).fragment)
        if not (html_dir / target).is_file():
            problems.append(Problem(page, "broken link", f"{href} -> {target} does not exist"))
        elif fragment and target.endswith(".html") and fragment not in ids_of(target):
            problems.append(Problem(page, "broken link", f"{href}: no #{fragment} on {target}"))
    return problems


def _ids(soup: BeautifulSoup) -> set[str]:
    return {el["id"] for el in soup.find_all(id=True)} | {el["name"] for el in soup.find_all("a", attrs={"name": True})}


def page_problems(dom: str, page: str, html_dir: Path, base_url: str,
                  ids_of: Callable[[str], set[str]]) -> list[Problem]:
    """Every fault on one rendered page."""
    soup = BeautifulSoup(dom, "html.parser")
    return (error_outputs(soup, page) + missing_images(soup, page, html_dir, base_url)
            + broken_links(soup, page, html_dir, base_url, ids_of))


# --- the check -------------------------------------------------------------------------------


def _screenshot_name(page: str) -> str:
    return page.removesuffix(".html").replace("/", "__") + ".png"


def render_pages(html_dir: Path, base_url: str, pages: list[str], screenshots_dir: Path | None,
                 screenshot_pages: set[str]) -> dict[str, str]:
    """Each page's DOM after chromium ran its scripts (and a 1280-wide screenshot of some)."""
    doms = {}
    for page in pages:
        args = ["--dump-dom", "--virtual-time-budget=3000"]
        if screenshots_dir is not None and page in screenshot_pages:
            args += [f"--screenshot={screenshots_dir / _screenshot_name(page)}", "--window-size=1280,2000"]
        doms[page] = run_chromium(base_url + page, *args)
    return doms


def check_pages(html_dir: Path = HTML_DIR, screenshots_dir: Path | None = None) -> list[Path]:
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
    html_dir = _require_html(Path(html_dir)).resolve()
    main_pages = reading_order(html_dir)
    if screenshots_dir is not None:
        Path(screenshots_dir).mkdir(parents=True, exist_ok=True)
    pages = all_pages(html_dir)
    stubs = [page for page in pages if redirect_target(html_dir, page)]
    with serve(html_dir) as base_url:
        doms = render_pages(html_dir, base_url, [p for p in pages if p not in stubs], screenshots_dir,
                            set(main_pages))

    @functools.cache
    def ids_of(page: str) -> set[str]:
        return _ids(BeautifulSoup(doms[page], "html.parser") if page in doms else _soup(html_dir / page))

    problems = broken_redirects(html_dir, stubs) + [
        p for page, dom in doms.items() for p in page_problems(dom, page, html_dir, base_url, ids_of)]
    if problems:
        raise BookCheckError(problems)
    return [] if screenshots_dir is None else [Path(screenshots_dir) / _screenshot_name(p) for p in main_pages]


# --- PDF -------------------------------------------------------------------------------------

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
    soup = _soup(html_dir / page)
    article = soup.select_one("article.bd-article") or soup.select_one("[role=main]") or soup.body
    slug = _slug(page)
    for script in article.find_all("script"):
        script.decompose()
    for el in article.find_all(id=True):
        el["id"] = f"{slug}--{el['id']}"
    for el in article.find_all(["a", "img"]):
        attr = "href" if el.name == "a" else "src"
        target = _local_path(el[attr], page) if el.get(attr) else None
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
    head = _soup(html_dir / pages[0]).head
    head_items = []
    for link in head.find_all("link", rel="stylesheet"):
        href = _local_path(link.get("href", ""), pages[0])
        if href:
            head_items.append(f'<link rel="stylesheet" href="{href}">')
    head_items += [str(style) for style in head.find_all("style")]
    for script in head.find_all("script"):
        if "mathjax" in (script.get("src", "") + script.get_text()).lower():
            if script.get("src"):
                script["src"] = _local_path(script["src"], pages[0]) or script["src"]
            head_items.append(str(script))
    body = "\n".join(_chapter_section(html_dir, page, set(pages)) for page in pages)
    title = head.title.get_text() if head.title else "book"
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"{''.join(head_items)}<style>{_PRINT_CSS}</style></head><body>"
            f"<main class='bd-main'><div class='bd-content'><article class='bd-article'>{body}"
            "</article></div></main></body></html>")


def make_pdf(html_dir: Path = HTML_DIR, pdf_path: Path = ROOT / "_build" / "qdgs-book.pdf") -> Path:
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
    html_dir = _require_html(Path(html_dir)).resolve()
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


# --- GitHub Pages ----------------------------------------------------------------------------


def push_pages(html_dir: Path = HTML_DIR, remote: str = "origin", branch: str = "gh-pages",
               repo: Path = ROOT) -> None:
    """Replace ``branch`` of ``remote`` with the built HTML, as Jupyter Book documents.

    ``ghp-import -n -p -f`` writes a ``.nojekyll`` (GitHub's Jekyll would hide ``_static``),
    commits the folder as the whole branch and force-pushes it, so the branch holds the latest
    build and nothing else.
    """
    html_dir = _require_html(Path(html_dir))
    known = subprocess.run(["git", "remote", "get-url", remote], cwd=repo, capture_output=True, text=True)
    if known.returncode != 0:
        raise RuntimeError(f"git remote '{remote}' is not configured in {repo}: add it "
                           f"(git remote add {remote} URL) or pass another, e.g. make publish REMOTE=name")
    ghp_import = Path(sys.executable).with_name("ghp-import")
    done = subprocess.run([str(ghp_import), "-n", "-p", "-f", "-r", remote, "-b", branch, str(html_dir)],
                          cwd=repo, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ghp-import could not push to {remote}/{branch}:\n{done.stderr.strip()}\n"
                           "Check that you may push to that remote (git push works) and retry")


# --- README results --------------------------------------------------------------------------


def _format(value: Any) -> str:
    """A cell value for a table: 3 significant digits for reals (whole numbers from 1,000 on,
    never scientific notation), Markdown-safe text otherwise."""
    if isinstance(value, float) and math.isfinite(value):
        text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _backends(meta: dict[str, Any]) -> str:
    backends = meta.get("backends") or {k: meta[k] for k in ("generator", "scorer") if k in meta}
    if isinstance(backends, dict):
        return ", ".join(f"{k}: {v}" for k, v in backends.items())
    if isinstance(backends, (list, tuple)):
        return ", ".join(map(str, backends))
    return str(backends) or "not recorded"


def _summary(table: Any, max_rows: int = 4) -> str:
    """A chapter's table in one cell: a row per line, ``first column: other=value, ...``."""
    rows = []
    for record in table.to_dict("records")[:max_rows]:
        (_, first), *rest = record.items()
        rows.append(f"**{_format(first)}**: " + ", ".join(f"{k} {_format(v)}" for k, v in rest))
    if len(table) > max_rows:
        rows.append(f"… {len(table) - max_rows} more rows in the chapter")
    return "<br>".join(rows) or "(empty table)"


def _load(chapter: str, results_dir: Path) -> Any:
    """``qdgs.results.load`` reading ``results_dir`` (it reads ``$QDGS_RESULTS``), or None."""
    from qdgs import results

    saved = os.environ.get("QDGS_RESULTS")
    os.environ["QDGS_RESULTS"] = str(results_dir)
    try:
        return results.load(chapter)
    except FileNotFoundError:
        return None
    finally:
        if saved is None:
            del os.environ["QDGS_RESULTS"]
        else:
            os.environ["QDGS_RESULTS"] = saved


def readme_results(results_dir: Path) -> str:
    """The README's "Results at a glance" table, from the results each chapter recorded.

    Every line says which profile and backends produced it, so a number from a smoke run is
    never mistaken for the paper's; a chapter without results says how to produce them.

    Args:
        results_dir: where the chapters recorded their results (``_build/results``).

    Returns:
        Markdown: a heading-less table, one row per paper claim a chapter recorded (its headline
        rows when it recorded none), and where it came from.
    """
    lines = ["| Chapter | Paper's claim | Paper | Ours | Holds | Run |", "|---|---|---|---|---|---|"]
    for chapter, (title, notebook) in CHAPTERS.items():
        recorded = _load(chapter, Path(results_dir))
        if recorded is None:
            lines.append(f"| {title} | — | — | no results yet: run `make chapter NB={notebook[:2]}` or "
                         "`make book` | — | — |")
            continue
        table, meta = recorded
        run = _format(f"{meta.get('profile', 'profile not recorded')}; {_backends(meta)}")
        rows = [(_format(c["claim"]), _format(c["paper"]), _format(c["ours"]),
                 {True: "yes", False: "no", None: "not resolved"}.get(c.get("holds"), _format(c.get("holds"))))
                for c in meta.get("claims") or []] or [("—", "—", _summary(table), "—")]
        lines += [f"| {title} | {' | '.join(cells)} | {run} |" for cells in rows]
    lines.append("")
    lines.append(f"_Generated by `make readme-results` from `{Path(results_dir).name}/` on "
                 f"{time.strftime('%Y-%m-%d')}; the book's chapters show the full tables and figures._")
    return "\n".join(lines)


def update_readme(readme: Path, block: str) -> bool:
    """Put ``block`` between the README's results markers; return whether the file changed."""
    text = Path(readme).read_text(encoding="utf-8")
    start, end = README_MARKERS
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"{readme} needs one '{start}' line followed by one '{end}' line where the "
                         "results table goes: add them (e.g. under '## Results at a glance') and rerun")
    head, rest = text.split(start)
    new = f"{head}{start}\n{block}\n{end}{rest.split(end, 1)[1]}"
    if new != text:
        Path(readme).write_text(new, encoding="utf-8")
    return new != text


# --- command line ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qdgs.publish", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in [("check", "render every page in chromium; fail on errors, missing images, broken links"),
                            ("pdf", "print the book to one PDF"),
                            ("push", "check, then push the HTML to the gh-pages branch")]:
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--html", type=Path, default=HTML_DIR, help="the built HTML folder")
    sub.choices["check"].add_argument("--screenshots", type=Path, default=ROOT / "_build" / "screenshots")
    sub.choices["push"].add_argument("--screenshots", type=Path, default=ROOT / "_build" / "screenshots")
    sub.choices["push"].add_argument("--remote", default="origin")
    sub.choices["push"].add_argument("--branch", default="gh-pages")
    sub.choices["pdf"].add_argument("--out", type=Path, default=ROOT / "_build" / "qdgs-book.pdf")
    readme = sub.add_parser("readme", help="rewrite the README's results table")
    readme.add_argument("--results", type=Path, default=ROOT / "_build" / "results")
    readme.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args(argv)
    try:
        if args.command in ("check", "push"):
            start = time.perf_counter()
            shots = check_pages(args.html, args.screenshots)
            print(f"[qdgs] {len(all_pages(args.html))} pages checked in {time.perf_counter() - start:.0f} s; "
                  f"screenshots: {', '.join(map(str, shots))}")
        if args.command == "push":
            push_pages(args.html, args.remote, args.branch)
            print(f"[qdgs] pushed {args.html} to {args.remote}/{args.branch}")
        elif args.command == "pdf":
            print(make_pdf(args.html, args.out))
        elif args.command == "readme":
            changed = update_readme(args.readme, readme_results(args.results))
            print(f"[qdgs] {args.readme} {'updated' if changed else 'already up to date'}")
    except (BookCheckError, FileNotFoundError, RuntimeError, ValueError) as err:
        print(f"qdgs.publish: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
