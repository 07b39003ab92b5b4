"""Each chapter's results table, written by its notebook and read by later chapters and the README.

Numbers in the book are never typed in: a notebook computes them, records them here, and the
Results chapter and the README table read them back, together with the profile and backends
that produced them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from qdgs.cache import atomic_write, cache_root


class Recorded(NamedTuple):
    """A chapter's results table and its metadata (profile, backends, times, paths)."""

    table: pd.DataFrame
    meta: dict[str, Any]


def results_root() -> Path:
    """Where results tables live (``$QDGS_RESULTS``; ``make book`` points it into the build)."""
    return Path(os.environ.get("QDGS_RESULTS", cache_root().parent / "results")).expanduser()


def record(chapter: str, table: pd.DataFrame, **meta: Any) -> Path:
    """Write a chapter's results table (CSV) and metadata (JSON) atomically; return the JSON path."""
    root = results_root()
    with atomic_write(root / f"{chapter}.csv", "w") as f:
        table.to_csv(f, index=False)
    with atomic_write(root / f"{chapter}.json", "w") as f:
        json.dump({"chapter": chapter, **meta}, f, indent=1, default=str)
    return root / f"{chapter}.json"


def load(chapter: str) -> Recorded:
    """Read a chapter's results, or say which notebook to run first."""
    root = results_root()
    if not (root / f"{chapter}.json").exists():
        raise FileNotFoundError(
            f"no results for chapter '{chapter}' in {root}: run its notebook first "
            f"(make book, or make chapter NB=...), or set QDGS_RESULTS to where they are"
        )
    meta = json.loads((root / f"{chapter}.json").read_text())
    return Recorded(pd.read_csv(root / f"{chapter}.csv"), meta)


CHAPTERS = ("shapes", "faces", "recognition")


def claims_table(chapters: tuple[str, ...] = CHAPTERS) -> pd.DataFrame:
    """Every paper claim beside our number, gathered from the chapters' recorded ``claims``.

    A chapter records ``claims=[{"claim": ..., "paper": ..., "ours": ..., "holds": bool | None,
    "note": ...}]`` in its metadata; a chapter not run in this build contributes one row saying so.
    """
    rows = []
    for chapter in chapters:
        try:
            meta = load(chapter).meta
        except FileNotFoundError:
            rows.append({"chapter": chapter, "claim": "(chapter not run in this build)", "paper": "",
                         "ours": "", "holds": None, "profile": "", "note": ""})
            continue
        for claim in meta.get("claims", []):
            rows.append({"chapter": chapter, **claim, "profile": meta.get("profile", "")})
    return pd.DataFrame(rows, columns=["chapter", "claim", "paper", "ours", "holds", "profile", "note"])


def run_times() -> pd.DataFrame:
    """Wall time of each notebook on each profile: its latest run and, when repeated, the one before.

    With unchanged parameters a repeat reuses the cached models and archives, so the two columns
    show a cold and a warm run (``qdgs.cli`` writes the history to ``runs.json``).
    """
    path = results_root() / "runs.json"
    runs = json.loads(path.read_text()) if path.exists() else {}
    rows = [{"notebook": stem, "profile": profile, "latest (min)": round(history[-1]["seconds"] / 60, 2),
             "previous (min)": round(history[-2]["seconds"] / 60, 2) if len(history) > 1 else None,
             "runs": len(history), "finished": history[-1]["finished"]}
            for profile, stems in runs.items() for stem, history in stems.items()]
    return pd.DataFrame(rows, columns=["notebook", "profile", "latest (min)", "previous (min)", "runs", "finished"])
