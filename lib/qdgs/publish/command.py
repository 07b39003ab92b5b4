"""``python -m qdgs.publish``: check, print, push the built book, or refresh the README's results."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from qdgs.project import build_dir, html_dir, project_root, results_dir
from qdgs.publish.browser import BookCheckError, check_pages
from qdgs.publish.pages import push_pages
from qdgs.publish.pdf import make_pdf
from qdgs.publish.readme import readme_results, update_readme
from qdgs.publish.site import all_pages

USAGE = """
    python -m qdgs.publish check    # every page rendered by headless chromium; screenshots kept
    python -m qdgs.publish pdf      # the whole book, in reading order, as one PDF
    python -m qdgs.publish push     # check, then ghp-import the HTML to the gh-pages branch
    python -m qdgs.publish readme   # rewrite README's "Results at a glance" from recorded results

Paths default to the build of the project found at or above the working directory (--root).
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m qdgs.publish", usage=USAGE,
                                     description="Publish the built book, or refresh the README's results.")
    parser.add_argument("--root", type=Path, default=None,
                        help="the project (the folder holding _toc.yml); default: found from the working directory")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in [("check", "render every page in chromium; fail on errors, missing images, broken links"),
                            ("pdf", "print the book to one PDF"),
                            ("push", "check, then push the HTML to the gh-pages branch")]:
        sub.add_parser(name, help=help_text).add_argument("--html", type=Path, help="the built HTML folder")
    for name in ("check", "push"):
        sub.choices[name].add_argument("--screenshots", type=Path, help="default: _build/screenshots")
    sub.choices["push"].add_argument("--remote", default="origin")
    sub.choices["push"].add_argument("--branch", default="gh-pages")
    sub.choices["pdf"].add_argument("--out", type=Path, help="default: _build/qdgs-book.pdf")
    readme = sub.add_parser("readme", help="rewrite the README's results table")
    readme.add_argument("--results", type=Path, help="default: _build/results, where `qdgs book` records")
    readme.add_argument("--readme", type=Path, help="default: README.md of the project")
    return parser


def _run(args: argparse.Namespace) -> None:
    root = args.root or project_root()
    build = build_dir(root)
    if args.command in ("check", "push"):
        html = args.html or html_dir(build)
        start = time.perf_counter()
        shots = check_pages(html, args.screenshots or build / "screenshots")
        print(f"[qdgs] {len(all_pages(html))} pages checked in {time.perf_counter() - start:.0f} s; "
              f"screenshots: {', '.join(map(str, shots))}")
        if args.command == "push":
            push_pages(html, root, args.remote, args.branch)
            print(f"[qdgs] pushed {html} to {args.remote}/{args.branch}")
    elif args.command == "pdf":
        print(make_pdf(args.html or html_dir(build), args.out or build / "qdgs-book.pdf"))
    else:
        readme = args.readme or root / "README.md"
        changed = update_readme(readme, readme_results(args.results or results_dir(build)))
        print(f"[qdgs] {readme} {'updated' if changed else 'already up to date'}")


def main(argv: list[str] | None = None) -> int:
    """Run one publishing command; print one error line and return 1 when it fails as documented."""
    args = _parser().parse_args(argv)
    try:
        _run(args)
    except (BookCheckError, FileNotFoundError, RuntimeError, ValueError) as err:
        print(f"qdgs.publish: error: {err}", file=sys.stderr)
        return 1
    return 0
