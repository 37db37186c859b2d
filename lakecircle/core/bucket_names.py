"""S3's naming rules for general purpose buckets, checked before a name is sent anywhere.

A definition naming a bucket S3 cannot hold (``a/b``, two characters, upper case, a
newline) used to pass validation and fail at S3, after every retry. The rules are those
of the S3 User Guide ("General purpose bucket naming rules"): each broken rule is one
sentence saying which rule and what to write instead.

Names ending in ``--x-s3`` are directory buckets (S3 Express One Zone), whose naming rules
are their own (:func:`lakecircle.core.directory.directory_name_problems`).

Buckets made in us-east-1 before March 2018 may have names these rules forbid (upper
case, underscores, up to 255 characters), as may buckets made before a prefix or suffix
was reserved; LakeCircle refuses those names too, so such a bucket is never managed.
"""

from __future__ import annotations

import re
import string
from typing import Final

from lakecircle.core.directory import DIRECTORY_BUCKET_SUFFIX, directory_name_problems
from lakecircle.core.problems import printable, shown

PROBE_SCRATCH: Final = re.compile(r"lcc-probe-[0-9a-f]{12}")
"""The scratch bucket the server probe makes and deletes at the daemon's start
(:mod:`lakecircle.adapters.s3.probe`): LakeCircle's own for a second, selected by no selector."""

MIN_LENGTH: Final = 3
MAX_LENGTH: Final = 63

RESERVED_PREFIXES: Final = (
    ("xn--", "for internationalized domain names"),
    ("sthree-", "for its own use"),
    ("amzn-s3-demo-", "for its documentation's examples"),
)
RESERVED_SUFFIXES: Final = (
    ("-s3alias", "for access point aliases"),
    ("--ol-s3", "for Object Lambda Access Point aliases"),
    (".mrap", "for Multi-Region Access Points"),
    ("--table-s3", "for table buckets (S3 Tables)"),
)

_PLAIN: Final = re.compile(r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
_ALLOWED: Final = frozenset(string.ascii_lowercase + string.digits + ".-")
_UPPER: Final = frozenset(string.ascii_uppercase)
_IP_ADDRESS: Final = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_PREFIXES: Final = tuple(p for p, _ in RESERVED_PREFIXES)
_SUFFIXES: Final = (DIRECTORY_BUCKET_SUFFIX, *(s for s, _ in RESERVED_SUFFIXES))


def name_problems(name: str) -> list[str]:
    """What is wrong with ``name`` as a bucket's name: one sentence per rule it breaks (a directory
    bucket's name, ending in ``--x-s3``, by the rules of directory buckets)."""
    if (
        MIN_LENGTH <= len(name) <= MAX_LENGTH
        and _PLAIN.fullmatch(name)
        and ".." not in name
        and not name.startswith(_PREFIXES)
        and not name.endswith(_SUFFIXES)
        and not _IP_ADDRESS.fullmatch(name)
    ):
        return []  # every name of every valid definition comes this way
    if name.endswith(DIRECTORY_BUCKET_SUFFIX):
        return directory_name_problems(name)
    found = []
    if not MIN_LENGTH <= len(name) <= MAX_LENGTH:
        found.append(
            f"bucket name is {len(name):,} characters; S3 bucket names are {MIN_LENGTH} to {MAX_LENGTH} characters"
        )
    found.extend(_character_problems(name))
    if name[:1] in (".", "-") or name[-1:] in (".", "-"):
        found.append("bucket name must begin and end with a lowercase letter or a digit")
    if ".." in name:
        found.append("bucket name has two adjacent periods; S3 bucket names cannot")
    if _IP_ADDRESS.fullmatch(name):
        found.append("bucket name is formatted as an IP address; S3 bucket names cannot be")
    found.extend(
        f"bucket name begins with {prefix!r}, a prefix S3 reserves {what}"
        for prefix, what in RESERVED_PREFIXES
        if name.startswith(prefix)
    )
    found.extend(
        f"bucket name ends in {suffix!r}, a suffix S3 reserves {what}"
        for suffix, what in RESERVED_SUFFIXES
        if name.endswith(suffix)
    )
    return found


def _character_problems(name: str) -> list[str]:
    others = sorted({c for c in name if c not in _ALLOWED and c not in _UPPER})
    upper = any(c in _UPPER for c in name)
    found = []
    if upper:
        found.append(f"bucket name has upper-case letters; S3 bucket names are lower case: {shown(name.lower())}")
    if others:
        listed = ", ".join(f"'{printable(c)}'" for c in others[:5]) + (", ..." if len(others) > 5 else "")
        control = " (control characters among them)" if any(not c.isprintable() for c in others) else ""
        found.append(
            f"bucket name holds characters S3 bucket names cannot: {listed}{control};"
            " use only lowercase letters, digits, dots and hyphens"
        )
    return found
