"""Command line: run one chapter with overrides, or execute every chapter and build the book.

    qdgs run 01_shapes_debiasing --profile smoke -p iterations=200
    qdgs book --profile default

Notebooks are executed by papermill into a staging copy of the book (``_build/book``), never
over the sources, and the book is built from there with ``jupyter-book build -W``: a failing
cell fails the build, and no stale output is ever published. Both commands record the chapters'
results into ``_build/results``, where the Results chapter and ``make readme-results`` read them.
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from qdgs import preflight
from qdgs.cache import atomic_write
from qdgs.params import PROFILES, Param, ParameterError, check_profile
from qdgs.profiles import spec_for_notebook
from qdgs.project import build_dir, environment, project_root, results_dir, toc_notebooks
from qdgs.results import results_root

BOOK_SOURCES = ("_config.yml", "_toc.yml", "book", "notebooks")
#: Python types of papermill's inferred type names: the fallback for a notebook without a spec.
PAPERMILL_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "tuple": tuple,
                   "dict": dict}


def _notebook_path(name: str, root: Path) -> Path:
    """A notebook by path, stem or number prefix (``01``)."""
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


def chapter_spec(notebook: Path) -> list[Param]:
    """The parameter spec of a chapter's notebook (:mod:`qdgs.profiles`); empty for others."""
    found = spec_for_notebook(notebook.stem)
    return list(found.params) if found else []


def check_overrides(notebook: Path, params: dict[str, Any], spec: Sequence[Param] = ()) -> None:
    """Refuse parameters the notebook does not declare, or values its spec would refuse.

    A parameter of ``spec`` is checked by :meth:`qdgs.params.Param.check`, as the notebook itself
    will check it (type, choices, range); ``None`` stands for the profile's value. A parameter the
    spec lacks (a notebook without one, or ``profile``) is checked against the type papermill
    reads from the parameters cell, by the same rules.
    """
    import papermill as pm  # a `book` extra: only running notebooks needs it

    declared = pm.inspect_notebook(str(notebook))
    known = {p.name: p for p in spec}
    for name, value in params.items():
        if name not in declared:
            raise ParameterError(f"{notebook.stem} has no parameter '{name}'; its parameters: "
                                 f"{', '.join(declared)}")
        type_name = (declared[name].get("inferred_type_name") or "").replace("None", "").strip(" |")
        inferred = PAPERMILL_TYPES.get(type_name.split("[")[0])
        param = known.get(name) or (Param(name, inferred, None) if inferred else None)
        if value is not None and param is not None:
            param.check(value)
    if "profile" in params:
        check_profile(params["profile"])


def run_notebook(name: str, profile: str, params: dict[str, Any] | None = None, out_dir: Path | None = None,
                 root: Path | None = None, results: Path | None = None) -> Path:
    """Execute one notebook with papermill; return the executed copy's path.

    The executed copy is written under a temporary name and moved into place only when every
    cell succeeded, so a failed run never leaves an output that looks complete.

    Args:
        name: the notebook (path, stem or number prefix).
        profile: the profile it runs on.
        params: parameter overrides.
        out_dir: where the executed copy goes (default ``<root>/_build/runs``).
        root: the project (default: found from the working directory).
        results: where the notebook records its results (default :func:`qdgs.results.results_root`).
    """
    check_profile(profile)
    root = root or project_root()
    notebook = _notebook_path(name, root)
    params = {"profile": profile, **(params or {})}
    check_overrides(notebook, params, chapter_spec(notebook))
    preflight.check([(notebook.stem, profile, params)])
    import papermill as pm  # a `book` extra: only running notebooks needs it

    results = Path(results or results_root())
    _note_ignored_results(results)
    out_dir = Path(out_dir or build_dir(root) / "runs")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / notebook.name
    tmp = out_dir / f".{notebook.stem}.running.ipynb"
    start = time.perf_counter()
    # The kernel inherits the environment: where to record, and no progress bars in stored outputs.
    with environment(QDGS_RESULTS=str(results), QDGS_PROGRESS="0"):
        try:
            pm.execute_notebook(str(notebook), str(tmp), parameters=params, cwd=str(notebook.parent),
                                kernel_name="python3", progress_bar=False, log_output=False)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    _log_run(results, notebook.stem, profile, params, time.perf_counter() - start)
    return target


def _log_run(results: Path, stem: str, profile: str, params: dict, seconds: float) -> None:
    """Append this run's wall time to the notebook's history on this profile (``runs.json``)."""
    path = results / "runs.json"
    runs = json.loads(path.read_text()) if path.exists() else {}
    history = runs.setdefault(profile, {}).setdefault(stem, [])
    history.append({"params": params, "seconds": round(seconds, 1), "finished": time.strftime("%Y-%m-%d %H:%M")})
    del history[:-5]  # the latest five runs: the first of a build tells cold, a repeat tells warm
    with atomic_write(path, "w") as f:
        json.dump(runs, f, indent=1, default=str)


def stage_book(root: Path, build: Path | None = None) -> Path:
    """Copy the book's sources into a fresh staging folder (``<build>/book``) and return it."""
    stage = Path(build or build_dir(root)) / "book"
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


def repository_url(root: Path) -> str | None:
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
    import mathjax  # the PyPI package django-static-mathjax (a `book` extra): MathJax's own release files

    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    fonts = Path("output") / "chtml" / "fonts" / "woff-v2"
    target.mkdir(parents=True)
    shutil.copy2(es5 / "tex-chtml.js", target / "tex-chtml.js")
    shutil.copytree(es5 / fonts, target / fonts)


def execute_chapter(chapter: str, profile: str, stage: Path, params: dict[str, Any] | None = None,
                    root: Path | None = None) -> Path:
    """Execute one chapter of ``_toc.yml`` over its copy in the staging folder.

    Its results go to the build's results folder (``<stage>/../results``), whatever
    ``$QDGS_RESULTS`` says: the build's Results chapter and the README table read them there.
    """
    root = root or project_root()
    print(f"[qdgs] executing {chapter} on profile '{profile}'", flush=True)
    return run_notebook(str(root / f"{chapter}.ipynb"), profile, params, out_dir=stage / Path(chapter).parent,
                        root=root, results=results_dir(stage.parent))


def execute_book(profile: str, root: Path, build: Path,
                 overrides: dict[str, dict[str, Any]] | None = None) -> Path:
    """Check every chapter's weights (:mod:`qdgs.preflight`), stage the book into ``build`` and execute every
    chapter there, in reading order; return the stage."""
    check_profile(profile)
    runs = [(chapter, book_profile(chapter, profile), (overrides or {}).get(Path(chapter).name, {}))
            for chapter in toc_notebooks(root)]
    preflight.check([(Path(chapter).name, run_profile, params) for chapter, run_profile, params in runs])
    stage = stage_book(root, build)
    for chapter, run_profile, params in runs:
        execute_chapter(chapter, run_profile, stage, params, root)
    return stage


def book_profile(chapter: str, profile: str) -> str:
    """The profile a book build on ``profile`` runs ``chapter`` on, saying so when it differs.

    A chapter without a version for ``profile`` (the classroom tour has no paper version) runs on
    its largest one, and the build prints that, as the chapter's own text and recorded profile do.
    """
    spec = spec_for_notebook(Path(chapter).name)
    if spec is None or profile in spec.profiles:
        return profile
    print(f"[qdgs] {chapter} has no '{profile}' version: executing it on '{spec.profiles[-1]}'", flush=True)
    return spec.profiles[-1]


def render_book(stage: Path) -> Path:
    """Build the HTML with ``jupyter-book build -W -n``: any warning fails; return the HTML folder."""
    subprocess.run([str(Path(sys.executable).with_name("jupyter-book")), "build", str(stage), "-W", "-n", "--keep-going"],
                   check=True)
    return stage / "_build" / "html"


def build_book(profile: str, root: Path | None = None, build: Path | None = None,
               overrides: dict[str, dict[str, Any]] | None = None) -> Path:
    """Execute every chapter on ``profile`` into a staging copy and build the HTML book.

    Args:
        profile: the profile every notebook runs on.
        root: the project (default: found from the working directory).
        build: where the staging copy, the results and the HTML go (default ``<root>/_build``).
        overrides: extra parameters per notebook stem.

    Returns:
        The directory of the built HTML.
    """
    root = root or project_root()
    return render_book(execute_book(profile, root, Path(build or build_dir(root)), overrides))


def _note_ignored_results(target: Path) -> None:
    """Say so when an exported ``$QDGS_RESULTS`` points elsewhere than where this run records.

    The commands record into the build's results folder so that the Results chapter and
    ``make readme-results`` find them; a value exported for other work must not move them silently.
    """
    exported = os.environ.get("QDGS_RESULTS")
    if exported and Path(exported).expanduser().resolve() != Path(target).resolve():
        print(f"[qdgs] note: QDGS_RESULTS={exported} is not used by this command: results go to {target}, "
              "where the Results chapter and `make readme-results` read them", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qdgs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=None,
                        help="the project (the folder holding _toc.yml); default: found from the working directory")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute one notebook with papermill")
    run.add_argument("notebook", help="a notebook name such as 01_shapes_debiasing (a prefix like 01 works)")
    run.add_argument("--profile", default="default", help=f"one of {', '.join(PROFILES)}")
    run.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                     help="override a parameter (repeatable); values parse as Python literals")
    run.add_argument("--out", type=Path, default=None, help="folder for the executed notebook")
    run.add_argument("--results", type=Path, default=None, help="folder for its results (default _build/results)")
    book = sub.add_parser("book", help="execute every chapter and build the HTML book")
    book.add_argument("--profile", default="default", help=f"one of {', '.join(PROFILES)}")
    args = parser.parse_args(argv)
    try:
        root = args.root or project_root()
    except FileNotFoundError as err:
        print(f"qdgs: error: {err}", file=sys.stderr)
        return 2
    try:
        if args.command == "run":
            params = {}
            for item in args.param:
                if "=" not in item:
                    raise ParameterError(f"-p expects NAME=VALUE, got {item!r}")
                key, value = item.split("=", 1)
                params[key.strip()] = parse_value(value)
            results = args.results or results_dir(build_dir(root))
            print(run_notebook(args.notebook, args.profile, params, args.out, root, results))
        else:
            print(build_book(args.profile, root))
    except (ParameterError, preflight.MissingWeights) as err:
        print(f"qdgs: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
