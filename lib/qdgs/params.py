"""Notebook parameters: one validated namespace per chapter, with per-profile defaults.

Every notebook declares its parameters in a papermill ``parameters`` cell and then calls
:func:`resolve` with a spec. A parameter left at ``None`` takes the profile's value, so a
researcher overrides only what they change, and a typo or a wrong type stops the run with one
message that names the parameter and what it accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

PROFILES = ("smoke", "default", "paper")


def by_profile(smoke: Any, default: Any, paper: Any) -> dict[str, Any]:
    """A :class:`Param` default that differs per profile."""
    return {"smoke": smoke, "default": default, "paper": paper}


class ParameterError(ValueError):
    """A notebook or CLI parameter is unknown, of the wrong type or out of range."""


@dataclass(frozen=True)
class Param:
    """One parameter of a chapter.

    Args:
        name: the parameter's name, as in the notebook's parameters cell.
        type: the Python type a value must have (``float`` also accepts ints; ``tuple`` and
            ``list`` accept either sequence).
        default: a value used by every profile, or a dict ``{"smoke": v, "default": v, "paper": v}``.
        choices: the allowed values, when the parameter is an enumeration.
        low: the smallest allowed value (numbers, or each element of a sequence).
        high: the largest allowed value.
        pattern: a regular expression a string value must match whole, for open sets such as
            ``cuda:N``.
        help: one line saying what the parameter means.
        validate: a further check of a value's content (a list of prompt pairs, say): returns the
            value or raises one ParameterError naming the parameter.
    """

    name: str
    type: type
    default: Any
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    pattern: str | None = None
    help: str = ""
    validate: Callable[[Any], Any] | None = None

    def profile_default(self, profile: str) -> Any:
        """The value this parameter takes on ``profile`` when none is given."""
        if isinstance(self.default, dict) and set(self.default) >= set(PROFILES):
            return self.default[profile]
        return self.default

    def check(self, value: Any) -> Any:
        """Return ``value`` (normalised) or raise one clear ParameterError."""
        expected = self.type.__name__
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.type in (tuple, list) and isinstance(value, (tuple, list)):
            value = self.type(value)
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise ParameterError(
                f"parameter '{self.name}' must be of type {expected}, got {value!r} "
                f"({type(value).__name__}). {self.help}".strip()
            )
        if self.choices is not None:
            items = value if isinstance(value, (tuple, list)) else (value,)
            bad = [v for v in items if v not in self.choices]
            if bad:
                allowed = ", ".join(repr(c) for c in self.choices)
                raise ParameterError(
                    f"parameter '{self.name}' got {bad[0]!r}; allowed values: {allowed}"
                )
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise ParameterError(f"parameter '{self.name}' got {value!r}; it must match {self.pattern}. {self.help}".strip())
        numbers = value if isinstance(value, (tuple, list)) else (value,)
        for v in numbers:
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                continue
            if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
                raise ParameterError(
                    f"parameter '{self.name}' got {v!r}; allowed range: "
                    f"[{self.low if self.low is not None else '-inf'}, "
                    f"{self.high if self.high is not None else 'inf'}]"
                )
        return value if self.validate is None else self.validate(value)


def check_profile(profile: Any) -> str:
    """Raise a ParameterError unless ``profile`` is one of :data:`PROFILES`."""
    if profile not in PROFILES:
        raise ParameterError(
            f"parameter 'profile' got {profile!r}; allowed values: {', '.join(PROFILES)}"
        )
    return profile


def resolve(spec: list[Param], profile: str, **given: Any) -> SimpleNamespace:
    """Validate a chapter's parameters and fill the ones left at ``None`` from the profile.

    Args:
        spec: the chapter's parameters.
        profile: one of :data:`PROFILES`.
        **given: the values from the notebook's parameters cell (``None`` = profile value).

    Returns:
        A namespace with every parameter of ``spec`` plus ``profile``.

    Raises:
        ParameterError: for an unknown profile, an unknown parameter name, a wrong type, a
            value outside ``choices`` or outside ``[low, high]``.
    """
    check_profile(profile)
    known = {p.name: p for p in spec}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ParameterError(
            f"unknown parameter '{unknown[0]}'; known parameters: profile, {', '.join(known)}"
        )
    values = {"profile": profile}
    for p in spec:
        value = given.get(p.name)
        values[p.name] = p.check(p.profile_default(profile) if value is None else value)
    return SimpleNamespace(**values)


def describe(spec: list[Param], profile: str) -> str:
    """A markdown table of a chapter's parameters and their values on ``profile``."""
    rows = ["| parameter | value | meaning |", "|---|---|---|"]
    rows += [f"| `{p.name}` | `{p.profile_default(profile)!r}` | {p.help} |" for p in spec]
    return "\n".join(rows)
