"""Problems: what is wrong with a definition, said so that a person can fix it.

Parsing and validation never raise on bad input; they return problems, all of them at
once, so ``lakecircle validate`` can print every one in a single run. A problem names
where it is (file, bucket, rule ID, field) and what to change.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    message: str
    bucket: str | None = None
    rule: str | None = None
    field: str | None = None
    severity: Severity = Severity.ERROR

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        parts = [self.file or "-", self.bucket or "-", self.rule or "-", self.field or "-"]
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        return f"{': '.join(parts)}: {prefix}{self.message}"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "file": self.file,
            "bucket": self.bucket,
            "rule": self.rule,
            "field": self.field,
            "severity": self.severity.value,
            "message": self.message,
        }


def has_errors(problems: Iterable[Problem]) -> bool:
    return any(p.is_error for p in problems)


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'X'?)`` for the nearest choice, or nothing when none is near."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return f" (did you mean {lowered[word.lower()]!r}?)"
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""
