"""The book project on disk: its root folder, its table of contents, where a build goes, and the
environment its notebooks run in.

The package may be installed anywhere (a wheel in site-packages as well as an editable checkout),
so the project is found from the working directory, as git finds its repository: the nearest
folder at or above it that holds ``_toc.yml``. Every command also takes the root explicitly.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

#: The file that marks a folder as the book project.
MARKER = "_toc.yml"


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) holding ``_toc.yml``.

    Raises:
        FileNotFoundError: no such folder; the message says where to run from.
    """
    start = Path(start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / MARKER).is_file():
            return folder
    raise FileNotFoundError(f"no book project (a folder holding {MARKER}) at or above {start}: run the "
                            "command inside the qdgs checkout, or pass --root PATH_OF_THE_CHECKOUT")


def build_dir(root: Path) -> Path:
    """Where ``make book`` stages, executes and renders the book (``<root>/_build``)."""
    return Path(root) / "_build"


def results_dir(build: Path) -> Path:
    """Where the chapters of a build record their results, and where the README table reads them."""
    return Path(build) / "results"


def html_dir(build: Path) -> Path:
    """The rendered HTML of a build."""
    return Path(build) / "book" / "_build" / "html"


def toc_files(root: Path) -> list[str]:
    """Every ``file:`` entry of ``_toc.yml`` (root page included), in reading order."""
    files: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            files.extend([node["file"]] if "file" in node else [])
            files.extend([node["root"]] if "root" in node else [])
            for key, value in node.items():
                if key not in ("file", "root"):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    toc = yaml.safe_load((Path(root) / MARKER).read_text())
    walk(toc)
    return files


def toc_notebooks(root: Path) -> list[str]:
    """The book's executable chapters (``.ipynb`` files named in ``_toc.yml``), in reading order."""
    return [f for f in toc_files(root) if (Path(root) / f"{f}.ipynb").is_file()]


@contextlib.contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set (or, with None, unset) environment variables for the block, then restore them.

    Notebooks inherit the environment of the process that starts their kernel, so this is how a
    run tells them where to record results, without leaving the setting behind.
    """
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            _set(k, v)
        yield
    finally:
        for k, v in old.items():
            _set(k, v)


def _set(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
