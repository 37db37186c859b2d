"""Directory buckets (S3 Express One Zone): their names, their zone, and the region it is in.

A directory bucket's name is ``<base>--<zone id>--x-s3``: ``logs--use1-az4--x-s3`` in the
Availability Zone ``use1-az4``, ``logs--usw2-lax1-az1--x-s3`` in the Local Zone
``usw2-lax1-az1``. The name is all LakeCircle needs to treat such a bucket apart: its
lifecycle configuration has a narrower grammar (:mod:`lakecircle.core.validate.directory`),
it is listed by ListDirectoryBuckets, and its calls carry no ``ExpectedBucketOwner``.

A zone ID begins with its region's short form (``use1`` is us-east-1, ``apne1``
ap-northeast-1, ``euc1`` eu-central-1): :func:`region_of_zone` reads it, so a directory
bucket's calls go to its own region without asking S3 (GetBucketLocation does not serve
directory buckets). The naming rules are those of the S3 User Guide ("Directory bucket
naming rules"): 3 to 63 characters with the suffix, lower-case letters, digits and
hyphens, a letter or digit at each end, and the reserved prefixes of every bucket.
"""

from __future__ import annotations

import re
from typing import Final

DIRECTORY_BUCKET_SUFFIX: Final = "--x-s3"

ZONE_ID: Final = re.compile(
    r"(?P<area>[a-z]{2})(?P<direction>ne|nw|se|sw|e|w|n|s|c)(?P<number>[0-9]{1,2})(?:-[a-z]{3}[0-9]{1,2})?-az[0-9]{1,2}"
)
"""An Availability Zone ID (``use1-az4``) or a Local Zone ID (``usw2-lax1-az1``)."""

_DIRECTIONS: Final = {
    "e": "east",
    "w": "west",
    "n": "north",
    "s": "south",
    "c": "central",
    "ne": "northeast",
    "nw": "northwest",
    "se": "southeast",
    "sw": "southwest",
}

_BASE: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_NAME: Final = re.compile(rf"(?P<base>.+)--(?P<zone>[a-z0-9]+(?:-[a-z0-9]+)*){re.escape(DIRECTORY_BUCKET_SUFFIX)}")
_RESERVED_PREFIXES: Final = ("xn--", "sthree-", "amzn-s3-demo-")
MAX_LENGTH: Final = 63


def is_directory_bucket(name: str) -> bool:
    """Whether ``name`` is a directory bucket's (it ends in ``--x-s3``), well formed or not."""
    return name.endswith(DIRECTORY_BUCKET_SUFFIX)


def zone_of(name: str) -> str | None:
    """The zone ID in a directory bucket's name, None when the name holds none of the right form."""
    match = _NAME.fullmatch(name)
    if match is None or not ZONE_ID.fullmatch(match.group("zone")):
        return None
    return match.group("zone")


def region_of_zone(zone: str) -> str | None:
    """The region a zone ID belongs to (``use1-az4``: ``us-east-1``), None for another form."""
    match = ZONE_ID.fullmatch(zone)
    if match is None:
        return None
    return f"{match.group('area')}-{_DIRECTIONS[match.group('direction')]}-{match.group('number')}"


def directory_region(name: str) -> str | None:
    """The region of the directory bucket ``name``, read from its zone; None when it cannot be."""
    zone = zone_of(name)
    return None if zone is None else region_of_zone(zone)


def directory_name_problems(name: str) -> list[str]:
    """What is wrong with ``name`` as a directory bucket's name (one that ends in ``--x-s3``)."""
    match = _NAME.fullmatch(name)
    if match is None:
        return [_unparsed(name)]
    base, zone = match.group("base"), match.group("zone")
    found = []
    if not ZONE_ID.fullmatch(zone):
        found.append(
            f"directory bucket name holds the zone ID {zone!r}, which is not one: an Availability Zone ID is"
            " like use1-az4 and a Local Zone ID like usw2-lax1-az1 (the zone of the bucket, as the console shows it)"
        )
    if len(name) > MAX_LENGTH:
        found.append(
            f"bucket name is {len(name):,} characters; directory bucket names are 3 to {MAX_LENGTH} characters,"
            " the suffix included"
        )
    if not _BASE.fullmatch(base):
        found.append(
            f"the base name {base[:60]!r} of a directory bucket holds only lower-case letters, digits and hyphens,"
            " and begins and ends with a letter or digit"
        )
    found.extend(
        f"bucket name begins with {prefix!r}, a prefix S3 reserves"
        for prefix in _RESERVED_PREFIXES
        if name.startswith(prefix)
    )
    return found


def _unparsed(name: str) -> str:
    """Why ``name`` (ending in ``--x-s3``) cannot be read as ``<base>--<zone id>--x-s3``: upper-case
    letters, an empty base or no zone ID, said as such (each once read as "no zone ID")."""
    said = f"bucket name ends in {DIRECTORY_BUCKET_SUFFIX!r}, so it names a directory bucket (S3 Express One Zone),"
    lower = name.lower()
    if len(name) > MAX_LENGTH:  # no name of that length to suggest
        return f"{said} but it is {len(name):,} characters; write <base>--<zone id>{DIRECTORY_BUCKET_SUFFIX} in 3 to 63"
    if lower != name and _NAME.fullmatch(lower):
        return f"{said} but it holds upper-case letters; directory bucket names are lower case: write {lower!r}"
    if name.startswith("--") and _NAME.fullmatch(f"logs{lower}"):
        return f"{said} but its base name before the zone ID is empty: write <base>{lower}, such as logs{lower}"
    return (
        f"{said} but it holds no zone ID: write <base>--<zone id>{DIRECTORY_BUCKET_SUFFIX},"
        f" such as logs--use1-az4{DIRECTORY_BUCKET_SUFFIX}"
    )
