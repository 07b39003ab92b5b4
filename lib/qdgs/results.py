"""Each chapter's results table, written by its notebook and read by later chapters and the README.

Numbers in the book are never typed in: a notebook computes them, records them here, and the
Results chapter and the README table read them back, together with the profile and backends
that produced them. Every chapter records the same metadata (:func:`record`), so a reader of
results needs no per-chapter case; :data:`CHAPTERS` is the one list of the book's chapters.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from qdgs.cache import atomic_write, cache_root


@dataclass(frozen=True)
class Chapter:
    """One executed chapter of the book.

    Args:
        name: the key its notebook records results under (``record(name, ...)``).
        title: the chapter's title, as the README's results table shows it.
        notebook: its notebook, relative to the project root, without ``.ipynb`` (as in ``_toc.yml``).
        claims: whether it sets the paper's claims beside ours (the README and the Results chapter
            list these chapters, and say so when one was not run).
    """

    name: str
    title: str
    notebook: str
    claims: bool = False

    @property
    def stem(self) -> str:
        """The notebook's file name without folder or suffix, e.g. ``01_shapes_debiasing``."""
        return Path(self.notebook).name


#: The chapters that record results, in the reading order of ``_toc.yml`` (a test holds them equal).
CHAPTERS: tuple[Chapter, ...] = (
    Chapter("shapes", "Shapes: debiasing a classifier", "notebooks/01_shapes_debiasing", claims=True),
    Chapter("faces", "Faces: synthesis", "notebooks/02_face_synthesis", claims=True),
    Chapter("recognition", "Faces: recognition", "notebooks/03_face_recognition", claims=True),
    Chapter("performance", "Speed and robustness", "notebooks/04_performance"),
    Chapter("tour", "A tour of the method", "notebooks/00_method_tour"),
)
#: The chapter that reads the others' results and records none; it is executed last.
RESULTS_CHAPTER = "book/results"


def chapter(name: str) -> Chapter:
    """The chapter recorded under ``name``, or an error listing the known ones."""
    for c in CHAPTERS:
        if c.name == name:
            return c
    raise KeyError(f"unknown chapter '{name}'; chapters: {', '.join(c.name for c in CHAPTERS)}")


@dataclass(frozen=True)
class Claim:
    """One of the paper's claims beside our number.

    Args:
        claim: the claim, in one sentence.
        paper: what the paper reports.
        ours: what this run measured, as text (numbers with their resolution).
        holds: True when our run shows the effect, False when it shows its absence, None when our
            run cannot tell (the difference is inside the noise, or our evaluators disagree).
        note: what differs from the paper's setting (profile, models, seeds).
    """

    claim: str
    paper: str
    ours: str
    holds: bool | None
    note: str = ""

    def __post_init__(self) -> None:
        if self.holds is not None and not isinstance(self.holds, (bool, np.bool_)):
            raise TypeError(f"Claim.holds must be True, False or None, got {self.holds!r}")
        if self.holds is not None:
            object.__setattr__(self, "holds", bool(self.holds))  # a numpy bool becomes JSON true/false


class Recorded(NamedTuple):
    """A chapter's results table and its metadata.

    ``meta`` holds ``chapter``, ``profile``, ``backends`` (role → model), ``seconds`` (part →
    wall seconds), ``claims`` (:class:`Claim` list) and whatever else the chapter recorded.
    """

    table: pd.DataFrame
    meta: dict[str, Any]


def results_root() -> Path:
    """Where results tables live (``$QDGS_RESULTS``; ``qdgs run`` and ``qdgs book`` set it for the
    notebooks they execute to the build's ``results`` folder)."""
    return Path(os.environ.get("QDGS_RESULTS", cache_root().parent / "results")).expanduser()


def _check_meta(chapter: str, profile: Any, backends: Any, seconds: Any, claims: Any) -> None:
    """Raise one TypeError naming the first field that does not have the shape every chapter records."""
    problems = []
    if not isinstance(profile, str):
        problems.append(f"profile must be a profile name, got {profile!r}")
    if not (isinstance(backends, Mapping) and all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in backends.items())):
        problems.append(f"backends must map each role to a model name, e.g. {{'generator': 'shapes-vae'}}, "
                        f"got {backends!r}")
    if not (isinstance(seconds, Mapping) and all(isinstance(k, str) and isinstance(v, (int, float))
                                                 and not isinstance(v, bool) for k, v in seconds.items())):
        problems.append(f"seconds must map each part of the run to its wall seconds, e.g. {{'total': 12.5}}, "
                        f"got {seconds!r}")
    if not (isinstance(claims, Sequence) and all(isinstance(c, Claim) for c in claims)):
        problems.append(f"claims must be a list of qdgs.results.Claim (empty when the chapter tests none), "
                        f"got {claims!r}")
    if problems:
        raise TypeError(f"results of chapter '{chapter}': {problems[0]}")


def record(chapter: str, table: pd.DataFrame, *, profile: str, backends: Mapping[str, str],
           seconds: Mapping[str, float], claims: Sequence[Claim], **extra: Any) -> Path:
    """Write a chapter's results table (CSV) and metadata (JSON) atomically; return the JSON path.

    Args:
        chapter: the chapter's name (:data:`CHAPTERS`).
        table: its headline numbers.
        profile: the profile that produced them.
        backends: which model played each role (``{"generator": ..., "scorer": ...}``).
        seconds: wall seconds of each part of the run (``{"search": 81.2, "total": 140.0}``).
        claims: the paper's claims beside ours (empty when the chapter tests none).
        **extra: anything else later chapters read (``datasets={...}``), JSON-serialisable.

    Raises:
        TypeError: when a field does not have the shape above.
    """
    _check_meta(chapter, profile, backends, seconds, claims)
    meta = {"chapter": chapter, "profile": profile, "backends": dict(backends),
            "seconds": {k: float(v) for k, v in seconds.items()}, "claims": [asdict(c) for c in claims], **extra}
    root = results_root()
    with atomic_write(root / f"{chapter}.csv", "w") as f:
        table.to_csv(f, index=False)
    with atomic_write(root / f"{chapter}.json", "w") as f:
        json.dump(meta, f, indent=1, default=str)
    return root / f"{chapter}.json"


def load(chapter: str, root: Path | None = None) -> Recorded:
    """Read a chapter's results from ``root`` (default :func:`results_root`), claims as :class:`Claim`.

    Raises:
        FileNotFoundError: the chapter has not been run; the message says what to run.
        ValueError: the results were written in another shape (an older ``qdgs``): rerun the chapter.
    """
    root = Path(root) if root is not None else results_root()
    path = root / f"{chapter}.json"
    if not path.exists():
        raise FileNotFoundError(
            f"no results for chapter '{chapter}' in {root}: run its notebook first "
            f"(make book, or make chapter NB=...), or set QDGS_RESULTS to where they are")
    meta = json.loads(path.read_text())
    try:
        claims = [Claim(**c) for c in meta.get("claims", ())]
        _check_meta(chapter, meta.get("profile"), meta.get("backends"), meta.get("seconds"), claims)
    except TypeError as err:
        raise ValueError(f"{path} does not hold results in the shape qdgs.results.record writes ({err}); "
                         f"rerun the chapter's notebook to rewrite them") from err
    return Recorded(pd.read_csv(root / f"{chapter}.csv"), {**meta, "claims": claims})


CLAIM_COLUMNS = ["chapter", "claim", "paper", "ours", "holds", "profile", "note"]


def claims_table(chapters: Sequence[Chapter] = CHAPTERS, root: Path | None = None) -> pd.DataFrame:
    """Every paper claim beside our number, gathered from the chapters' recorded ``claims``.

    A chapter that tests claims but was not run in this build contributes one row saying so. The
    ``chapter`` column holds the chapter's title, as the reader knows it.
    """
    rows = []
    for c in (c for c in chapters if c.claims):
        try:
            meta = load(c.name, root).meta
        except FileNotFoundError:
            rows.append({"chapter": c.title, "claim": "(chapter not run in this build)", "paper": "",
                         "ours": "", "holds": None, "profile": "", "note": ""})
            continue
        rows += [{"chapter": c.title, **asdict(claim), "profile": meta["profile"]} for claim in meta["claims"]]
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def run_times(root: Path | None = None) -> pd.DataFrame:
    """Wall time of each notebook on each profile: its latest run and, when repeated, the one before.

    With unchanged parameters a repeat reuses the cached models and archives, so the two columns
    show a cold and a warm run (``qdgs.cli`` writes the history to ``runs.json``).
    """
    path = (Path(root) if root is not None else results_root()) / "runs.json"
    runs = json.loads(path.read_text()) if path.exists() else {}
    rows = [{"notebook": stem, "profile": profile, "latest (min)": round(history[-1]["seconds"] / 60, 2),
             "previous (min)": round(history[-2]["seconds"] / 60, 2) if len(history) > 1 else None,
             "runs": len(history), "finished": history[-1]["finished"]}
            for profile, stems in runs.items() for stem, history in stems.items()]
    return pd.DataFrame(rows, columns=["notebook", "profile", "latest (min)", "previous (min)", "runs", "finished"])


__all__ = ["CHAPTERS", "RESULTS_CHAPTER", "Chapter", "Claim", "Recorded", "chapter", "claims_table", "load",
           "record", "results_root", "run_times"]
