"""Command line: run one chapter with overrides, or execute every chapter and build the book.

    qdgs run 01_shapes_debiasing --profile smoke -p iterations=200
    qdgs book --profile default

Notebooks are executed by papermill into a staging copy of the book (``_build/book``), never
over the sources, and the book is built from there with ``jupyter-book build -W``: a failing
cell fails the build, and no stale output is ever published.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from qdgs.cache import atomic_write
from qdgs.params import PROFILES, ParameterError, check_profile

ROOT = Path(__file__).resolve().parents[2]
BOOK_SOURCES = ("_config.yml", "_toc.yml", "book", "notebooks")
_TYPES = {"int": int, "float": (int, float), "str": str, "bool": bool, "list": (list, tuple),
          "tuple": (list, tuple), "dict": dict}


def _notebook_path(name: str, root: Path = ROOT) -> Path:
    candidates = [root / name, root / "notebooks" / name, root / "notebooks" / f"{name}.ipynb",
                  root / "book" / f"{name}.ipynb"]
    if "/" not in name:
        candidates += sorted((root / "notebooks").glob(f"{name}*.ipynb"))
    for path in candidates:
        if path.is_file() and path.suffix == ".ipynb":
            return path
    known = ", ".join(sorted(p.stem for p in (root / "notebooks").glob("*.ipynb")))
    raise ParameterError(f"unknown notebook '{name}'; known notebooks: {known}")


def parse_value(text: str) -> Any:
    """A command-line value as Python: numbers, lists, None and booleans parse; the rest is a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def check_overrides(notebook: Path, params: dict[str, Any]) -> None:
    """Refuse parameters the notebook does not declare, or of another type than it declares."""
    import papermill as pm

    declared = pm.inspect_notebook(str(notebook))
    for name, value in params.items():
        if name not in declared:
            raise ParameterError(f"{notebook.stem} has no parameter '{name}'; its parameters: "
                                 f"{', '.join(declared)}")
        type_name = (declared[name].get("inferred_type_name") or "").replace("None", "").strip(" |")
        expected = _TYPES.get(type_name.split("[")[0])
        if value is not None and expected is not None and not isinstance(value, expected):
            raise ParameterError(f"parameter '{name}' of {notebook.stem} must be {type_name}, got {value!r}")
    if "profile" in params:
        check_profile(params["profile"])


def run_notebook(name: str, profile: str, params: dict[str, Any] | None = None,
                 out_dir: Path | None = None, root: Path = ROOT) -> Path:
    """Execute one notebook with papermill; return the executed copy's path.

    The executed copy is written under a temporary name and moved into place only when every
    cell succeeded, so a failed run never leaves an output that looks complete.
    """
    check_profile(profile)
    notebook = _notebook_path(name, root)
    params = {"profile": profile, **(params or {})}
    check_overrides(notebook, params)
    import papermill as pm

    out_dir = Path(out_dir or root / "_build" / "runs")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / notebook.name
    tmp = out_dir / f".{notebook.stem}.running.ipynb"
    start = time.perf_counter()
    os.environ.setdefault("QDGS_PROGRESS", "0")  # the kernel inherits it: no progress bars in stored outputs
    try:
        pm.execute_notebook(str(notebook), str(tmp), parameters=params, cwd=str(notebook.parent),
                            kernel_name="python3", progress_bar=False, log_output=False)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _log_run(notebook.stem, profile, params, time.perf_counter() - start)
    return target


def _log_run(stem: str, profile: str, params: dict, seconds: float) -> None:
    """Append this run's wall time to the notebook's history on this profile (``runs.json``)."""
    from qdgs.results import results_root

    path = results_root() / "runs.json"
    runs = json.loads(path.read_text()) if path.exists() else {}
    history = runs.setdefault(profile, {}).setdefault(stem, [])
    history.append({"params": params, "seconds": round(seconds, 1), "finished": time.strftime("%Y-%m-%d %H:%M")})
    del history[:-5]  # the latest five runs: the first of a build tells cold, a repeat tells warm
    with atomic_write(path, "w") as f:
        json.dump(runs, f, indent=1, default=str)


def toc_notebooks(root: Path = ROOT) -> list[str]:
    """The book's executable chapters (``.ipynb`` files named in ``_toc.yml``), in reading order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return [f for f in files if (root / f"{f}.ipynb").is_file()]


def stage_book(root: Path = ROOT, build_dir: Path | None = None) -> Path:
    """Copy the book's sources into a fresh staging folder (``<build_dir>/book``) and return it."""
    stage = Path(build_dir or root / "_build") / "book"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for item in BOOK_SOURCES:
        src = root / item
        if src.is_dir():
            shutil.copytree(src, stage / item, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_build"))
        elif src.is_file():
            shutil.copy2(src, stage / item)
    _vendor_mathjax(stage / "_static" / "mathjax")
    url = repository_url(root)
    if url:
        config = stage / "_config.yml"
        text = config.read_text()
        config.write_text(text.replace(f"  url: {yaml.safe_load(text)['repository']['url']}\n", f"  url: {url}\n", 1))
    return stage


def repository_url(root: Path = ROOT) -> str | None:
    """The GitHub page of this checkout's ``origin`` remote, so a fork's book links to the fork.

    ``$QDGS_REPOSITORY_URL`` wins; without either, ``_config.yml``'s URL stays (the project's home).
    """
    if os.environ.get("QDGS_REPOSITORY_URL"):
        return os.environ["QDGS_REPOSITORY_URL"]
    try:
        remote = subprocess.run(["git", "-C", str(root), "remote", "get-url", "origin"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    for prefix in ("git@github.com:", "https://github.com/", "ssh://git@github.com/"):
        if remote.startswith(prefix):
            return "https://github.com/" + remote[len(prefix):].removesuffix(".git")
    return None


def _vendor_mathjax(target: Path) -> None:
    """Serve MathJax 3 from the book itself, so formulas render offline, in the checks and in the PDF."""
    import mathjax  # the PyPI package django-static-mathjax: MathJax's own release files

    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    fonts = Path("output") / "chtml" / "fonts" / "woff-v2"
    target.mkdir(parents=True)
    shutil.copy2(es5 / "tex-chtml.js", target / "tex-chtml.js")
    shutil.copytree(es5 / fonts, target / fonts)


def execute_chapter(chapter: str, profile: str, stage: Path, params: dict[str, Any] | None = None,
                    root: Path = ROOT) -> Path:
    """Execute one chapter of ``_toc.yml`` over its copy in the staging folder."""
    print(f"[qdgs] executing {chapter} on profile '{profile}'", flush=True)
    return run_notebook(str(root / f"{chapter}.ipynb"), profile, params,
                        out_dir=stage / Path(chapter).parent, root=root)


def render_book(stage: Path) -> Path:
    """Build the HTML with ``jupyter-book build -W -n``: any warning fails; return the HTML folder."""
    subprocess.run([str(Path(sys.executable).with_name("jupyter-book")), "build", str(stage), "-W", "-n", "--keep-going"],
                   check=True)
    return stage / "_build" / "html"


def build_book(profile: str, root: Path = ROOT, build_dir: Path | None = None,
               overrides: dict[str, dict[str, Any]] | None = None) -> Path:
    """Execute every chapter on ``profile`` into a staging copy and build the HTML book.

    Args:
        profile: the profile every notebook runs on.
        root: the repository root.
        build_dir: where the staging copy and the HTML go (default ``<root>/_build``).
        overrides: extra parameters per notebook stem.

    Returns:
        The directory of the built HTML.
    """
    check_profile(profile)
    build_dir = Path(build_dir or root / "_build")
    stage = stage_book(root, build_dir)
    os.environ.setdefault("QDGS_RESULTS", str(build_dir / "results"))
    for chapter in toc_notebooks(root):
        execute_chapter(chapter, profile, stage, (overrides or {}).get(Path(chapter).name), root)
    return render_book(stage)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qdgs", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute one notebook with papermill")
    run.add_argument("notebook", help="a notebook name such as 01_shapes_debiasing (a prefix like 01 works)")
    run.add_argument("--profile", default="default", help=f"one of {', '.join(PROFILES)}")
    run.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                     help="override a parameter (repeatable); values parse as Python literals")
    run.add_argument("--out", type=Path, default=None, help="folder for the executed notebook")
    book = sub.add_parser("book", help="execute every chapter and build the HTML book")
    book.add_argument("--profile", default="default", help=f"one of {', '.join(PROFILES)}")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            params = {}
            for item in args.param:
                if "=" not in item:
                    raise ParameterError(f"-p expects NAME=VALUE, got {item!r}")
                key, value = item.split("=", 1)
                params[key.strip()] = parse_value(value)
            print(run_notebook(args.notebook, args.profile, params, args.out))
        else:
            print(build_book(args.profile))
    except ParameterError as err:
        print(f"qdgs: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
