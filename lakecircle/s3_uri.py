"""S3 URIs: the one parser of ``s3://bucket/prefix/``, and the form ``LCC_ENDPOINT`` takes.

``LCC_ENDPOINT``, the S3 adapter's stores and ``lakecircle validate s3://...`` all read
their URIs with :func:`parse_s3_uri`, so a URI means the same wherever it is written. It
sits below every layer, beside the settings and the errors, because the commands, the
settings and the S3 adapter each need it and none of them owns it.
"""

from __future__ import annotations

import re

from lakecircle.errors import ConfigError


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket/prefix/``; the prefix is "" or ends with "/".

    Raises :class:`ConfigError`.
    """
    if not uri.startswith("s3://"):
        raise ConfigError([f"{uri!r} is not an S3 URI; expected one such as s3://bucket/prefix/"])
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise ConfigError([f"{uri!r} names no bucket; expected an S3 URI such as s3://bucket/prefix/"])
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


_ENDPOINT_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
"""What ``LCC_ENDPOINT`` accepts as its bucket: a name S3 could hold, in lower case."""


def check_endpoint(value: str | None) -> str | None:
    """``LCC_ENDPOINT`` as the settings hold it: an S3 URI ending in "/", of a bucket S3 could
    hold, with no empty prefix segment. Raises ValueError (a setting's validation error)."""
    if value is None:
        return None
    if not value.endswith("/"):
        value += "/"
    try:
        bucket, _ = parse_s3_uri(value)
    except ConfigError:
        bucket = ""
    if not _ENDPOINT_BUCKET.fullmatch(bucket) or "//" in value.removeprefix("s3://"):  # no empty prefix segment
        raise ValueError("expected an S3 URI such as s3://my-lakecircle-bucket/lifecycle/")
    return value
