"""Problems: what is wrong with a definition, said so that a person can fix it.

Parsing and validation never raise on bad input; they return problems, all of them at
once, so ``lakecircle validate`` can print every one in a single run. A problem names
where it is (file, bucket, rule ID, field) and what to change.

A problem prints as one line whatever its values hold: a bucket name or a rule ID with a
newline, an escape sequence or a right-to-left mark is printed escaped (:func:`printable`),
and a user's value inside a message is quoted and short (:func:`shown`).
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """An error makes its bucket invalid (never written); a warning is only said."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a definition, and where: a sentence its author can act on."""

    file: str
    message: str
    bucket: str | None = None
    """None when the problem keeps the bucket's name from being known."""
    rule: str | None = None
    """The rule's ID, or its place in its file (``rule #2``) when it has none."""
    field: str | None = None
    """The key path as written in TOML (``Transitions[0].Days``)."""
    severity: Severity = Severity.ERROR

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        parts = [_part(self.file), _part(self.bucket), _part(self.rule), _part(self.field)]
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        return f"{': '.join(parts)}: {prefix}{printable(self.message)}"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "file": self.file,
            "bucket": self.bucket,
            "rule": self.rule,
            "field": self.field,
            "severity": self.severity.value,
            "message": self.message,
        }


MAX_PART = 1024
"""The longest file, bucket, rule or field printed whole; a longer one (a value nobody
meant, such as a megabyte-long rule ID) is cut, and says how long it was."""


def _part(text: str | None) -> str:
    if not text:
        return "-"
    if len(text) > MAX_PART:
        text = f"{text[: MAX_PART - 40]}... ({len(text):,} characters)"
    return printable(text)


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` with every character that does not print as itself escaped as Python writes
    it (``\\n``, ``\\x1b``, ``\\u202e``): a value then cannot break a line, move the cursor or
    turn the text around."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escaped(c) for c in text)


def _escaped(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


_short = reprlib.Repr()
_short.maxstring = 60


def shown(value: str) -> str:
    """A user's string for a message: quoted, escaped, at most about 60 characters."""
    return _short.repr(value)


def shown_number(value: int) -> str:
    """An integer for a message; one too long to print is described by its size (a TOML
    integer can have any number of digits, more than the interpreter converts to text)."""
    try:
        text = str(value)
    except ValueError:
        return f"a number of about {int(value.bit_length() * 0.30103):,} digits"
    return text if len(text) <= 40 else f"{text[:12]}... ({len(text):,} digits)"


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
