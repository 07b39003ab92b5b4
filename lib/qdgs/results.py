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
