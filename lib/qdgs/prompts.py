"""Prompts as chapter parameters: an objective pair and named measure pairs, validated once.

A chapter takes ``objective_prompts`` ``[positive, negative]`` and ``measure_prompts``, a list of
``[short name, first prompt, second prompt]`` (a measure is negative when an image is closer to its
first prompt). The short names label axes and table columns. The paper's prompts (facts file) are
the defaults: :data:`SHAPES_PAPER`, :data:`FACES_PAPER`.

Some of a chapter's later steps read particular measures (the shapes label rule reads ``shape``,
the face datasets are binned by ``skin`` × ``gender``), so a chapter may require its first measures
to carry given names; their texts may change and any measures may follow. The archive has one
dimension per measure: ``archive_dims`` must list one cell count per measure.

This module imports nothing heavy: the parameter specs read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from qdgs.params import ParameterError

__all__ = [
    "FACES_LEADING",
    "FACES_PAPER",
    "SHAPES_LEADING",
    "SHAPES_PAPER",
    "Measure",
    "Prompts",
    "check_archive_dims",
    "check_objective_prompts",
    "check_prompts",
    "measure_prompts_check",
    "vocabulary_table",
]


@dataclass(frozen=True)
class Measure:
    """One measure: its short name and its prompt pair (negative values are closer to ``first``)."""

    name: str
    first: str
    second: str


@dataclass(frozen=True)
class Prompts:
    """A chapter's objective pair (positive, negative) and its measures, in archive order."""

    objective: tuple[str, str]
    measures: tuple[Measure, ...]

    @classmethod
    def from_parameters(cls, objective_prompts: Sequence[str], measure_prompts: Sequence[Sequence[str]]) -> Prompts:
        """The prompts of a chapter's ``objective_prompts`` and ``measure_prompts`` parameters (validated)."""
        objective = check_objective_prompts(list(objective_prompts))
        measures = measure_prompts_check()(list(measure_prompts))
        return cls((objective[0], objective[1]), tuple(Measure(*m) for m in measures))

    @property
    def names(self) -> tuple[str, ...]:
        """The measures' short names (axis labels, table columns)."""
        return tuple(m.name for m in self.measures)

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The measures' prompt pairs, as :class:`qdgs.scoring.PromptScoring` takes them."""
        return tuple((m.first, m.second) for m in self.measures)

    @property
    def all_pairs(self) -> tuple[tuple[str, str], ...]:
        """The objective pair, then the measure pairs (as :func:`qdgs.scoring.prompt_values` takes them)."""
        return (self.objective, *self.pairs)

    @property
    def axis_labels(self) -> tuple[str, ...]:
        """One axis label per measure: ``"<name> measure"``."""
        return tuple(f"{n} measure" for n in self.names)

    def roles(self) -> dict[str, list[str]]:
        """Each prompt text and what it is in this run (``objective +``, ``skin: first``, ...)."""
        roles: dict[str, list[str]] = {}
        for text, role in ((self.objective[0], "objective +"), (self.objective[1], "objective −"),
                           *((t, f"{m.name}: {side}") for m in self.measures
                             for t, side in ((m.first, "first"), (m.second, "second")))):
            roles.setdefault(text, []).append(role)
        return roles

    def texts(self) -> list[str]:
        """Every distinct prompt text, objective first."""
        return list(self.roles())

    def parameters(self) -> tuple[list[str], list[list[str]]]:
        """The ``objective_prompts`` and ``measure_prompts`` parameter values that give these prompts."""
        return list(self.objective), [[m.name, m.first, m.second] for m in self.measures]

    def table(self) -> list[dict[str, str]]:
        """Rows (name, first prompt, second prompt) of the objective and every measure, for a chapter to show."""
        rows = [{"name": "objective", "first prompt": self.objective[0], "second prompt": self.objective[1]}]
        return rows + [{"name": m.name, "first prompt": m.first, "second prompt": m.second} for m in self.measures]


#: The paper's shapes prompts (facts file): colour and shape measures.
SHAPES_PAPER = Prompts(("A regular square or a triangle.", "Splatters of colors."),
                       (Measure("colour", "A red shape.", "A blue shape."),
                        Measure("shape", "A triangle with 3 edges.", "A square or diamond with 4 edges.")))
#: The paper's face prompts (facts file): skin tone, gender presentation, hair length, age.
FACES_PAPER = Prompts(("A detailed photo of an individual with diverse features.",
                       "An obscure, fake, or discolored photo of a person."),
                      (Measure("skin", "A person with dark skin.", "A person with light skin."),
                       Measure("gender", "A masculine person.", "A feminine person."),
                       Measure("hair", "A person with long hair.", "A person with short hair."),
                       Measure("age", "A person in their 20s.", "A person in their 50s.")))
#: The measures chapter 01 reads by position: its label rule reads ``shape``, its scorer view ``colour``.
SHAPES_LEADING = ("colour", "shape")
#: The measures chapter 02 reads by position: its datasets are binned by ``skin`` × ``gender``.
FACES_LEADING = ("skin", "gender")


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def check_objective_prompts(value: list) -> list[str]:
    """``objective_prompts`` as given, or one error: it must be two non-empty strings (positive, negative)."""
    if len(value) != 2 or not all(_is_text(v) for v in value):
        raise ParameterError(f"parameter 'objective_prompts' must be a pair of non-empty strings "
                             f"[positive, negative], got {value!r}")
    return list(value)


def measure_prompts_check(leading: Sequence[str] = ()):
    """The validator of ``measure_prompts`` for a chapter whose first measures must be named ``leading``.

    Each entry is ``[short name, first prompt, second prompt]``, all non-empty strings; names are
    unique; there is at least one measure.
    """
    def check(value: list) -> list[list[str]]:
        form = "a list of [short name, first prompt, second prompt]"
        if not value:
            raise ParameterError(f"parameter 'measure_prompts' needs at least one measure: {form}")
        for entry in value:
            if not isinstance(entry, (list, tuple)) or len(entry) != 3 or not all(_is_text(v) for v in entry):
                raise ParameterError(f"parameter 'measure_prompts' must be {form}, each a non-empty string; "
                                     f"got the entry {entry!r}")
        names = [entry[0] for entry in value]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ParameterError(f"parameter 'measure_prompts' repeats the measure name(s) {', '.join(repeated)}: "
                                 "short names label axes and columns and must be unique")
        if tuple(names[:len(leading)]) != tuple(leading):
            raise ParameterError(f"parameter 'measure_prompts': this chapter reads its first measures by name, so they "
                                 f"must be {', '.join(leading)} (in that order; their prompts may change and any "
                                 f"measures may follow); got {', '.join(names)}")
        return [list(entry) for entry in value]

    return check


def check_archive_dims(p: SimpleNamespace) -> None:
    """One error unless ``p.archive_dims`` has one cell count per measure of ``p.measure_prompts``."""
    names = [m[0] for m in p.measure_prompts]
    if len(p.archive_dims) != len(names):
        raise ParameterError(f"parameter 'archive_dims' has {len(p.archive_dims)} entries for {len(names)} measures "
                             f"({', '.join(names)}): give one cell count per measure, for example "
                             f"archive_dims {[10] * len(names)}")


def check_prompts(scorer: Any, prompts: Prompts) -> list[str]:
    """Warn once per prompt the scorer cannot judge; return those prompts.

    An offline scorer knows its training captions (:meth:`qdgs.scorers.offline_clip.OfflineClipScorer.check_prompts`
    warns with :class:`~qdgs.scorers.offline_clip.UnknownPromptWarning`); OpenAI CLIP has an open
    vocabulary and judges any prompt, so it never warns.
    """
    check = getattr(scorer, "check_prompts", None)
    return check(prompts.texts()) if check is not None else []


def vocabulary_table(scorer: Any, prompts: Prompts) -> str:
    """A markdown table of what ``scorer`` understands, and what this run asks of it.

    One row per caption the offline scorer was trained on (its recorded vocabulary) and one per
    prompt of this run it was not trained on, each with the run's use of it and the scorer's own
    answer (:meth:`~qdgs.scorers.offline_clip.OfflineClipScorer.understands`). A scorer without a
    recorded vocabulary (OpenAI CLIP) gets one line saying it judges any prompt.
    """
    vocabulary = getattr(scorer, "vocabulary", None)
    if vocabulary is None:
        return "This scorer (OpenAI CLIP) has an open vocabulary: it judges every prompt, none is flagged."
    roles = prompts.roles()
    rows = list(vocabulary) + [t for t in roles if not scorer.understands(t)]
    lines = ["| caption | used in this run as | the scorer understands it |", "|---|---|---|"]
    lines += [f"| {t} | {', '.join(roles.get(t, [])) or '–'} | "
              f"{'yes (trained on it)' if scorer.understands(t) else '**no: cannot judge it**'} |" for t in rows]
    return "\n".join(lines)
