"""Progress bars for long loops: shown in notebooks and terminals, silenced by ``QDGS_PROGRESS=0``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from tqdm import tqdm


def progress(iterable: Iterable | None = None, *, enabled: bool = True, **kwargs) -> tqdm:
    """A tqdm bar that writes rarely (every 10 s) so executed notebooks stay readable."""
    disable = not enabled or os.environ.get("QDGS_PROGRESS", "1") == "0"
    kwargs.setdefault("mininterval", 10.0)
    kwargs.setdefault("file", sys.stdout)
    kwargs.setdefault("ascii", True)
    return tqdm(iterable, disable=disable, **kwargs)
