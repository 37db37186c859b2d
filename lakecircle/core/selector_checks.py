"""The checks of a selector's own keys: its patterns, its tags and its ownership.

A selector that can select nothing is almost always a typo, and a silent one: ``Logs-*``
(bucket names are lower case) would give its rules to no bucket, and a ``BucketExclude``
pattern that can never match would leave out nothing, so the buckets it was written to
protect would be selected. Both are errors here, said before any bucket is read.

Patterns are globs as :mod:`fnmatch` reads them (``* ? [seq] [!seq]``, case-sensitive,
whole name). Whether a pattern can match a valid bucket name is decided from what the
pattern fixes (see :func:`pattern_problems`); tags follow S3's tag rules.
"""

from __future__ import annotations

import fnmatch
import string
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from typing import Final

from lakecircle.core.bucket_names import (
    MAX_LENGTH,
    MIN_LENGTH,
    RESERVED_PREFIXES,
    RESERVED_SUFFIXES,
    name_problems,
)
from lakecircle.core.directory import DIRECTORY_BUCKET_SUFFIX
from lakecircle.core.problems import Problem, Severity, printable, shown
from lakecircle.core.selectors import Ownership, glob_tokens
from lakecircle.core.shape_problems import toml_key

MAX_TAGS: Final = 50
"""S3's limit of tags on one bucket: a selector asking for more matches no bucket."""
MAX_TAG_KEY: Final = 128
MAX_TAG_VALUE: Final = 256
AWS_TAG_PREFIX: Final = "aws:"
"""The tag keys AWS writes itself (``aws:cloudformation:stack-name``): a user cannot set
them, but buckets carry them, so a selector may ask for them. AWS reserves the prefix in
any case and writes it in lower case, so ``AWS:...`` is on no bucket."""
TAG_PUNCTUATION: Final = frozenset("_.:/=+-@")
"""Besides letters, digits and spaces, the characters of S3's tag pattern
(``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]``)."""

_NAME_CHARACTERS: Final = string.ascii_lowercase + string.digits + ".-"
_ENDS: Final = frozenset(string.ascii_lowercase + string.digits)
"""What a bucket name begins and ends with."""
_WILDCARDS: Final = frozenset("*?[")


def pattern_problems(pattern: str) -> list[str]:
    """Why ``pattern`` can never match a valid general purpose bucket name; empty when it can.

    A pattern without wildcards is a name, checked by every naming rule
    (:func:`lakecircle.core.bucket_names.name_problems`). A pattern with wildcards is
    checked by what it fixes, which is what a typo breaks:

    - its literal characters (an upper-case letter, ``_``, ``/``: no bucket name holds them);
    - each ``[seq]``: it must admit at least one character a bucket name can hold;
    - its length: at least as many characters as it has literals, ``?`` and ``[seq]``
      (at most 63), and, without ``*``, exactly that many (at least 3);
    - its first and last character when a literal or a ``[seq]`` fixes them (a letter or a
      digit), two adjacent literal periods, and a literal beginning or end that S3
      reserves (``xn--``, ``-s3alias``, the directory buckets' ``--x-s3``...).

    Not detected: what only a combination across wildcards rules out (``a.[.]b`` needs
    two adjacent periods; ``1.2.3.?`` matches only IP addresses; ``*-s3alias`` matches
    only names S3 reserves). Such a pattern is accepted and selects nothing.
    An unclosed ``[`` is refused as it is: fnmatch would read it as a literal ``[``.
    """
    if not _WILDCARDS.intersection(pattern):
        return [f"it is a name, and {message}" for message in name_problems(pattern)]
    pieces = list(_pieces(pattern))
    if any(piece == "[" for piece in pieces):
        return [
            "it has a '[' that no ']' closes; close the set (as in [0-9]),"
            " or leave the '[' out: no bucket name holds one"
        ]
    found = _character_problems(pattern, pieces)
    fixed = sum(1 for piece in pieces if piece != "*")
    if fixed > MAX_LENGTH:
        found.append(f"it needs at least {fixed} characters, and bucket names have at most {MAX_LENGTH}")
    if "*" not in pieces and fixed < MIN_LENGTH:
        found.append(
            f"it matches names of {fixed} character(s) only, and bucket names have at least {MIN_LENGTH};"
            " add characters or a '*'"
        )
    for piece, where in ((pieces[0], "begin"), (pieces[-1], "end")):
        admitted = _admitted(piece) if piece != "*" else ""
        if admitted and not _ENDS.intersection(admitted):  # none admitted: said above
            found.append(f"bucket names {where} with a lowercase letter or a digit, and it cannot")
    found.extend(_literal_problems(pattern))
    return found


def _pieces(pattern: str) -> Iterator[str]:
    """The pattern's parts as :func:`~lakecircle.core.selectors.glob_tokens` reads them, up
    to a lone ``[`` that no ``]`` closes (an error of its own: what follows is not looked at)."""
    for piece in glob_tokens(pattern):
        yield piece
        if piece == "[":
            return


def _admitted(piece: str) -> str:
    """The characters of bucket names that one piece (not ``*``) matches."""
    if piece == "?":
        return _NAME_CHARACTERS
    if piece.startswith("["):
        return "".join(c for c in _NAME_CHARACTERS if fnmatch.fnmatchcase(c, piece))
    return piece if piece in _NAME_CHARACTERS else ""


def _character_problems(pattern: str, pieces: Sequence[str]) -> list[str]:
    literals = [p for p in pieces if len(p) == 1 and p not in "*?"]
    found = []
    if any(c in string.ascii_uppercase for c in literals):
        found.append(
            "it has upper-case letters, and bucket names are lower case (patterns are case-sensitive):"
            f" write {shown(pattern.lower())}"
        )
    others = sorted({c for c in literals if c not in _NAME_CHARACTERS and c not in string.ascii_uppercase})
    if others:
        listed = ", ".join(f"'{printable(c)}'" for c in others[:5])
        found.append(
            f"it holds {listed}, which no bucket name can; bucket names have only lowercase letters,"
            " digits, dots and hyphens"
        )
    found.extend(
        f"its set {shown(piece)} admits no character a bucket name can hold (lowercase letters, digits,"
        " dots and hyphens)"
        for piece in pieces
        if piece.startswith("[") and not _admitted(piece)
    )
    return found


def _literal_problems(pattern: str) -> list[str]:
    """What the literal runs fix: two adjacent periods, a reserved beginning or end."""
    runs = _literal_runs(pattern)
    head, tail = runs[0], runs[-1]
    found = []
    if any(".." in run for run in runs):
        found.append("it has two adjacent periods, and bucket names cannot")
    found.extend(
        f"it begins with {prefix!r}, a prefix S3 reserves {what}"
        for prefix, what in RESERVED_PREFIXES
        if head.startswith(prefix)
    )
    suffixes = (
        (
            DIRECTORY_BUCKET_SUFFIX,
            "for directory buckets, which selectors never select (define each by its BucketName)",
        ),
    )
    found.extend(
        f"it ends in {suffix!r}, a suffix S3 reserves {what}"
        for suffix, what in (*suffixes, *RESERVED_SUFFIXES)
        if tail.endswith(suffix)
    )
    return found


def _literal_runs(pattern: str) -> list[str]:
    """The runs of literal characters between wildcards, the first and last included (maybe empty)."""
    runs, current = [], ""
    for piece in _pieces(pattern):
        if len(piece) == 1 and piece not in "*?[":
            current += piece
        else:
            runs.append(current)
            current = ""
    return [*runs, current]


def tag_problems(tags: Mapping[str, str]) -> list[tuple[str, str, Severity]]:
    """Why no bucket can carry ``tags``, as (field below ``BucketTags``, message, severity):
    S3's tag rules (a key of 1 to 128 characters, a value of at most 256, at most 50 tags on
    a bucket, no control characters). A key may begin with ``aws:``: AWS's own tags are on
    buckets to be selected, though nobody else can write them. What S3 documents less
    firmly is a warning: characters outside its tag pattern."""
    found: list[tuple[str, str, Severity]] = []
    if len(tags) > MAX_TAGS:
        message = f"{len(tags)} tags, and S3 allows at most {MAX_TAGS} on a bucket: no bucket can carry them all"
        found.append(("", message, Severity.ERROR))
    for key, value in tags.items():
        path = toml_key(key)
        if not key:
            found.append((path, "a tag key cannot be empty; S3 tag keys are 1 to 128 characters", Severity.ERROR))
        elif len(key) > MAX_TAG_KEY:
            message = f"the tag key is {len(key):,} characters; S3 tag keys have at most {MAX_TAG_KEY}"
            found.append((path, message, Severity.ERROR))
        prefix = key[: len(AWS_TAG_PREFIX)]
        if prefix.lower() == AWS_TAG_PREFIX and prefix != AWS_TAG_PREFIX:
            message = (
                f"the tag key begins with {shown(prefix)}, which no bucket's tag does: AWS writes its own"
                f" tags as {AWS_TAG_PREFIX!r} in lower case, tag keys are case-sensitive, and nobody else may"
                f" use the prefix in any case; write {shown(AWS_TAG_PREFIX + key[len(prefix) :])}"
            )
            found.append((path, message, Severity.ERROR))
        if len(value) > MAX_TAG_VALUE:
            message = f"the tag value is {len(value):,} characters; S3 tag values have at most {MAX_TAG_VALUE}"
            found.append((path, message, Severity.ERROR))
        found.extend((path, message, severity) for message, severity in _tag_text_problems(key, value))
    return found


def every_name(pattern: str) -> bool:
    """Whether ``pattern`` matches every valid bucket name: ``*``, and ``?*``, ``??*`` or ``???*``
    in any order (a bucket name has at least 3 characters)."""
    return "*" in pattern and not pattern.strip("*?") and pattern.count("?") <= MIN_LENGTH


def _tag_text_problems(key: str, value: str) -> Iterator[tuple[str, Severity]]:
    """A tag key's or value's characters: a control character can never be in a tag (S3's
    XML cannot carry it); another character outside S3's tag pattern is on no bucket S3's
    documentation describes."""
    for what, text in (("key", key), ("value", value)):
        odd = [c for c in text if unicodedata.category(c)[0] not in "LZN" and c not in TAG_PUNCTUATION]
        control = next((c for c in odd if unicodedata.category(c) in ("Cc", "Cs") or c in "\ufffe\uffff"), None)
        if control is not None:
            yield (
                f"the tag {what} holds the control character '{printable(control)}', which no tag can hold; remove it",
                Severity.ERROR,
            )
        elif odd:
            listed = ", ".join(f"'{printable(c)}'" for c in sorted(set(odd))[:5])
            yield (
                f"the tag {what} holds {listed}; S3 documents tag keys and values as letters, digits, spaces"
                " and _ . : / = + - @ only, so no bucket is likely to carry it",
                Severity.WARNING,
            )


def selector_key_problems(
    file: str,
    where: str,
    *,
    match: Sequence[str] | None,
    exclude: Sequence[str] | None,
    tags: Mapping[str, str] | None,
    ownership: Ownership,
) -> list[Problem]:
    """The problems of a selector's keys other than its rules; ``where`` is its table
    (``Bucket[2].``), which every field path begins with (a selector has no bucket name).
    A key given None is missing or of a shape already reported, and is not checked again."""
    problems: list[Problem] = []
    if match is not None and not match:
        problems.append(
            Problem(
                file,
                'BucketMatch is empty, so it selects no bucket; give at least one pattern (["*"] is every bucket)',
                field=f"{where}BucketMatch",
            )
        )
    for key, patterns in (("BucketMatch", match), ("BucketExclude", exclude)):
        for index, pattern in enumerate(patterns or ()):
            problems.extend(
                Problem(
                    file,
                    f"pattern {shown(pattern)} can never match a bucket name: {message}",
                    field=f"{where}{key}[{index}]",
                )
                for message in pattern_problems(pattern)
            )
    problems.extend(
        Problem(file, message, field=f"{where}BucketTags{'.' + path if path else ''}", severity=severity)
        for path, message, severity in tag_problems(tags or {})
    )
    if match and exclude and (any(map(every_name, exclude)) or set(match) <= set(exclude)):
        problems.append(
            Problem(
                file,
                "BucketExclude leaves out every name BucketMatch selects, so the selector selects no bucket;"
                " narrow BucketExclude, or remove the selector",
                field=f"{where}BucketExclude",
                severity=Severity.WARNING,
            )
        )
    every = any(map(every_name, match or ()))
    if ownership is Ownership.AUTHORITATIVE and every and tags == {}:
        but = " but those BucketExclude leaves out" if exclude else ""
        problems.append(
            Problem(
                file,
                f'BucketMatch selects every bucket in the account{but}, and Ownership = "authoritative"'
                " makes each one authoritative: rules no definition names are removed from all of them;"
                ' write Ownership = "shared" (a selector\'s default) unless that is meant',
                field=f"{where}Ownership",
                severity=Severity.WARNING,
            )
        )
    return problems
