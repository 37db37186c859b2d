"""What the rule checks share: the finding they report and the limits of the API's types.

A check appends its findings to one list instead of yielding them: a valid rule (the
usual case) then costs a few attribute reads, not a chain of generators. The findings
and their order are those of the numbered constraints.
"""

from __future__ import annotations

import unicodedata

from lakecircle.core.problems import Severity, printable, shown_number

Finding = tuple[str, str, Severity]
"""One problem of a rule: (field path, message, severity)."""

ERROR = Severity.ERROR
WARNING = Severity.WARNING

MAX_ID_LENGTH = 255
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
MAX_INTEGER = 2**31 - 1
"""S3's API types day counts as Integer (32-bit signed): a larger number cannot be sent."""
MAX_LONG = 2**63 - 1
"""Object sizes are Long (64-bit signed)."""


def at_most(out: list[Finding], path: str, value: int | None, limit: int) -> None:
    """A number too large for the API's integer type at ``path`` (a TOML integer can be any size)."""
    if value is not None and value > limit:
        out.append((path, f"{shown_number(value)} is larger than S3's API accepts here (at most {limit})", ERROR))


def check_text(path: str, what: str, text: str, out: list[Finding]) -> None:
    """A control character (or a character XML cannot carry) in an ID, a prefix or a tag.

    S3's API is XML, which cannot carry most control characters at all (nor U+FFFE and
    U+FFFF). Tab and line feed it can carry, and a carriage return comes back from it as a
    line feed; none of them is meant in an ID, a prefix or a tag, so all are refused.
    Only called for text that is not printable: most text never comes here.
    """
    for index, char in enumerate(text):
        if unicodedata.category(char) in ("Cc", "Cs") or char in "\ufffe\uffff":
            out.append(
                (
                    path,
                    f"{what} holds the control character '{printable(char)}' (character {index + 1});"
                    " S3's XML cannot carry control characters reliably: remove it",
                    ERROR,
                )
            )
            return
