"""Read TOML text with tomli, or with Python's tomllib when tomli is missing: the same files, the same limits.

Why a module of its own: the two readers share a flaw and only one of them guards against it.
Reading a dotted key costs time and memory quadratic in its number of parts: Python 3.11's
tomllib took 6 s for one key of 20,000 parts and was killed at 100,000, and a definition
file of 1 MiB can hold 500,000. tomli refuses a key of more than 1,000 parts itself (since
2.3.1; its limit is the recursion limit at its import, 1,000 unless changed), and its
compiled wheel reads a definition several times faster than tomllib. So tomli is the
reader; the tomllib fallback gets a guard that refuses exactly the keys tomli refuses,
looking at real keys only (a dotted version string or a comment full of dots is no key),
so that every file reads the same with either.

Errors come back as :class:`TomlError`: a sentence with the line, never Python's wording
(a tuple of key parts, ``sys.set_int_max_str_digits``).
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

MAX_KEY_PARTS: Final = 1000
"""tomli's limit on the parts of one key (``a.b.c`` has three); the guard matches it."""

MAX_NUMBER_DIGITS: Final = 19
"""The most digits a number S3's API takes can have (a 64-bit integer)."""


class TomlError(ValueError):
    """A TOML text that cannot be read, said so that a person can fix it."""


@dataclass(frozen=True, slots=True)
class TomlReader:
    name: str
    loads: Callable[[str], dict[str, Any]]
    decode_error: type[ValueError]
    limits_keys: bool
    """True when the reader refuses keys of more than :data:`MAX_KEY_PARTS` parts itself."""


TOMLLIB: Final = TomlReader("tomllib", tomllib.loads, tomllib.TOMLDecodeError, limits_keys=False)


def _tomli() -> TomlReader | None:
    try:
        import tomli
    except ModuleNotFoundError:  # a dependency; missing only from an installation made by hand
        return None
    return TomlReader("tomli", tomli.loads, tomli.TOMLDecodeError, limits_keys=True)


TOMLI: Final = _tomli()
READER: Final = TOMLI or TOMLLIB
"""The reader definitions are read with."""


def read_toml(text: str, reader: TomlReader = READER) -> dict[str, Any]:
    """The document ``text`` holds, as ``tomllib.loads`` reads it; :class:`TomlError` if none."""
    if not reader.limits_keys:
        long_key = _long_key(text)
        if long_key is not None:
            raise TomlError(_long_key_message(long_key))
    try:
        return reader.loads(text)
    except reader.decode_error as exc:
        raise TomlError(f"TOML syntax error: {_plain_words(str(exc))}") from None
    except RecursionError as exc:
        if "key has more than" in str(exc):
            raise TomlError(_long_key_message(_long_key(text))) from None
        raise TomlError("TOML is nested too deeply to be a definition") from None
    except ValueError:  # an integer past the interpreter's limit on digits it converts
        raise TomlError(_long_number_message(text)) from None


# -- where a problem is: a scan of the text that skips strings and comments ---------------

_BARE = r"[A-Za-z0-9_-]++"
_BASIC = r'"(?:[^"\\\n]|\\.)*+"'
_LITERAL = r"'[^'\n]*+'"
_PART = rf"(?:{_BARE}|{_BASIC}|{_LITERAL})"
_TOKENS = re.compile(
    r'"""(?:[^\\]|\\.)*?"{3,5}'  # multi-line strings first: they start like an empty string
    r"|'''[\s\S]*?'{3,5}"
    rf"|(?P<chain>{_PART}(?:[ \t]*+\.[ \t]*+{_PART})*+)"  # a key, dotted or not, or a bare value
    r"|#[^\n]*+",
    re.DOTALL,
)
"""The tokens whose insides must not be read as keys. Outside strings and comments, a chain
of three or more dotted parts is a key in any valid document (a float or a time has at most
one dot), so counting the parts of chains counts the parts of keys. Linear: no part of a
token can start another way."""
_PARTS = re.compile(_PART)
_NUMBER = re.compile(r"[+-]?(?:0x[0-9A-Fa-f_]+|0o[0-7_]+|0b[01_]+|[0-9_]+)")


def _long_key(text: str) -> tuple[int, int] | None:
    """(line, parts) of the first key of more than :data:`MAX_KEY_PARTS` parts, if any."""
    if text.count(".") < MAX_KEY_PARTS:
        return None  # the usual case: no key can be that long
    for match in _TOKENS.finditer(text):
        chain = match["chain"]
        if chain is not None and chain.count(".") >= MAX_KEY_PARTS:
            parts = len(_PARTS.findall(chain))
            if parts > MAX_KEY_PARTS:
                return text.count("\n", 0, match.start()) + 1, parts
    return None


def _long_key_message(found: tuple[int, int] | None) -> str:
    where = f" (at line {found[0]})" if found is not None else ""
    return (
        f"TOML key has more than {MAX_KEY_PARTS:,} dotted parts{where};"
        " a definition's keys have a few: write the key with fewer dots"
    )


def _long_number_message(text: str) -> str:
    """Say which integer has more digits than can be read (tomllib says only Python's limit)."""
    longest: tuple[int, int] | None = None
    for match in _TOKENS.finditer(text):
        chain = match["chain"]
        if chain is None or len(chain) < 1000 or not _NUMBER.fullmatch(chain):
            continue
        number = chain.lstrip("+-").replace("_", "")
        digits = len(number) - (2 if number[1:2] in ("x", "o", "b") else 0)
        if longest is None or digits > longest[1]:
            longest = (text.count("\n", 0, match.start()) + 1, digits)
    if longest is None:
        return f"an integer has too many digits to read; S3's numbers have at most {MAX_NUMBER_DIGITS} digits"
    line, digits = longest
    return f"an integer with {digits:,} digits (at line {line}); S3's numbers have at most {MAX_NUMBER_DIGITS} digits"


# -- the reader's messages in a person's words --------------------------------------------

_KEY_IN_MESSAGE = re.compile(r"^(Cannot declare |Cannot mutate immutable namespace |Cannot redefine namespace )\(")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_KEY_SHOWN = 80


def _plain_words(message: str) -> str:
    """The reader's message with a key written as TOML writes it, not as a Python tuple.

    ``Cannot declare ('a', 'b c') twice (at line 3, column 1)`` becomes
    ``Cannot declare a."b c" twice (at line 3, column 1)``.
    """
    match = _KEY_IN_MESSAGE.match(message)
    if match is None:
        return message
    head, rest = match[1], message[match.end(1) :]
    # The tuple ends where the message goes on: " twice (at ...)" or " (at ...)".
    for end in (rest.rfind(") twice"), rest.rfind(") (at ")):
        if end <= 0:
            continue
        try:
            parts = ast.literal_eval(rest[: end + 1])
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
        if isinstance(parts, tuple) and all(isinstance(p, str) for p in parts):
            return f"{head}{_dotted(parts)}{rest[end + 1 :]}"
    return message


def _dotted(parts: tuple[str, ...]) -> str:
    key = ".".join(p if _BARE_KEY.fullmatch(p) else json.dumps(p, ensure_ascii=False) for p in parts)
    return key if len(key) <= _KEY_SHOWN else f"{key[: _KEY_SHOWN - 3]}..."
